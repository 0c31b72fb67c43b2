#include "service/engine/loader.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/engine/sha256.h"
#include "trialrules/v1/rule_file.pb.h"

namespace trialrules {

std::string Problem::ToString() const {
  std::string out = absl::StrCat(file, ":", line, ":", column, ": ");
  if (!rule_id.empty()) absl::StrAppend(&out, "rule ", rule_id, ": ");
  absl::StrAppend(&out, message);
  return out;
}

namespace {

using google::protobuf::Message;
using google::protobuf::TextFormat;
namespace pb = ::trialrules::v1;

constexpr size_t kMaxNameLength = 64;
constexpr DayNumber kDefaultMinDate = -25567;  // 1900-01-01
constexpr DayNumber kDefaultMaxDate = 84005;   // 2199-12-31

const std::set<std::string, std::less<>>& ReservedNames() {
  static const auto* names = new std::set<std::string, std::less<>>{
      "if", "abs", "sqrt", "exp", "ln", "log10", "floor", "ceil", "min", "max",
      "beta_cdf", "binom_cdf"};
  return *names;
}

bool IsIdentifier(absl::string_view name) {
  static const std::regex kIdentifier("[A-Za-z][A-Za-z0-9_]*");
  return name.size() <= kMaxNameLength &&
         std::regex_match(name.begin(), name.end(), kIdentifier);
}

bool IsLabel(absl::string_view text) {
  static const std::regex kLabel("[A-Za-z0-9][A-Za-z0-9._-]*");
  return text.size() <= kMaxNameLength &&
         std::regex_match(text.begin(), text.end(), kLabel);
}

// Positions of fields in the rule file, from protobuf's parse-info tree.
class Locator {
 public:
  using Tree = TextFormat::ParseInfoTree;

  explicit Locator(absl::string_view text) : text_(text) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  static const google::protobuf::FieldDescriptor* Field(const Message& message,
                                                        absl::string_view name) {
    return message.GetDescriptor()->FindFieldByName(std::string(name));
  }

  // 1-based line and column of `field` (element `index` if repeated).
  static std::pair<int, int> Of(const Tree* tree, const Message& message,
                                absl::string_view field, int index = -1) {
    const auto* descriptor = Field(message, field);
    if (tree == nullptr || descriptor == nullptr) return {0, 0};
    // protobuf aborts on an index out of range: clamp it.
    if (descriptor->is_repeated()) {
      const int size = message.GetReflection()->FieldSize(message, descriptor);
      if (size == 0) return {0, 0};
      index = std::clamp(index, 0, size - 1);
    } else {
      index = -1;
    }
    const auto location = tree->GetLocation(descriptor, index);
    if (location.line < 0) return {0, 0};
    return {location.line + 1, location.column + 1};
  }

  static const Tree* Nested(const Tree* tree, const Message& message,
                            absl::string_view field, int index) {
    const auto* descriptor = Field(message, field);
    if (tree == nullptr || descriptor == nullptr || !descriptor->is_repeated() ||
        index < 0 ||
        index >= message.GetReflection()->FieldSize(message, descriptor)) {
      return nullptr;
    }
    return tree->GetTreeForNested(descriptor, index);
  }

  // The position of character `offset` of a string field's value, assuming
  // the value is one quoted literal without escapes before that character
  // (otherwise the field's own position).
  std::pair<int, int> InString(std::pair<int, int> field_position,
                               int offset) const {
    if (field_position.first <= 0 || offset < 0) return field_position;
    size_t at = line_starts_[field_position.first - 1] + field_position.second - 1;
    while (at < text_.size() && text_[at] != '"' && text_[at] != '\'' &&
           text_[at] != '\n') {
      ++at;
    }
    if (at >= text_.size() || text_[at] == '\n') return field_position;
    const char quote = text_[at];
    const size_t start = at + 1;
    for (size_t i = start; i < start + offset; ++i) {
      if (i >= text_.size() || text_[i] == '\\' || text_[i] == quote ||
          text_[i] == '\n') {
        return field_position;
      }
    }
    const size_t target = start + offset;
    const auto line_it =
        std::upper_bound(line_starts_.begin(), line_starts_.end(), target) - 1;
    return {static_cast<int>(line_it - line_starts_.begin()) + 1,
            static_cast<int>(target - *line_it) + 1};
  }

