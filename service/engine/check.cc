#include "service/engine/check.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/engine/expression.h"
#include "service/engine/trial.h"

namespace trialrules {

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

namespace {

using google::protobuf::Message;
namespace pb = ::trialrules::v1;

constexpr DayNumber kDefaultMinDate = -25567;  // 1900-01-01
constexpr DayNumber kDefaultMaxDate = 84005;   // 2199-12-31
// Day counts of a DLT definition (windows, durations): a century is more
// than any protocol needs, and keeps date arithmetic far from overflow.
constexpr int kMaxTrialDays = 36500;

bool IsFunctionName(absl::string_view name) {
  return std::find(std::begin(kFunctionNames), std::end(kFunctionNames), name) !=
         std::end(kFunctionNames);
}

Declarations RuleFileDeclarations(const ParsedRuleFile& parsed) {
  const pb::RuleFile& file = parsed.file;
  Declarations d{&file, &parsed.tree, &file.facts(), &file.derived_values(), {},
                 file.test_cases_size()};
  for (auto [field, kind, rules] :
       {std::tuple{"inclusion", RuleKind::kInclusion, &file.inclusion()},
        std::tuple{"exclusion", RuleKind::kExclusion, &file.exclusion()},
        std::tuple{"withdrawal", RuleKind::kWithdrawal, &file.withdrawal()},
        std::tuple{"stopping", RuleKind::kStopping, &file.stopping()},
        std::tuple{"escalation", RuleKind::kEscalation, &file.escalation()}}) {
    d.rule_lists.push_back(RuleList::Of(field, kind, *rules));
  }
  return d;
}

// Checks the declarations of a parsed file into a RuleSetDefinition,
// collecting problems.
class Checker {
 public:
  // `rule_file`: the rule file `parsed` holds; null for a table's declarations.
  Checker(const ParsedText& parsed, const pb::RuleFile* rule_file,
          Declarations declarations, std::vector<Problem>* problems, KeepGoing keep_going)
      : parsed_(parsed), file_name_(parsed.file_name),
        file_(rule_file != nullptr ? *rule_file : pb::RuleFile::default_instance()),
        decl_(std::move(declarations)), tree_(decl_.tree), problems_(problems),
        keep_going_(keep_going) {}

  // A protocol's rule file: its header, declarations and dose levels.
  bool Check(RuleSetDefinition* def) {
    def->file_name = parsed_.file_name;
    def->sha256 = parsed_.sha256;
    if (!CheckCounts()) return false;
    CheckHeader(def);
    CheckFacts(def);
    CheckDerived(def);
    CheckRules(def);
    if (stopped_) return false;
    CheckDoseLevels(def);
    CheckTableReferences(def);
    CheckTrialAnswers(def);
    CheckFhirBindings(def);
    return Resolve(def);
  }

  // Declarations only (one table of a decision-table file).
  bool CheckDeclarations(RuleSetDefinition* def) {
    def->file_name = parsed_.file_name;
    def->sha256 = parsed_.sha256;
    if (!CheckCounts()) return false;
    CheckFacts(def);
    CheckDerived(def);
    CheckRules(def);
    if (stopped_) return false;
    return Resolve(def);
  }

