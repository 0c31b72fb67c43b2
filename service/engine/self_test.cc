#include "service/engine/self_test.h"

#include "service/engine/expression.h"

#include <algorithm>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/engine/facts.h"

namespace trialrules {
namespace {

namespace pb = ::trialrules::v1;

std::optional<EvaluationKind> KindOf(pb::EvaluationKind kind) {
  switch (kind) {
    case pb::ELIGIBILITY: return EvaluationKind::kEligibility;
    case pb::WITHDRAWAL: return EvaluationKind::kWithdrawal;
    case pb::ESCALATION: return EvaluationKind::kEscalation;
    case pb::STOPPING: return EvaluationKind::kStopping;
    default: return std::nullopt;
  }
}

// Runs a file's fact sets and test cases against its compiled rule set.
class SelfTest {
 public:
  SelfTest(const ParsedRuleFile& parsed, const RuleSet& rule_set,
           std::vector<Problem>* problems)
      : parsed_(parsed), file_(parsed.file), tree_(&parsed.tree), rule_set_(rule_set),
        problems_(problems) {}

  absl::Status Run(KeepGoing keep_going, std::vector<TestCaseResult>* results);
  // What the test cases reach, per rule (after Run); then the file's
  // require_coverage checked against it.
  std::vector<RuleCoverage> Coverage() const;
  void CheckRequiredCoverage(const std::vector<RuleCoverage>& coverage);

 private:
  void Report(SourcePosition position, std::string rule_id, std::string message) {
    problems_->push_back({parsed_.file_name, position.first, position.second,
                          std::move(rule_id), std::move(message)});
  }