 private:
  absl::string_view text_;
  std::vector<size_t> line_starts_;
};

// Checks a parsed rule file into a RuleSetDefinition, collecting problems.
class Compiler {
 public:
  Compiler(absl::string_view text, std::string file_name, const pb::RuleFile& file,
           const Locator::Tree* tree, std::vector<Problem>* problems)
      : locator_(text), file_name_(std::move(file_name)), file_(file),
        tree_(tree), problems_(problems) {}

  bool Compile(RuleSetDefinition* def) {
    CompileHeader(def);
    CompileFacts(def);
    CompileDerived(def);
    CompileRules(def);
    CompileDoseLevels(def);
    if (!problems_->empty()) return false;
    CheckCycles(*def);
    return problems_->empty();
  }

  void RunTests(const RuleSet& rule_set, std::vector<TestCaseResult>* results);

 private:
  void Report(std::pair<int, int> position, std::string rule_id,
              std::string message) {
    problems_->push_back({file_name_, position.first, position.second,
                          std::move(rule_id), std::move(message)});
  }
  void ReportAt(const Message& message, absl::string_view field, int index,
                std::string rule_id, std::string text) {
    Report(Locator::Of(tree_, message, field, index), std::move(rule_id),
           std::move(text));
  }

  std::optional<DayNumber> Date(absl::string_view field, const std::string& text) {
    absl::StatusOr<DayNumber> day = ParseIsoDate(text);
    if (!day.ok()) {
      ReportAt(file_, field, -1, "", absl::StrCat(field, ": ", day.status().message()));
      return std::nullopt;
    }
    return *day;
  }

  void CompileHeader(RuleSetDefinition* def) {
    def->protocol_id = file_.protocol_id();
    def->version = file_.version();
    def->title = file_.title();
    def->registry_reference = file_.registry_reference();
    def->description = file_.description();
    def->illustrative = file_.illustrative();
    if (!IsLabel(file_.protocol_id())) {
      ReportAt(file_, "protocol_id", -1, "",
               absl::StrCat("protocol_id \"", file_.protocol_id(),
                            "\" must be 1-64 letters, digits, '.', '_' or '-'"));
    }
    if (!IsLabel(file_.version())) {
      ReportAt(file_, "version", -1, "",
               absl::StrCat("version \"", file_.version(),
                            "\" must be 1-64 letters, digits, '.', '_' or '-'"));
    }
    if (file_.effective_from().empty()) {
      Report({1, 1}, "", "effective_from is required (YYYY-MM-DD)");
    } else if (auto from = Date("effective_from", file_.effective_from())) {
      def->effective_from = *from;
    }
    if (!file_.effective_until().empty()) {
      if (auto until = Date("effective_until", file_.effective_until())) {
        def->effective_until = *until;
        if (*until < def->effective_from) {
          ReportAt(file_, "effective_until", -1, "",
                   "effective_until is before effective_from");
        }
      }
    }
  }

  // Names share one namespace: facts, derived values and rule ids.
  bool ClaimName(const Message& message, absl::string_view field, int index,
                 const std::string& name, absl::string_view what) {
    const auto position = Locator::Of(tree_, message, field, index);
    if (!IsIdentifier(name)) {
      Report(position, "", absl::StrCat(what, " name \"", name,
                                        "\" must be a letter followed by letters, "
                                        "digits or '_' (at most 64)"));
      return false;
    }
    if (ReservedNames().count(name) > 0) {
      Report(position, "", absl::StrCat(what, " name \"", name,
                                        "\" is a function name"));
      return false;
    }
    if (!names_.insert(name).second) {
      Report(position, "", absl::StrCat("duplicate name \"", name, "\""));
      return false;
    }
    return true;
  }

