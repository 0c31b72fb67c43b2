// A rule file as the checker leaves it: every declaration, and what checking
// learned about each expression (its type and what it uses), so that the
// compiler binds without checking again.
#ifndef TRIALRULES_SERVICE_ENGINE_DEFINITION_H_
#define TRIALRULES_SERVICE_ENGINE_DEFINITION_H_

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "service/util/dates.h"
#include "service/engine/vocabulary.h"
#include "trialrules/v1/rule_file.pb.h"

namespace trialrules {

struct FactSpec {
  std::string name;
  ValueType type = ValueType::kNumber;
  std::string unit;  // canonical unit of a number; may be empty
  struct AlternativeUnit {
    std::string unit;
    // Exactly one is non-zero: value in canonical = value / per_canonical_unit,
    // or value * canonical_per_unit (whichever the rule file states exactly).
    double per_canonical_unit = 0;
    double canonical_per_unit = 0;
  };
  std::vector<AlternativeUnit> accepted_units;
  double min = -std::numeric_limits<double>::infinity();  // canonical unit
  double max = std::numeric_limits<double>::infinity();   // dates: day numbers
  bool integer = false;
  std::string description;
  std::vector<std::string> allowed_values;  // TEXT facts, in file order
};

struct DerivedSpec {
  std::string name;
  std::string unit;
  std::string expression;
  std::string description;
  ValueType type = ValueType::kNumber;
};

struct RuleSpec {
  std::string id;
  RuleKind kind = RuleKind::kInclusion;
  std::string text;        // the protocol's wording
  std::string expression;  // muparser
  std::string note;
  bool informational = false;                  // reported, does not gate
  Decision action = Decision::kIndeterminate;  // escalation rules only
};

struct DoseLevelSpec {
  std::string id;
  double cells_per_kg = 0;
  std::string description;
};

// A checked expression: a derived value or a rule. Nodes are numbered
// derived values first (0..D-1), then rules (D..D+R-1).
struct NodeSpec {
  std::vector<int> facts;  // facts it uses directly (indices into facts)
  std::vector<int> nodes;  // nodes it uses directly
};

// Everything a rule file declares, checked: names resolved, types and units
// consistent, no cycles.
struct RuleSetDefinition {
  std::string file_name;
  std::string sha256;  // hex, of the rule file's bytes
  std::string protocol_id;
  std::string version;
  DayNumber effective_from = 0;
  std::optional<DayNumber> effective_until;  // inclusive
  std::string title;
  std::string registry_reference;
  std::string description;
  bool illustrative = false;
  // How refusals name a value and what it is for: "fact" of a "protocol";
  // a decision table's are "observation" of a "table".
  std::string value_noun = "fact";
  std::string subject_noun = "protocol";
  std::vector<FactSpec> facts;
  std::vector<DerivedSpec> derived;
  std::vector<RuleSpec> rules;  // every kind, in file order per kind
  std::vector<DoseLevelSpec> dose_levels;
  // The words of every TEXT fact, sorted and unique. In expressions and in
  // value slots a word is its code: its index here plus one.
  std::vector<std::string> words;
  // The decision tables this version uses: (table id, version).
  std::vector<std::pair<std::string, std::string>> decision_tables;
  // Answers from trial records (trial.h), as the file states them, checked.
  std::optional<v1::DltDefinition> dlt;
  std::vector<v1::RecordCount> record_counts;
  std::optional<v1::BoinDesign> boin;
  // Where facts come from in a FHIR Bundle, as the file states them, checked.
  std::vector<v1::FhirBinding> fhir_bindings;
  // Of the BOIN design's parameters and boundary table, computed at load.
  std::string boin_sha256;
  // Per node (derived values, then rules), and the nodes in an order in
  // which every node comes after the nodes it uses.
  std::vector<NodeSpec> nodes;
  std::vector<int> node_order;

  // The code of `word` (see `words`), or 0 when it is not one.
  double WordCode(std::string_view word) const {
    const auto it = std::lower_bound(words.begin(), words.end(), word);
    return it != words.end() && *it == word ? static_cast<double>(it - words.begin() + 1) : 0;
  }

  const std::string& NodeName(int node) const {
    const int derived_count = static_cast<int>(derived.size());
    return node < derived_count ? derived[node].name : rules[node - derived_count].id;
  }
  const std::string& NodeExpression(int node) const {
    const int derived_count = static_cast<int>(derived.size());
    return node < derived_count ? derived[node].expression
                                : rules[node - derived_count].expression;
  }
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_DEFINITION_H_
