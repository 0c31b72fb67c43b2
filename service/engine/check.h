// Phase 2 of loading a rule file: the parsed file → a checked definition.
// Names are resolved, each expression's type is checked once (derived values
// in the order of their use), dose levels and header fields validated, and
// cycles refused; what checking learned travels on in the definition.
#ifndef TRIALRULES_SERVICE_ENGINE_CHECK_H_
#define TRIALRULES_SERVICE_ENGINE_CHECK_H_

#include <string>
#include <type_traits>
#include <vector>

#include "service/engine/definition.h"
#include "service/engine/keep_going.h"
#include "service/engine/parse.h"
#include "service/engine/problem.h"

namespace trialrules {

// What one rule file may hold, checked before any expression is: a
// protocol's rules need far less, and anything larger is a mistake or an
// attack on the server that checks it.
inline constexpr int kMaxFactsPerFile = 1000;
inline constexpr int kMaxDerivedValuesPerFile = 500;
inline constexpr int kMaxRulesPerFile = 500;
inline constexpr int kMaxTestCasesPerFile = 5000;
// The longest chain of derived values and rules using one another.
inline constexpr int kMaxDerivationDepth = 64;

// The longest name (fact, rule id, word) and label (protocol id, version).
inline constexpr size_t kMaxNameLength = 64;
// A letter, then letters, digits or '_'; at most kMaxNameLength.
bool IsIdentifier(absl::string_view name);
// A letter or digit, then letters, digits, '.', '_' or '-'; at most
// kMaxNameLength.
bool IsLabel(absl::string_view text);

// A rule-like declaration as the checker reads it: a rule of a rule file, a
// row or refusal of a decision table. `message` is where it was written.
struct RuleView {
  const google::protobuf::Message* message = nullptr;
  const std::string& id() const { return *id_; }
  const std::string& text() const { return *text_; }
  const std::string& expression() const { return *expression_; }
  const std::string* id_;
  const std::string* text_;
  const std::string* expression_;
  const std::string* note = nullptr;
  bool informational = false;
  v1::EscalationAction action = v1::ESCALATION_ACTION_UNSPECIFIED;
};

// The rules of one repeated field, and the kind they are compiled as.
struct RuleList {
  const char* field;
  RuleKind kind;
  std::vector<RuleView> rules;

  template <typename RuleMessage>
  static RuleList Of(const char* field, RuleKind kind,
                     const google::protobuf::RepeatedPtrField<RuleMessage>& messages) {
    RuleList list{field, kind, {}};
    for (const RuleMessage& rule : messages) {
      RuleView view{&rule, &rule.id(), &rule.text(), &rule.expression(), &rule.note()};
      if constexpr (std::is_same_v<RuleMessage, v1::Rule>) {
        view.informational = rule.informational();
        view.action = rule.action();
      }
      list.rules.push_back(view);
    }
    return list;
  }
};

// The part of a file that declares names and expressions, read the same way
// in a rule file and in each table of a decision-table file: facts, derived
// values (field "derived_values") and lists of rules, all fields of
// `message`, which was read with `tree`.
struct Declarations {
  const google::protobuf::Message* message;
  const ParseTree* tree;
  const google::protobuf::RepeatedPtrField<v1::Fact>* facts;
  const google::protobuf::RepeatedPtrField<v1::DerivedValue>* derived;
  std::vector<RuleList> rule_lists;
  int test_cases = 0;
  const char* facts_field = "facts";
  // What a rule's `text` holds, for the problem when it is left out.
  const char* text_is = "the protocol's wording";
};

// Fills `definition`; false with `problems` (each with its position) when
// the file is not a valid rule set. `keep_going` is asked before each
// expression; when it refuses, the check stops there and returns false.
bool CheckRuleFile(const ParsedRuleFile& parsed, RuleSetDefinition* definition,
                   std::vector<Problem>* problems, KeepGoing keep_going = AlwaysKeepGoing);

// Checks `declarations` of `parsed` alone (no header, no dose levels): one
// table of a decision-table file. Fills the definition's declarations.
bool CheckDeclarations(const ParsedText& parsed, Declarations declarations,
                       RuleSetDefinition* definition, std::vector<Problem>* problems,
                       KeepGoing keep_going = AlwaysKeepGoing);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_CHECK_H_