  void CompileFacts(RuleSetDefinition* def) {
    for (int i = 0; i < file_.facts_size(); ++i) {
      const pb::Fact& fact = file_.facts(i);
      const Locator::Tree* tree = Locator::Nested(tree_, file_, "facts", i);
      auto report = [&](absl::string_view field, std::string message) {
        Report(Locator::Of(tree, fact, field), "",
               absl::StrCat("fact \"", fact.name(), "\": ", message));
      };
      if (!ClaimName(file_, "facts", i, fact.name(), "fact")) continue;
      FactSpec spec;
      spec.name = fact.name();
      spec.unit = fact.unit();
      spec.integer = fact.integer();
      spec.description = fact.description();
      switch (fact.type()) {
        case pb::NUMBER: spec.type = ValueType::kNumber; break;
        case pb::BOOL: spec.type = ValueType::kBool; break;
        case pb::DATE: spec.type = ValueType::kDate; break;
        default:
          report("name", "type is required (NUMBER, BOOL or DATE)");
          continue;
      }
      const bool number = spec.type == ValueType::kNumber;
      if (!number && (!fact.unit().empty() || fact.accepted_units_size() > 0 ||
                      fact.integer() || fact.has_min() || fact.has_max())) {
        report("type", "unit, accepted_units, integer, min and max apply to NUMBER facts only");
      }
      if (spec.type != ValueType::kDate &&
          (!fact.min_date().empty() || !fact.max_date().empty())) {
        report("type", "min_date and max_date apply to DATE facts only");
      }
      std::set<std::string> units = {fact.unit()};
      for (const pb::AlternativeUnit& unit : fact.accepted_units()) {
        if (unit.unit().empty() || !units.insert(unit.unit()).second) {
          report("accepted_units",
                 absl::StrCat("accepted unit \"", unit.unit(),
                              "\" is empty or given twice"));
        } else if (!std::isfinite(unit.per_canonical_unit()) ||
                   unit.per_canonical_unit() <= 0) {
          report("accepted_units",
                 absl::StrCat("unit \"", unit.unit(),
                              "\": per_canonical_unit must be a positive number"));
        }
        spec.accepted_units.push_back({unit.unit(), unit.per_canonical_unit()});
      }
      if (fact.has_min()) spec.min = fact.min();
      if (fact.has_max()) spec.max = fact.max();
      if (spec.type == ValueType::kDate) {
        spec.min = kDefaultMinDate;
        spec.max = kDefaultMaxDate;
        for (auto [field, text, bound] :
             {std::tuple{"min_date", fact.min_date(), &spec.min},
              std::tuple{"max_date", fact.max_date(), &spec.max}}) {
          if (text.empty()) continue;
          absl::StatusOr<DayNumber> day = ParseIsoDate(text);
          if (!day.ok()) {
            report(field, std::string(day.status().message()));
          } else {
            *bound = *day;
          }
        }
      }
      if (!(spec.min <= spec.max)) report("min", "min is greater than max");
      def->facts.push_back(std::move(spec));
      types_[fact.name()] = def->facts.back().type;
    }
  }

  // Checks one expression; returns its used names, or nullopt on a problem.
  std::optional<std::vector<std::string>> CheckNode(
      const Message& message, const Locator::Tree* tree, const std::string& id,
      const std::string& expression, ValueType wanted, absl::string_view what) {
    const ExpressionCheck check = CheckExpression(expression, types_);
    const auto position = Locator::Of(tree, message, "expression");
    if (expression.empty()) {
      Report(Locator::Of(tree, message, "id"), id, "expression is required");
      return std::nullopt;
    }
    if (!check.error.empty()) {
      Report(locator_.InString(position, check.error_offset), id, check.error);
      return std::nullopt;
    }
    if (check.type != wanted &&
        !(wanted == ValueType::kNumber && check.type == ValueType::kDate)) {
      Report(position, id,
             absl::StrCat(what, " must give ",
                          wanted == ValueType::kBool ? "a true/false value"
                                                     : "a number or a date",
                          ", but the expression gives a ",
                          ValueTypeName(check.type)));
      return std::nullopt;
    }
    node_positions_[id] = position;
    return check.used_names;
  }

