// Fuzz target: rule-file text -> LoadRuleSet. Whatever the bytes, loading
// must not crash and must either give a rule set or problems (never both,
// never neither); a rule set that loads is evaluated for every kind on empty
// facts and on every fact at its declared minimum and maximum, and each
// answer must be well formed (outcomes TRUE/FALSE/UNKNOWN, a decision of the
// kind asked, missing facts only for UNKNOWN rules and only facts not given).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include <google/protobuf/stubs/common.h>

#include "absl/strings/str_cat.h"
#include "service/audit/canonical_facts.h"
#include "service/engine/loader.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_sanitizer_options.h"
#include "tests/fuzz/fuzz_evaluation_checks.h"

namespace trialrules {
namespace {

// Every fact given, at its minimum (or maximum); unbounded numbers at the
// largest finite double of that sign.
FactValues AtBound(const RuleSet& rule_set, bool maximum) {
  FactValues facts = rule_set.EmptyFacts();
  for (size_t f = 0; f < rule_set.facts().size(); ++f) {
    const FactSpec& spec = rule_set.facts()[f];
    double value = maximum ? spec.max : spec.min;
    if (spec.type == ValueType::kBool) value = maximum ? 1.0 : 0.0;
    if (std::isinf(value)) {
      value = std::copysign(std::numeric_limits<double>::max(), value);
    }
    if (spec.integer) value = maximum ? std::floor(value) : std::ceil(value);
    facts.values[f] = value;
    facts.present[f] = 1;
  }
  return facts;
}

bool IsUtf8(const std::string& text) {
  return google::protobuf::internal::IsStructurallyValidUTF8(text.data(),
                                                             static_cast<int>(text.size()));
}

// Text that reaches clients (problems, rule set descriptions) must be UTF-8
// to fit proto3 string fields.
void CheckUtf8(const LoadResult& result) {
  for (const Problem& problem : result.problems) {
    FUZZ_CHECK(IsUtf8(problem.ToString()), "problem text is not UTF-8");
  }
  if (result.rule_set == nullptr) return;
  const RuleSetDefinition& def = result.rule_set->definition();
  for (const std::string* text : {&def.title, &def.registry_reference, &def.description}) {
    FUZZ_CHECK(IsUtf8(*text), "rule set text is not UTF-8");
  }
  for (const FactSpec& fact : def.facts) {
    FUZZ_CHECK(IsUtf8(fact.unit) && IsUtf8(fact.description), "fact " + fact.name);
    for (const auto& unit : fact.accepted_units) {
      FUZZ_CHECK(IsUtf8(unit.unit), "fact " + fact.name + ": unit not UTF-8");
    }
  }
  for (const DerivedSpec& derived : def.derived) {
    FUZZ_CHECK(IsUtf8(derived.unit) && IsUtf8(derived.description), "derived " + derived.name);
  }
  for (const RuleSpec& rule : def.rules) {
    FUZZ_CHECK(IsUtf8(rule.text) && IsUtf8(rule.note), "rule " + rule.id + ": text not UTF-8");
  }
  for (const DoseLevelSpec& level : def.dose_levels) {
    FUZZ_CHECK(IsUtf8(level.id) && IsUtf8(level.description), "dose level not UTF-8");
  }
}

void Fuzz(absl::string_view text) {
  const LoadResult result = LoadRuleSet(text, "fuzz.textproto");
  for (const Problem& problem : result.problems) {
    FUZZ_CHECK(problem.line >= 0 && problem.column >= 0, problem.ToString());
    FUZZ_CHECK(!problem.message.empty(), problem.ToString());
  }
  CheckUtf8(result);
  FUZZ_CHECK((result.rule_set != nullptr) == result.problems.empty(),
             absl::StrCat(result.problems.size(), " problems"));
  if (result.rule_set == nullptr) return;
  const RuleSet& rule_set = *result.rule_set;
  for (const TestCaseResult& test : result.tests) {
    FUZZ_CHECK(test.passed, "test case " + test.name + " failed in a loaded file");
  }

  const FactValues empty = rule_set.EmptyFacts();
  FUZZ_CHECK(CanonicalFacts(rule_set, empty) == "{}", CanonicalFacts(rule_set, empty));
  for (EvaluationKind kind : kAllEvaluationKinds) {
    fuzz::CheckEvaluation(rule_set, kind, empty);
    for (bool maximum : {false, true}) {
      const FactValues bound = AtBound(rule_set, maximum);
      fuzz::CheckEvaluation(rule_set, kind, bound);
      (void)CanonicalFacts(rule_set, bound);
    }
  }
}

}  // namespace
}  // namespace trialrules

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  trialrules::Fuzz(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