 private:
  void Report(SourcePosition position, std::string rule_id,
              std::string message) {
    problems_->push_back({file_name_, position.first, position.second,
                          std::move(rule_id), std::move(message)});
  }
  void ReportAt(const Message& message, absl::string_view field, int index,
                std::string rule_id, std::string text) {
    Report(ParsedRuleFile::Of(tree_, message, field, index), std::move(rule_id),
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

  bool Resolve(RuleSetDefinition* def) {
    if (!problems_->empty()) return false;
    CheckCycles(*def);
    if (!problems_->empty()) return false;
    ResolveNodes(def);
    return CheckDepth(*def);
  }

  void CheckTableReferences(RuleSetDefinition* def) {
    std::set<std::string> ids;
    for (int i = 0; i < file_.decision_tables_size(); ++i) {
      const pb::TableReference& table = file_.decision_tables(i);
      if (!IsLabel(table.table_id()) || !IsLabel(table.version())) {
        ReportAt(file_, "decision_tables", i, "",
                 absl::StrCat("decision table \"", table.table_id(), "\" version \"",
                              table.version(), "\": table_id and version are required "
                              "(1-64 letters, digits, '.', '_' or '-')"));
      } else if (!ids.insert(table.table_id()).second) {
        ReportAt(file_, "decision_tables", i, "",
                 absl::StrCat("decision table \"", table.table_id(), "\" is named twice"));
      } else {
        def->decision_tables.emplace_back(table.table_id(), table.version());
      }
    }
  }

  void CheckHeader(RuleSetDefinition* def) {
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
    const auto position = ParsedRuleFile::Of(tree_, message, field, index);
    if (!IsIdentifier(name)) {
      Report(position, "", absl::StrCat(what, " name \"", name,
                                        "\" must be a letter followed by letters, "
                                        "digits or '_' (at most 64)"));
      return false;
    }
    if (IsFunctionName(name)) {
      Report(position, "", absl::StrCat(what, " name \"", name,
                                        "\" is a function name"));
      return false;
    }
    if (!names_.insert(name).second) {
      Report(position, "", absl::StrCat("duplicate name \"", name, "\""));
      return false;
    }
    if (words_.contains(name)) {
      Report(position, "", absl::StrCat(what, " name \"", name,
                                        "\" is an allowed value of a TEXT fact"));
      return false;
    }
    return true;
  }

  void CheckFacts(RuleSetDefinition* def) {
    std::set<std::string> words;
    for (int i = 0; i < decl_.facts->size(); ++i) {
      const pb::Fact& fact = decl_.facts->Get(i);
      const ParseTree* tree = ParsedRuleFile::Nested(tree_, *decl_.message, decl_.facts_field, i);
      auto report = [&](absl::string_view field, std::string message) {
        Report(ParsedRuleFile::Of(tree, fact, field), "",
               absl::StrCat("fact \"", fact.name(), "\": ", message));
      };
      if (!ClaimName(*decl_.message, decl_.facts_field, i, fact.name(), "fact")) continue;
      FactSpec spec;
      spec.name = fact.name();
      spec.unit = fact.unit();
      spec.integer = fact.integer();
      spec.description = fact.description();
      switch (fact.type()) {
        case pb::NUMBER: spec.type = ValueType::kNumber; break;
        case pb::BOOL: spec.type = ValueType::kBool; break;
        case pb::DATE: spec.type = ValueType::kDate; break;
        case pb::TEXT: spec.type = ValueType::kText; break;
        default:
          report("name", "type is required (NUMBER, BOOL, DATE or TEXT)");
          continue;
      }
      if (spec.type == ValueType::kText) {
        std::set<std::string> allowed;
        for (const std::string& word : fact.allowed_values()) {
          if (!IsIdentifier(word) || IsFunctionName(word)) {
            report("allowed_values",
                   absl::StrCat("allowed value \"", word,
                                "\" must be a letter followed by letters, digits or '_' "
                                "(at most 64), and not a function name"));
          } else if (!allowed.insert(word).second) {
            report("allowed_values", absl::StrCat("allowed value \"", word, "\" is given twice"));
          } else {
            spec.allowed_values.push_back(word);
            words.insert(word);
            allowed_words_[fact.name()].insert(word);
          }
        }
        if (fact.allowed_values().empty()) {
          report("type", "a TEXT fact needs its allowed_values");
        }
      } else if (!fact.allowed_values().empty()) {
        report("allowed_values", "allowed_values apply to TEXT facts only");
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
        } else if ((unit.per_canonical_unit() != 0) == (unit.canonical_per_unit() != 0) ||
                   !std::isfinite(unit.per_canonical_unit() + unit.canonical_per_unit()) ||
                   unit.per_canonical_unit() + unit.canonical_per_unit() <= 0) {
          report("accepted_units",
                 absl::StrCat("unit \"", unit.unit(),
                              "\": give one positive factor, per_canonical_unit or "
                              "canonical_per_unit"));
        }
        spec.accepted_units.push_back(
            {unit.unit(), unit.per_canonical_unit(), unit.canonical_per_unit()});
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
    // A word is written bare in expressions, so it may not also name a
    // fact, a derived value or a rule (ClaimName refuses those after it).
    for (const std::string& word : words) {
      if (types_.contains(word)) {
        Report({0, 0}, "", absl::StrCat("\"", word, "\" is both an allowed value and a fact name"));
        continue;
      }
      types_[word] = ValueType::kText;
      words_.insert(word);
    }
    def->words.assign(words.begin(), words.end());
  }

  // Asks keep_going_ before an expression is checked.
  bool Stop() {
    if (!stopped_) stopped_ = !keep_going_().ok();
    return stopped_;
  }

  // Checks one expression; returns its used names, or nullopt on a problem
  // (or once keep_going has refused).
  std::optional<std::vector<std::string>> CheckNode(
      const Message& message, const ParseTree* tree, const std::string& id,
      const std::string& expression, ValueType wanted, absl::string_view what) {
    if (Stop()) return std::nullopt;
    const ExpressionCheck check = CheckExpression(expression, types_);
    const auto position = ParsedRuleFile::Of(tree, message, "expression");
    if (expression.empty()) {
      Report(ParsedRuleFile::Of(tree, message, "id"), id, "expression is required");
      return std::nullopt;
    }
    if (!check.error.empty()) {
      Report(parsed_.InString(position, check.error_offset), id, check.error);
      return std::nullopt;
    }
    // A derived value (wanted: a number) may also be a date or true/false.
    if (check.type != wanted &&
        !(wanted == ValueType::kNumber &&
          (check.type == ValueType::kDate || check.type == ValueType::kBool))) {
      Report(position, id,
             absl::StrCat(what, " must give ",
                          wanted == ValueType::kBool ? "a true/false value"
                                                     : "a number, a date or a true/false value",
                          ", but the expression gives a ",
                          ValueTypeName(check.type)));
      return std::nullopt;
    }
    if (std::string misused = MisusedWord(expression); !misused.empty()) {
      Report(position, id, misused);
      return std::nullopt;
    }
    node_positions_[id] = position;
    std::vector<std::string> used;
    for (const std::string& name : check.used_names) {
      if (!words_.contains(name)) used.push_back(name);  // words are constants
    }
    return used;
  }

  // Words are constants shared by every TEXT fact, so the type check lets
  // `seizure == focal` through although `focal` is another fact's word (and
  // the comparison could never hold): each `fact == word` (or `!=`, either
  // way round) must use one of that fact's own words. Empty when none is
  // misused.
  std::string MisusedWord(const std::string& expression) const {
    static const std::regex kComparison(
        R"(([A-Za-z][A-Za-z0-9_]*)\s*(==|!=)\s*([A-Za-z][A-Za-z0-9_]*))");
    for (auto it = std::sregex_iterator(expression.begin(), expression.end(), kComparison);
         it != std::sregex_iterator(); ++it) {
      for (auto [fact, word] : {std::pair{(*it)[1].str(), (*it)[3].str()},
                                std::pair{(*it)[3].str(), (*it)[1].str()}}) {
        const auto allowed = allowed_words_.find(fact);
        if (allowed == allowed_words_.end() || !words_.contains(word) ||
            allowed->second.contains(word)) {
          continue;
        }
        return absl::StrCat("'", word, "' is not an allowed value of ", fact, " (",
                            absl::StrJoin(allowed->second, ", "), ")");
      }
    }
    return "";
  }

  // Names are declared before use is checked, so that rules may refer to
  // rules and derived values declared further down; types of rule ids are
  // always bool.
  void CheckDerived(RuleSetDefinition* def) {
    for (int i = 0; i < decl_.derived->size(); ++i) {
      const pb::DerivedValue& derived = decl_.derived->Get(i);
      if (!ClaimName(*decl_.message, "derived_values", i, derived.name(), "derived value")) {
        continue;
      }
      types_[derived.name()] = ValueType::kNumber;
      pending_derived_.push_back(i);
    }
    for (const RuleList& list : decl_.rule_lists) {
      for (int i = 0; i < static_cast<int>(list.rules.size()); ++i) {
        const RuleView& rule = list.rules[i];
        if (ClaimName(*decl_.message, list.field, i, rule.id(), "rule")) {
          types_[rule.id()] = ValueType::kBool;
        }
      }
    }
    // Derived values may use derived values (a date derived value is a
    // date): settle their types in an order where each follows the values
    // it uses, one check each. Reading the names used needs no types.
    absl::flat_hash_map<std::string, std::vector<int>> uses;  // derived → derived
    absl::flat_hash_map<std::string, int> pending_index;
    for (int i : pending_derived_) pending_index[decl_.derived->Get(i).name()] = i;
    for (int i : pending_derived_) {
      if (Stop()) return;
      const pb::DerivedValue& derived = decl_.derived->Get(i);
      for (const std::string& name : CheckExpression(derived.expression(), types_).used_names) {
        if (const auto used = pending_index.find(name); used != pending_index.end()) {
          uses[derived.name()].push_back(used->second);
        }
      }
    }
    absl::flat_hash_set<int> settled;
    auto settle = [&](auto&& self, int i) -> void {
      if (!settled.insert(i).second || Stop()) return;  // done, on a cycle (reported later)
      const pb::DerivedValue& derived = decl_.derived->Get(i);
      for (int used : uses[derived.name()]) self(self, used);
      const ExpressionCheck check = CheckExpression(derived.expression(), types_);
      if (check.error.empty()) types_[derived.name()] = check.type;
    };
    for (int i : pending_derived_) settle(settle, i);
    for (int i : pending_derived_) {
      const pb::DerivedValue& derived = decl_.derived->Get(i);
      const ParseTree* tree =
          ParsedRuleFile::Nested(tree_, *decl_.message, "derived_values", i);
      auto used = CheckNode(derived, tree, derived.name(), derived.expression(),
                            ValueType::kNumber, "a derived value");
      if (!used) continue;
      edges_[derived.name()] = *used;
      def->derived.push_back({derived.name(), derived.unit(), derived.expression(),
                              derived.description(), types_[derived.name()]});
    }
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

  void CheckRules(RuleSetDefinition* def) {
    std::set<pb::EscalationAction> actions;
    for (const RuleList& list : decl_.rule_lists) {
      for (int i = 0; i < static_cast<int>(list.rules.size()); ++i) {
        const RuleView& rule = list.rules[i];
        if (types_.find(rule.id()) == types_.end() || !IsIdentifier(rule.id()) ||
            words_.contains(rule.id())) {
          continue;  // its name was refused above
        }
        const ParseTree* tree = ParsedRuleFile::Nested(tree_, *decl_.message, list.field, i);
        if (rule.text().empty()) {
          Report(ParsedRuleFile::Of(tree, *rule.message, "id"), rule.id(),
                 absl::StrCat("text (", decl_.text_is, ") is required"));
        }
        if (list.kind == RuleKind::kEscalation) {
          if (rule.action == pb::ESCALATION_ACTION_UNSPECIFIED) {
            Report(ParsedRuleFile::Of(tree, *rule.message, "id"), rule.id(),
                   "escalation rules need an action (ESCALATE, EXPAND, "
                   "DE_ESCALATE or CONTINUE)");
          } else if (!actions.insert(rule.action).second) {
            Report(ParsedRuleFile::Of(tree, *rule.message, "action"), rule.id(),
                   absl::StrCat("a second rule for action ",
                                pb::EscalationAction_Name(rule.action)));
          }
        } else if (rule.action != pb::ESCALATION_ACTION_UNSPECIFIED) {
          Report(ParsedRuleFile::Of(tree, *rule.message, "action"), rule.id(),
                 "action applies to escalation rules only");
        }
        auto used = CheckNode(*rule.message, tree, rule.id(), rule.expression(),
                              ValueType::kBool, "a rule");
        if (!used) continue;
        edges_[rule.id()] = *used;
        def->rules.push_back({rule.id(), list.kind, rule.text(), rule.expression(),
                              *rule.note, rule.informational,
                              ActionDecision(rule.action)});
      }
    }
  }

  void CheckDoseLevels(RuleSetDefinition* def) {
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

  // The DLT definition, record counts and BOIN design: what answers from a
  // trial's records need beyond the rules.
  void CheckTrialAnswers(RuleSetDefinition* def) {
    const size_t problems_before = problems_->size();
    auto report = [&](absl::string_view field, std::string id, std::string text) {
      ReportAt(file_, field, -1, std::move(id), std::move(text));
    };
    if (file_.has_dlt()) {
      const pb::DltDefinition& dlt = file_.dlt();
      if (dlt.window_first_day() < 0 || dlt.window_last_day() < dlt.window_first_day() ||
          dlt.window_last_day() > kMaxTrialDays) {
        report("dlt", "", absl::StrCat("dlt: window_first_day ", dlt.window_first_day(),
                                       " to window_last_day ", dlt.window_last_day(),
                                       " is not a window of days after the infusion"));
      }
      if (dlt.evaluation_days() < 0 || dlt.evaluation_days() > kMaxTrialDays) {
        report("dlt", "", absl::StrCat("dlt: evaluation_days ", dlt.evaluation_days(),
                                       " is not from 0 to ", kMaxTrialDays));
      }
      for (const std::string& attribution : dlt.related_attributions()) {
        if (std::find(std::begin(kAttributions), std::end(kAttributions), attribution) ==
            std::end(kAttributions)) {
          report("dlt", "", absl::StrCat("dlt: related_attributions: \"", attribution,
                                         "\" is not one of ", absl::StrJoin(kAttributions, ", ")));
        }
      }
      if (dlt.criteria().empty()) report("dlt", "", "dlt: no criteria");
      std::set<std::string> ids;
      for (const pb::DltCriterion& criterion : dlt.criteria()) {
        if (!IsLabel(criterion.id()) || !ids.insert(criterion.id()).second) {
          report("dlt", criterion.id(),
                 absl::StrCat("dlt criterion id \"", criterion.id(), "\" is empty or repeated"));
        }
        if (criterion.min_grade() < 1 || criterion.min_grade() > 5) {
          report("dlt", criterion.id(), absl::StrCat("min_grade ", criterion.min_grade(),
                                                     " is not a grade from 1 to 5"));
        }
        if (criterion.has_lasting_more_than_days() &&
            (criterion.lasting_more_than_days() < 0 ||
             criterion.lasting_more_than_days() > kMaxTrialDays)) {
          report("dlt", criterion.id(),
                 absl::StrCat("lasting_more_than_days ", criterion.lasting_more_than_days(),
                              " is not from 0 to ", kMaxTrialDays));
        }
      }
      if (file_.dose_levels().empty()) report("dlt", "", "dlt: the file declares no dose_levels");
    }
    std::set<std::string> counted;
    for (int i = 0; i < file_.record_counts_size(); ++i) {
      const pb::RecordCount& count = file_.record_counts(i);
      auto count_problem = [&](std::string text) {
        ReportAt(file_, "record_counts", i, count.fact(), std::move(text));
      };
      const auto fact = std::find_if(def->facts.begin(), def->facts.end(),
                                     [&](const FactSpec& f) { return f.name == count.fact(); });
      if (fact == def->facts.end() || fact->type != ValueType::kNumber) {
        count_problem(absl::StrCat("record count of \"", count.fact(),
                                   "\": not a NUMBER fact of the file"));
      } else if (!counted.insert(count.fact()).second) {
        count_problem(absl::StrCat("fact \"", count.fact(), "\" is counted twice"));
      }
      switch (count.count_case()) {
        case pb::RecordCount::COUNT_NOT_SET:
          count_problem("record count says nothing to count");
          break;
        case pb::RecordCount::kPatientsWithEvent:
          if (count.patients_with_event().terms().empty() ||
              count.patients_with_event().min_grade() < 1 ||
              count.patients_with_event().min_grade() > 5) {
            count_problem("patients_with_event needs terms and a min_grade from 1 to 5");
          }
          if (count.patients_with_event().related() && !file_.has_dlt()) {
            count_problem("patients_with_event.related needs the dlt definition's attributions");
          }
          break;
        case pb::RecordCount::kTreatmentRelatedDeaths:
          if (count.treatment_related_deaths().within_days() < 0 ||
              count.treatment_related_deaths().within_days() > kMaxTrialDays) {
            count_problem(absl::StrCat("treatment_related_deaths.within_days is not from 0 to ",
                                       kMaxTrialDays));
          }
          break;
        case pb::RecordCount::kEvaluableAtCurrentDose:
        case pb::RecordCount::kDltsAtCurrentDose:
          if (!file_.has_dlt()) count_problem("counting DLTs needs a dlt definition");
          break;
        case pb::RecordCount::kInfused:
          break;
      }
    }
    if (file_.has_boin()) {
      if (!file_.has_dlt()) report("boin", "", "boin: needs a dlt definition");
      absl::StatusOr<std::string> sha256 = BoinDesignSha256(file_.boin());
      if (!sha256.ok()) {
        report("boin", "", absl::StrCat("boin: ", sha256.status().message()));
      } else {
        def->boin_sha256 = *sha256;
      }
    }
    if (file_.has_dlt() && file_.has_boin() && file_.escalation_size() > 0) {
      report("boin", "", "boin and escalation rules would both decide escalation from trial "
                         "records: keep one");
    } else if (file_.has_dlt() && !file_.has_boin() && file_.escalation_size() > 0) {
      const auto counts = [&](auto has) {
        return std::any_of(file_.record_counts().begin(), file_.record_counts().end(), has);
      };
      if (!counts([](const pb::RecordCount& c) { return c.has_evaluable_at_current_dose(); }) ||
          !counts([](const pb::RecordCount& c) { return c.has_dlts_at_current_dose(); })) {
        report("dlt", "", "dlt: the escalation rules decide from the records only with "
                          "record_counts for evaluable_at_current_dose and dlts_at_current_dose");
      }
    }
    if (problems_->size() != problems_before) return;
    if (file_.has_dlt()) def->dlt = file_.dlt();
    def->record_counts.assign(file_.record_counts().begin(), file_.record_counts().end());
    if (file_.has_boin()) def->boin = file_.boin();
  }

  // Where facts come from in a FHIR Bundle. Each binding must name a fact of
  // the file whose type its values can give, and units the fact converts;
  // a code bound twice would make one Observation give two facts (or one
  // fact twice), which a Bundle could then never give unambiguously.
  void CheckFhirBindings(RuleSetDefinition* def) {
    const size_t problems_before = problems_->size();
    std::map<std::pair<std::string, std::string>, std::string> bound_codes;  // → fact
    for (int i = 0; i < file_.fhir_bindings_size(); ++i) {
      const pb::FhirBinding& binding = file_.fhir_bindings(i);
      const ParseTree* tree = ParsedRuleFile::Nested(tree_, file_, "fhir_bindings", i);
      auto report = [&](absl::string_view field, std::string text) {
        Report(ParsedRuleFile::Of(tree, binding, field), "",
               absl::StrCat("fhir binding of \"", binding.fact(), "\": ", text));
      };
      const FactSpec* fact = FactNamed(*def, binding.fact());
      if (fact == nullptr) {
        report("fact", "not a fact of the file");
        continue;
      }
      switch (binding.source_case()) {
        case pb::FhirBinding::SOURCE_NOT_SET:
          report("fact", "give its source: observation, patient_birth_date or patient_gender");
          break;
        case pb::FhirBinding::kPatientBirthDate:
          if (fact->type != ValueType::kNumber) {
            report("patient_birth_date", "Patient.birthDate gives an age: a NUMBER fact");
          }
          break;
        case pb::FhirBinding::kPatientGender:
          if (fact->type != ValueType::kBool) {
            report("patient_gender", "Patient.gender gives true/false: a BOOL fact");
          }
          break;
        case pb::FhirBinding::kObservation: {
          const pb::FhirObservationSource& source = binding.observation();
          const ParseTree* source_tree =
              tree == nullptr ? nullptr
                              : tree->GetTreeForNested(
                                    binding.GetDescriptor()->FindFieldByName("observation"), -1);
          auto at = [&](absl::string_view field, int index, std::string text) {
            Report(ParsedRuleFile::Of(source_tree, source, field, index), "",
                   absl::StrCat("fhir binding of \"", binding.fact(), "\": ", text));
          };
          if (source.codes().empty()) at("codes", -1, "an observation source needs its codes");
          for (int c = 0; c < source.codes_size(); ++c) {
            const pb::FhirCoding& code = source.codes(c);
            if (code.system().empty() || code.code().empty()) {
              at("codes", c, "a code needs its system and code");
              continue;
            }
            const auto [it, inserted] =
                bound_codes.try_emplace({code.system(), code.code()}, binding.fact());
            if (!inserted) {
              at("codes", c, absl::StrCat("code ", code.system(), "|", code.code(),
                                          " is already bound to \"", it->second, "\""));
            }
          }
          if (source.value_types().empty()) {
            at("value_types", -1, "an observation source needs its value_types");
          }
          bool quantity = false;
          bool coded = false;
          for (int v = 0; v < source.value_types_size(); ++v) {
            const auto type = static_cast<pb::FhirValueType>(source.value_types(v));
            const bool number = type == pb::QUANTITY || type == pb::INTEGER;
            const bool boolean = type == pb::BOOLEAN || type == pb::CODEABLE_CONCEPT;
            if ((!number && !boolean) ||
                (number && fact->type != ValueType::kNumber) ||
                (boolean && fact->type != ValueType::kBool)) {
              at("value_types", v,
                 absl::StrCat(pb::FhirValueType_Name(type), " cannot give a ",
                              ValueTypeName(fact->type), " fact"));
            }
            quantity = quantity || type == pb::QUANTITY;
            coded = coded || type == pb::CODEABLE_CONCEPT;
          }
          if (!source.units().empty() && !quantity) {
            at("units", 0, "units apply to QUANTITY values only");
          }
          for (int u = 0; u < source.units_size(); ++u) {
            if (!Accepts(*fact, source.units(u))) {
              at("units", u, absl::StrCat("unit \"", source.units(u), "\" is not ",
                                          UnitsOf(*fact)));
            }
          }
          if (coded != !source.concept_values().empty()) {
            at(coded ? "value_types" : "concept_values", 0,
               "CODEABLE_CONCEPT and concept_values go together");
          }
          std::set<std::pair<std::string, std::string>> concepts;
          for (int v = 0; v < source.concept_values_size(); ++v) {
            const pb::FhirConceptValue& value = source.concept_values(v);
            if (value.system().empty() || value.code().empty() ||
                !concepts.insert({value.system(), value.code()}).second) {
              at("concept_values", v,
                 absl::StrCat("concept value ", value.system(), "|", value.code(),
                              " is empty or given twice"));
            }
          }
          if (!source.reference_range_high().empty()) {
            const FactSpec* target = FactNamed(*def, source.reference_range_high());
            if (target == nullptr || target->type != ValueType::kNumber) {
              at("reference_range_high", -1,
                 absl::StrCat("reference_range_high \"", source.reference_range_high(),
                              "\" is not a NUMBER fact of the file"));
            } else if (!quantity) {
              at("reference_range_high", -1, "a reference range comes with QUANTITY values");
            } else if (target->name == fact->name) {
              at("reference_range_high", -1, "a reference range gives another fact");
            }
          }
          if (source.has_max_age_days() &&
              (source.max_age_days() < 0 || source.max_age_days() > kMaxTrialDays)) {
            at("max_age_days", -1,
               absl::StrCat("max_age_days ", source.max_age_days(), " is not from 0 to ",
                            kMaxTrialDays));
          }
          break;
        }
      }
    }
    if (problems_->size() != problems_before) return;
    def->fhir_bindings.assign(file_.fhir_bindings().begin(), file_.fhir_bindings().end());
  }

  static const FactSpec* FactNamed(const RuleSetDefinition& def, const std::string& name) {
    const auto it = std::find_if(def.facts.begin(), def.facts.end(),
                                 [&](const FactSpec& f) { return f.name == name; });
    return it == def.facts.end() ? nullptr : &*it;
  }

  // Whether a value in `unit` converts to `fact`'s unit.
  static bool Accepts(const FactSpec& fact, const std::string& unit) {
    return unit == fact.unit ||
           std::any_of(fact.accepted_units.begin(), fact.accepted_units.end(),
                       [&](const FactSpec::AlternativeUnit& u) { return u.unit == unit; });
  }

  static std::string UnitsOf(const FactSpec& fact) {
    std::vector<std::string> units = {absl::StrCat("\"", fact.unit, "\"")};
    for (const FactSpec::AlternativeUnit& u : fact.accepted_units) {
      units.push_back(absl::StrCat("\"", u.unit, "\""));
    }
    return absl::StrCat("the fact's unit or an accepted one (", absl::StrJoin(units, ", "), ")");
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

  bool CheckCounts() {
    int rules = 0;
    for (const RuleList& list : decl_.rule_lists) rules += static_cast<int>(list.rules.size());
    for (auto [what, count, limit] :
         {std::tuple{"facts", decl_.facts->size(), kMaxFactsPerFile},
          std::tuple{"derived values", decl_.derived->size(), kMaxDerivedValuesPerFile},
          std::tuple{"rules", rules, kMaxRulesPerFile},
          std::tuple{"test cases", decl_.test_cases, kMaxTestCasesPerFile}}) {
      if (count > limit) {
        Report({0, 0}, "", absl::StrCat("the file declares ", count, " ", what,
                                        "; the limit is ", limit));
      }
    }
    return problems_->empty();
  }

  // Depth in dependency order: a node is one deeper than the deepest it uses.
  bool CheckDepth(const RuleSetDefinition& def) {
    std::vector<int> depth(def.nodes.size(), 1);
    for (int n : def.node_order) {
      for (int used : def.nodes[n].nodes) depth[n] = std::max(depth[n], depth[used] + 1);
      if (depth[n] > kMaxDerivationDepth) {
        Report(node_positions_[def.NodeName(n)], def.NodeName(n),
               absl::StrCat("derived values and rules use one another ", depth[n],
                            " deep here; the limit is ", kMaxDerivationDepth));
        return false;
      }
    }
    return true;
  }

  // Each node's direct uses as indices, and an order of the nodes in which
  // every node follows the nodes it uses (depth-first post-order).
  void ResolveNodes(RuleSetDefinition* def) {
    absl::flat_hash_map<std::string, int> fact_index, node_index;
    for (size_t f = 0; f < def->facts.size(); ++f) fact_index[def->facts[f].name] = f;
    const int node_count = static_cast<int>(def->derived.size() + def->rules.size());
    for (int n = 0; n < node_count; ++n) node_index[def->NodeName(n)] = n;
    def->nodes.resize(node_count);
    for (int n = 0; n < node_count; ++n) {
      for (const std::string& name : edges_[def->NodeName(n)]) {
        if (const auto fact = fact_index.find(name); fact != fact_index.end()) {
          def->nodes[n].facts.push_back(fact->second);
        } else {
          def->nodes[n].nodes.push_back(node_index.at(name));
        }
      }
    }
    std::vector<uint8_t> done(node_count, 0);
    auto visit = [&](auto&& self, int n) -> void {
      if (done[n]) return;
      done[n] = 1;
      for (int used : def->nodes[n].nodes) self(self, used);
      def->node_order.push_back(n);
    };
    for (int n = 0; n < node_count; ++n) visit(visit, n);
  }

  const ParsedText& parsed_;
  std::string file_name_;
  const pb::RuleFile& file_;
  const Declarations decl_;
  const ParseTree* tree_;
  std::vector<Problem>* problems_;
  const KeepGoing keep_going_;
  bool stopped_ = false;  // keep_going_ refused: no more expressions are checked
  absl::flat_hash_set<std::string> names_;
  absl::flat_hash_set<std::string> words_;  // allowed values of TEXT facts
  absl::flat_hash_map<std::string, std::set<std::string>> allowed_words_;  // by TEXT fact
  absl::flat_hash_map<std::string, ValueType> types_;
  std::vector<int> pending_derived_;
  absl::flat_hash_map<std::string, std::vector<std::string>> edges_;
  absl::flat_hash_map<std::string, SourcePosition> node_positions_;
};

}  // namespace

bool CheckRuleFile(const ParsedRuleFile& parsed, RuleSetDefinition* definition,
                   std::vector<Problem>* problems, KeepGoing keep_going) {
  return Checker(parsed, &parsed.file, RuleFileDeclarations(parsed), problems, keep_going)
      .Check(definition);
}

bool CheckDeclarations(const ParsedText& parsed, Declarations declarations,
                       RuleSetDefinition* definition, std::vector<Problem>* problems,
                       KeepGoing keep_going) {
  return Checker(parsed, nullptr, std::move(declarations), problems, keep_going)
      .CheckDeclarations(definition);
}

}  // namespace trialrules