  // Names are declared before use is checked, so that rules may refer to
  // rules and derived values declared further down; types of rule ids are
  // always bool.
  void CompileDerived(RuleSetDefinition* def) {
    for (int i = 0; i < file_.derived_values_size(); ++i) {
      const pb::DerivedValue& derived = file_.derived_values(i);
      if (!ClaimName(file_, "derived_values", i, derived.name(), "derived value")) {
        continue;
      }
      types_[derived.name()] = ValueType::kNumber;
      pending_derived_.push_back(i);
    }
    for (const RuleList& list : RuleLists()) {
      for (int i = 0; i < list.rules->size(); ++i) {
        const pb::Rule& rule = list.rules->Get(i);
        if (ClaimName(file_, list.field, i, rule.id(), "rule")) {
          types_[rule.id()] = ValueType::kBool;
        }
      }
    }
    // Derived values may use derived values: settle their types in order of
    // use (a date derived value is a date), at most one pass per value.
    for (size_t pass = 0; pass <= pending_derived_.size(); ++pass) {
      for (int i : pending_derived_) {
        const pb::DerivedValue& derived = file_.derived_values(i);
        const ExpressionCheck check = CheckExpression(derived.expression(), types_);
        if (check.error.empty()) types_[derived.name()] = check.type;
      }
    }
    for (int i : pending_derived_) {
      const pb::DerivedValue& derived = file_.derived_values(i);
      const Locator::Tree* tree = Locator::Nested(tree_, file_, "derived_values", i);
      auto used = CheckNode(derived, tree, derived.name(), derived.expression(),
                            ValueType::kNumber, "a derived value");
      if (!used) continue;
      edges_[derived.name()] = *used;
      def->derived.push_back({derived.name(), derived.unit(), derived.expression(),
                              derived.description(), types_[derived.name()]});
    }
  }

  struct RuleList {
    const char* field;
    RuleKind kind;
    const google::protobuf::RepeatedPtrField<pb::Rule>* rules;
  };
  std::vector<RuleList> RuleLists() const {
    return {{"inclusion", RuleKind::kInclusion, &file_.inclusion()},
            {"exclusion", RuleKind::kExclusion, &file_.exclusion()},
            {"withdrawal", RuleKind::kWithdrawal, &file_.withdrawal()},
            {"stopping", RuleKind::kStopping, &file_.stopping()},
            {"escalation", RuleKind::kEscalation, &file_.escalation()}};
  }

  static Decision ActionDecision(pb::EscalationAction action) {
    switch (action) {
      case pb::ESCALATE: return Decision::kEscalate;
      case pb::EXPAND: return Decision::kExpand;
      case pb::DE_ESCALATE: return Decision::kDeEscalate;
      case pb::CONTINUE: return Decision::kContinue;
      default: return Decision::kIndeterminate;
    }
  }

  void CompileRules(RuleSetDefinition* def) {
    std::set<pb::EscalationAction> actions;
    for (const RuleList& list : RuleLists()) {
      for (int i = 0; i < list.rules->size(); ++i) {
        const pb::Rule& rule = list.rules->Get(i);
        if (types_.find(rule.id()) == types_.end() || !IsIdentifier(rule.id())) {
          continue;  // its name was refused above
        }
        const Locator::Tree* tree = Locator::Nested(tree_, file_, list.field, i);
        if (rule.text().empty()) {
          Report(Locator::Of(tree, rule, "id"), rule.id(),
                 "text (the protocol's wording) is required");
        }
        if (list.kind == RuleKind::kEscalation) {
          if (rule.action() == pb::ESCALATION_ACTION_UNSPECIFIED) {
            Report(Locator::Of(tree, rule, "id"), rule.id(),
                   "escalation rules need an action (ESCALATE, EXPAND, "
                   "DE_ESCALATE or CONTINUE)");
          } else if (!actions.insert(rule.action()).second) {
            Report(Locator::Of(tree, rule, "action"), rule.id(),
                   absl::StrCat("a second rule for action ",
                                pb::EscalationAction_Name(rule.action())));
          }
        } else if (rule.action() != pb::ESCALATION_ACTION_UNSPECIFIED) {
          Report(Locator::Of(tree, rule, "action"), rule.id(),
                 "action applies to escalation rules only");
        }
        auto used = CheckNode(rule, tree, rule.id(), rule.expression(),
                              ValueType::kBool, "a rule");
        if (!used) continue;
        edges_[rule.id()] = *used;
        def->rules.push_back({rule.id(), list.kind, rule.text(), rule.expression(),
                              rule.note(), rule.informational(),
                              ActionDecision(rule.action())});
      }
    }
  }