  // Base facts, less `remove`, plus `facts` (which override by name).
  bool BuildFacts(const std::string& owner, const std::string& based_on,
                  const google::protobuf::RepeatedPtrField<std::string>& remove,
                  const google::protobuf::RepeatedPtrField<pb::FactValue>& facts,
                  SourcePosition position, std::vector<FactInput>* out) {
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
      absl::StatusOr<FactInput> converted = FactInputFromProto(value);
      if (converted.ok()) {
        if (absl::Status field = rule_set_.CheckValueField(value); !field.ok()) {
          converted = field;
        }
      }
      if (!converted.ok()) {
        Report(position, "", absl::StrCat(owner, ": ", converted.status().message()));
        return false;
      }
      FactInput input = *std::move(converted);
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

  void CheckCoverage();
  int RuleIndex(const std::string& id) const;

  // Returns what failed (empty when the test passes).
  std::string RunTest(const pb::TestCase& test, const std::vector<FactInput>& inputs,
                      std::string* rule_id);

  const ParsedRuleFile& parsed_;
  const pb::RuleFile& file_;
  const ParseTree* tree_;
  const RuleSet& rule_set_;
  std::vector<Problem>* problems_;
  absl::flat_hash_map<std::string, std::vector<FactInput>> fact_sets_;
  // Per rule (index into RuleSet::rules()), the outcomes the test cases gave.
  absl::flat_hash_map<int, std::set<Outcome>> reached_;
  std::vector<FactValues> tested_facts_;  // of the test cases that evaluated
};

// Returns what failed (empty when the test passes).
std::string SelfTest::RunTest(const pb::TestCase& test,
                              const std::vector<FactInput>& inputs,
                              std::string* rule_id) {
  const RuleSet& rule_set = rule_set_;
  const std::optional<EvaluationKind> kind = KindOf(test.kind());
  if (!kind) return "kind is required (ELIGIBILITY, WITHDRAWAL, ESCALATION or STOPPING)";
  if (absl::Status decides = rule_set.CanDecide(*kind); !decides.ok()) {
    return std::string(decides.message());
  }
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
  tested_facts_.push_back(*facts);
  for (const RuleResult& result : evaluation.rules) {
    reached_[result.rule].insert(result.outcome);
  }
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

absl::Status SelfTest::Run(KeepGoing keep_going, std::vector<TestCaseResult>* results) {
  for (int i = 0; i < file_.fact_sets_size(); ++i) {
    const pb::FactSet& set = file_.fact_sets(i);
    const auto position = ParsedRuleFile::Of(tree_, file_, "fact_sets", i);
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
    if (absl::Status go_on = keep_going(); !go_on.ok()) return go_on;
    const pb::TestCase& test = file_.test_cases(i);
    const auto position = ParsedRuleFile::Of(tree_, file_, "test_cases", i);
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
      failure = RunTest(test, inputs, &rule_id);
      if (!failure.empty()) {
        Report(position, rule_id, absl::StrCat(owner, ": ", failure));
      }
    }
    results->push_back({test.name(), failure.empty()});
  }
  if (problems_->empty()) CheckCoverage();
  return absl::OkStatus();
}

// The coverage gate: a file whose tests pass but leave a criterion
// untested in either direction is refused. A file cut short (a copy in
// progress, a partial save) loses its test cases at the end, so it fails
// here instead of loading as a version with criteria missing.
void SelfTest::CheckCoverage() {
  for (auto [field, kind] : {std::pair{"inclusion", RuleKind::kInclusion},
                             std::pair{"exclusion", RuleKind::kExclusion}}) {
    const auto& rules = kind == RuleKind::kInclusion ? file_.inclusion() : file_.exclusion();
    for (int i = 0; i < rules.size(); ++i) {
      const int index = RuleIndex(rules.Get(i).id());
      if (index < 0) continue;
      const std::set<Outcome>& reached = reached_[index];
      std::vector<std::string> missing;
      for (Outcome outcome : {Outcome::kTrue, Outcome::kFalse}) {
        if (!reached.contains(outcome)) missing.emplace_back(OutcomeName(outcome));
      }
      if (missing.empty()) continue;
      const ParseTree* tree = ParsedRuleFile::Nested(tree_, file_, field, i);
      Report(ParsedRuleFile::Of(tree, rules.Get(i), "id"), rules.Get(i).id(),
             absl::StrCat("no test case makes this ", RuleKindName(kind), " criterion ",
                          absl::StrJoin(missing, " or "),
                          "; each inclusion and exclusion criterion must be TRUE in one "
                          "test case and FALSE in another (so that a file cut short "
                          "fails its own tests)"));
    }
  }
}

std::vector<RuleCoverage> SelfTest::Coverage() const {
  const std::vector<RuleSpec>& rules = rule_set_.rules();
  absl::flat_hash_map<std::string, ValueType> types;
  for (const FactSpec& fact : rule_set_.facts()) types[fact.name] = fact.type;
  for (const DerivedSpec& derived : rule_set_.definition().derived) types[derived.name] = derived.type;
  for (const RuleSpec& rule : rules) types[rule.id] = ValueType::kBool;
  for (const std::string& word : rule_set_.definition().words) types[word] = ValueType::kText;
  std::vector<RuleCoverage> coverage;
  std::vector<std::string> probes;  // `(lhs) == (rhs)` of each numeric comparison
  for (size_t r = 0; r < rules.size(); ++r) {
    RuleCoverage rule{static_cast<int>(r), {}, {}};
    if (const auto reached = reached_.find(static_cast<int>(r)); reached != reached_.end()) {
      rule.outcomes = reached->second;
    }
    for (const Comparison& comparison : ComparisonsIn(rules[r].expression)) {
      const ExpressionCheck side = CheckExpression(comparison.lhs, types);
      const std::string probe = absl::StrCat("(", comparison.lhs, ") == (", comparison.rhs, ")");
      if (!side.error.empty() || !CheckExpression(probe, types).error.empty() ||
          (side.type != ValueType::kNumber && side.type != ValueType::kDate)) {
        continue;  // a comparison of truth values or words has no boundary
      }
      rule.boundaries.push_back({comparison.text, false});
      probes.push_back(probe);
    }
    coverage.push_back(std::move(rule));
  }
  absl::StatusOr<std::unique_ptr<RuleSet::Probe>> probe =
      RuleSet::Probe::Create(rule_set_, probes);
  if (!probe.ok()) return coverage;  // every probe was checked: cannot happen
  std::vector<uint8_t> tested(probes.size(), 0);
  std::vector<double> values;
  for (const FactValues& facts : tested_facts_) {
    (*probe)->Evaluate(facts, &values);
    for (size_t i = 0; i < values.size(); ++i) tested[i] |= values[i] == 1.0;
  }
  size_t i = 0;
  for (RuleCoverage& rule : coverage) {
    for (BoundaryCoverage& boundary : rule.boundaries) boundary.tested = tested[i++];
  }
  return coverage;
}

void SelfTest::CheckRequiredCoverage(const std::vector<RuleCoverage>& coverage) {
  if (!file_.has_require_coverage()) return;
  const pb::CoverageRequirement& required = file_.require_coverage();
  const auto position = ParsedRuleFile::Of(tree_, file_, "require_coverage");
  std::set<Outcome> outcomes;
  for (const std::string& word : required.outcomes()) {
    bool known = false;
    for (Outcome outcome : {Outcome::kTrue, Outcome::kFalse, Outcome::kUnknown}) {
      if (OutcomeName(outcome) == word) {
        outcomes.insert(outcome);
        known = true;
      }
    }
    if (!known) {
      Report(position, "", absl::StrCat("require_coverage: outcome \"", word,
                                        "\" is not TRUE, FALSE or UNKNOWN"));
      return;
    }
  }
  std::set<RuleKind> kinds;
  for (const std::string& word : required.kinds()) {
    bool known = false;
    for (RuleKind kind : {RuleKind::kInclusion, RuleKind::kExclusion, RuleKind::kWithdrawal,
                          RuleKind::kStopping, RuleKind::kEscalation}) {
      if (RuleKindName(kind) == word) {
        kinds.insert(kind);
        known = true;
      }
    }
    if (!known) {
      Report(position, "", absl::StrCat("require_coverage: kind \"", word,
                                        "\" is not a rule kind"));
      return;
    }
  }
  for (const RuleCoverage& rule : coverage) {
    const RuleSpec& spec = rule_set_.rules()[rule.rule];
    if (!kinds.empty() && !kinds.contains(spec.kind)) continue;
    std::vector<std::string> missing;
    for (Outcome outcome : outcomes) {
      if (!rule.outcomes.contains(outcome)) missing.emplace_back(OutcomeName(outcome));
    }
    if (!missing.empty()) {
      Report(position, spec.id,
             absl::StrCat("require_coverage: no test case makes this rule ",
                          absl::StrJoin(missing, " or ")));
    }
    if (!required.boundaries()) continue;
    for (const BoundaryCoverage& boundary : rule.boundaries) {
      if (boundary.tested) continue;
      Report(position, spec.id,
             absl::StrCat("require_coverage: no test case sits on the boundary of `",
                          boundary.comparison, "` (both sides equal)"));
    }
  }
}

int SelfTest::RuleIndex(const std::string& id) const {
  const std::vector<RuleSpec>& rules = rule_set_.rules();
  for (size_t r = 0; r < rules.size(); ++r) {
    if (rules[r].id == id) return static_cast<int>(r);
  }
  return -1;
}

}  // namespace

absl::Status RunSelfTests(const ParsedRuleFile& parsed, const RuleSet& rule_set,
                          KeepGoing keep_going, std::vector<TestCaseResult>* tests,
                          std::vector<Problem>* problems,
                          std::vector<RuleCoverage>* coverage) {
  SelfTest self_test(parsed, rule_set, problems);
  const size_t problems_before = problems->size();
  if (absl::Status stopped = self_test.Run(keep_going, tests); !stopped.ok()) return stopped;
  if (problems->size() != problems_before) return absl::OkStatus();
  std::vector<RuleCoverage> reached = self_test.Coverage();
  self_test.CheckRequiredCoverage(reached);
  if (coverage != nullptr) *coverage = std::move(reached);
  return absl::OkStatus();
}

}  // namespace trialrules