  void CompileDoseLevels(RuleSetDefinition* def) {
    std::set<std::string> ids;
    for (int i = 0; i < file_.dose_levels_size(); ++i) {
      const pb::DoseLevel& level = file_.dose_levels(i);
      if (level.id().empty() || !ids.insert(level.id()).second) {
        ReportAt(file_, "dose_levels", i, "",
                 absl::StrCat("dose level id \"", level.id(), "\" is empty or repeated"));
      } else if (!(level.cells_per_kg() > 0) || !std::isfinite(level.cells_per_kg())) {
        ReportAt(file_, "dose_levels", i, "",
                 absl::StrCat("dose level \"", level.id(),
                              "\": cells_per_kg must be a positive number"));
      }
      def->dose_levels.push_back({level.id(), level.cells_per_kg(), level.description()});
    }
  }

  void CheckCycles(const RuleSetDefinition& def) {
    absl::flat_hash_map<std::string, int> state;  // 1 open, 2 done
    std::vector<std::string> path;
    auto visit = [&](auto&& self, const std::string& name) -> bool {
      const auto edges = edges_.find(name);
      if (edges == edges_.end()) return true;  // a fact
      int& s = state[name];
      if (s == 2) return true;
      if (s == 1) {
        auto start = std::find(path.begin(), path.end(), name);
        std::vector<std::string> cycle(start, path.end());
        cycle.push_back(name);
        Report(node_positions_[name], name,
               absl::StrCat("cycle: ", absl::StrJoin(cycle, " -> ")));
        return false;
      }
      s = 1;
      path.push_back(name);
      for (const std::string& used : edges->second) {
        if (!self(self, used)) return false;
      }
      path.pop_back();
      state[name] = 2;
      return true;
    };
    for (const DerivedSpec& derived : def.derived) {
      if (!visit(visit, derived.name)) return;
    }
    for (const RuleSpec& rule : def.rules) {
      if (!visit(visit, rule.id)) return;
    }
  }

  bool ToInput(const pb::FactValue& value, const std::pair<int, int>& position,
               const std::string& owner, FactInput* input) {
    input->name = value.name();
    input->unit = value.unit();
    switch (value.value_case()) {
      case pb::FactValue::kNumber: input->value = value.number(); return true;
      case pb::FactValue::kBoolean: input->value = value.boolean(); return true;
      case pb::FactValue::kDate: input->value = value.date(); return true;
      default:
        Report(position, "", absl::StrCat(owner, ": fact \"", value.name(),
                                          "\" has no value"));
        return false;
    }
  }

  // Base facts, less `remove`, plus `facts` (which override by name).
  bool BuildFacts(const std::string& owner, const std::string& based_on,
                  const google::protobuf::RepeatedPtrField<std::string>& remove,
                  const google::protobuf::RepeatedPtrField<pb::FactValue>& facts,
                  std::pair<int, int> position, std::vector<FactInput>* out) {
    if (!based_on.empty()) {
      const auto base = fact_sets_.find(based_on);
      if (base == fact_sets_.end()) {
        Report(position, "", absl::StrCat(owner, ": based_on \"", based_on,
                                          "\" is not a fact set declared above"));
        return false;
      }
      *out = base->second;
    }
    for (const std::string& name : remove) {
      const auto it = std::find_if(out->begin(), out->end(),
                                   [&](const FactInput& f) { return f.name == name; });
      if (it == out->end()) {
        Report(position, "", absl::StrCat(owner, ": cannot remove \"", name,
                                          "\": not in the base facts"));
        return false;
      }
      out->erase(it);
    }
    for (const pb::FactValue& value : facts) {
      FactInput input;
      if (!ToInput(value, position, owner, &input)) return false;
      const auto it = std::find_if(out->begin(), out->end(),
                                   [&](const FactInput& f) { return f.name == input.name; });
      if (it != out->end()) {
        *it = std::move(input);
      } else {
        out->push_back(std::move(input));
      }
    }
    return true;
  }

  std::string RunTest(const RuleSet& rule_set, const pb::TestCase& test,
                      const std::vector<FactInput>& inputs, std::string* rule_id);

  Locator locator_;
  std::string file_name_;
  const pb::RuleFile& file_;
  const Locator::Tree* tree_;
  std::vector<Problem>* problems_;
  absl::flat_hash_set<std::string> names_;
  absl::flat_hash_map<std::string, ValueType> types_;
  std::vector<int> pending_derived_;
  absl::flat_hash_map<std::string, std::vector<std::string>> edges_;
  absl::flat_hash_map<std::string, std::pair<int, int>> node_positions_;
  absl::flat_hash_map<std::string, std::vector<FactInput>> fact_sets_;
};

std::optional<EvaluationKind> KindOf(pb::EvaluationKind kind) {
  switch (kind) {
    case pb::ELIGIBILITY: return EvaluationKind::kEligibility;
    case pb::WITHDRAWAL: return EvaluationKind::kWithdrawal;
    case pb::ESCALATION: return EvaluationKind::kEscalation;
    case pb::STOPPING: return EvaluationKind::kStopping;
    default: return std::nullopt;
  }
}

// Returns what failed (empty when the test passes).
std::string Compiler::RunTest(const RuleSet& rule_set, const pb::TestCase& test,
                              const std::vector<FactInput>& inputs,
                              std::string* rule_id) {
  const std::optional<EvaluationKind> kind = KindOf(test.kind());
  if (!kind) return "kind is required (ELIGIBILITY, WITHDRAWAL, ESCALATION or STOPPING)";
  absl::StatusOr<FactValues> facts = rule_set.BindFacts(inputs);
  if (!test.expect_refusal().empty()) {
    if (facts.ok()) {
      return absl::StrCat("expected the facts to be refused (\"",
                          test.expect_refusal(), "\"), but they were accepted");
    }
    if (facts.status().message().find(test.expect_refusal()) == std::string::npos) {
      return absl::StrCat("expected a refusal containing \"", test.expect_refusal(),
                          "\", got: ", facts.status().message());
    }
    return "";
  }
  if (!facts.ok()) return absl::StrCat("facts refused: ", facts.status().message());
  const Evaluation evaluation = rule_set.Evaluate(*kind, *facts);
  auto describe = [&](const RuleResult& r) {
    std::string text = absl::StrCat(rule_set.rules()[r.rule].id, " ",
                                    OutcomeName(r.outcome));
    if (r.not_finite) absl::StrAppend(&text, " (not finite)");
    if (!r.missing_facts.empty()) {
      std::vector<std::string> names;
      for (int f : r.missing_facts) names.push_back(rule_set.facts()[f].name);
      absl::StrAppend(&text, " (missing ", absl::StrJoin(names, ", "), ")");
    }
    return text;
  };
  for (const pb::ExpectedOutcome& expected : test.expect()) {
    const auto result = std::find_if(
        evaluation.rules.begin(), evaluation.rules.end(), [&](const RuleResult& r) {
          return rule_set.rules()[r.rule].id == expected.rule();
        });
    *rule_id = expected.rule();
    if (result == evaluation.rules.end()) {
      return absl::StrCat("no such rule among the ", EvaluationKindName(*kind),
                          " rules");
    }
    if (expected.outcome() != "TRUE" && expected.outcome() != "FALSE" &&
        expected.outcome() != "UNKNOWN") {
      return absl::StrCat("expected outcome \"", expected.outcome(),
                          "\" is not TRUE, FALSE or UNKNOWN");
    }
    if (OutcomeName(result->outcome) != expected.outcome()) {
      return absl::StrCat("expected ", expected.outcome(), ", got ",
                          describe(*result));
    }
    if (expected.check_missing_facts()) {
      std::set<std::string> want(expected.missing_facts().begin(),
                                 expected.missing_facts().end());
      std::set<std::string> got;
      for (int f : result->missing_facts) got.insert(rule_set.facts()[f].name);
      if (want != got) {
        return absl::StrCat("expected missing facts [", absl::StrJoin(want, ", "),
                            "], got [", absl::StrJoin(got, ", "), "]");
      }
    }
  }
  rule_id->clear();
  if (!test.expect_decision().empty() &&
      DecisionName(evaluation.decision) != test.expect_decision()) {
    std::vector<std::string> outcomes;
    for (const RuleResult& r : evaluation.rules) outcomes.push_back(describe(r));
    return absl::StrCat("expected decision ", test.expect_decision(), ", got ",
                        DecisionName(evaluation.decision), " [",
                        absl::StrJoin(outcomes, "; "), "]");
  }
  return "";
}

void Compiler::RunTests(const RuleSet& rule_set,
                        std::vector<TestCaseResult>* results) {
  for (int i = 0; i < file_.fact_sets_size(); ++i) {
    const pb::FactSet& set = file_.fact_sets(i);
    const auto position = Locator::Of(tree_, file_, "fact_sets", i);
    const std::string owner = absl::StrCat("fact set \"", set.name(), "\"");
    std::vector<FactInput> inputs;
    if (set.name().empty() || fact_sets_.contains(set.name())) {
      Report(position, "", absl::StrCat(owner, ": name is empty or repeated"));
      continue;
    }
    if (BuildFacts(owner, set.based_on(), set.remove(), set.facts(), position,
                   &inputs)) {
      fact_sets_[set.name()] = std::move(inputs);
    }
  }
  std::set<std::string> names;
  for (int i = 0; i < file_.test_cases_size(); ++i) {
    const pb::TestCase& test = file_.test_cases(i);
    const auto position = Locator::Of(tree_, file_, "test_cases", i);
    const std::string owner = absl::StrCat("test case \"", test.name(), "\"");
    if (test.name().empty() || !names.insert(test.name()).second) {
      Report(position, "", absl::StrCat(owner, ": name is empty or repeated"));
      continue;
    }
    std::vector<FactInput> inputs;
    std::string failure = "cannot build its facts";
    std::string rule_id;
    if (BuildFacts(owner, test.based_on(), test.remove(), test.facts(), position,
                   &inputs)) {
      failure = RunTest(rule_set, test, inputs, &rule_id);
      if (!failure.empty()) {
        Report(position, rule_id, absl::StrCat(owner, ": ", failure));
      }
    }
    results->push_back({test.name(), failure.empty()});
  }
}

// Reports the first string field, in file order, that is not valid UTF-8:
// protobuf's text parser takes any bytes in a string, and a rule set's
// strings go into answers that must parse on the caller's side.
bool AllStringsUtf8(const Message& message, const TextFormat::ParseInfoTree* tree,
                    const std::string& path, const std::string& file,
                    std::vector<Problem>* problems) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      const int index = field->is_repeated() ? i : -1;
      const std::string name = absl::StrCat(
          path, field->name(), field->is_repeated() ? absl::StrCat("[", i, "]") : "");
      if (field->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
        const std::string value = field->is_repeated()
                                      ? reflection->GetRepeatedString(message, field, i)
                                      : reflection->GetString(message, field);
        if (IsValidUtf8(value)) continue;
        const auto location = tree != nullptr ? tree->GetLocation(field, index)
                                              : TextFormat::ParseLocation();
        problems->push_back({file, location.line + 1, location.column + 1, "",
                             absl::StrCat(name, " is not valid UTF-8")});
        return false;
      }
      if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
        const Message& nested = field->is_repeated()
                                    ? reflection->GetRepeatedMessage(message, field, i)
                                    : reflection->GetMessage(message, field);
        const TextFormat::ParseInfoTree* nested_tree =
            tree != nullptr ? tree->GetTreeForNested(field, index) : nullptr;
        if (!AllStringsUtf8(nested, nested_tree, name + ".", file, problems)) return false;
      }
    }
  }
  return true;
}

}  // namespace

LoadResult LoadRuleSet(absl::string_view text, absl::string_view file_name) {
  LoadResult result;
  pb::RuleFile file;
  TextFormat::ParseInfoTree tree;
  ProblemCollector errors{std::string(file_name), &result.problems};
  TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(std::string(text), &file)) {
    if (result.problems.empty()) {
      result.problems.push_back({std::string(file_name), 0, 0, "",
                                 "not a valid rule file"});
    }
    return result;
  }
  if (!AllStringsUtf8(file, &tree, "", std::string(file_name), &result.problems)) {
    return result;
  }

  RuleSetDefinition def;
  def.file_name = std::string(file_name);
  def.sha256 = Sha256Hex(text);
  Compiler compiler(text, std::string(file_name), file, &tree, &result.problems);
  if (!compiler.Compile(&def)) return result;

  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set =
      RuleSet::Create(std::move(def));
  if (!rule_set.ok()) {
    result.problems.push_back({std::string(file_name), 0, 0, "",
                               std::string(rule_set.status().message())});
    return result;
  }
  compiler.RunTests(**rule_set, &result.tests);
  if (result.problems.empty()) result.rule_set = *std::move(rule_set);
  return result;
}

}  // namespace trialrules
