// The check phase: what it learns about each expression travels on in the
// definition (types, direct uses, an order where each node follows its uses).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "service/engine/check.h"
#include "service/engine/loader.h"
#include "service/engine/parse.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

constexpr absl::string_view kHeader =
    "protocol_id: \"T\" version: \"1\" effective_from: \"2020-01-01\"\n";

RuleSetDefinition Checked(const std::string& body) {
  std::vector<Problem> problems;
  const std::string text = absl::StrCat(kHeader, body);
  std::unique_ptr<ParsedRuleFile> parsed = ParseRuleFile(text, "check.textproto", &problems);
  RuleSetDefinition definition;
  if (parsed == nullptr || !CheckRuleFile(*parsed, &definition, &problems)) {
    for (const Problem& problem : problems) ADD_FAILURE() << problem.ToString();
  }
  return definition;
}

int Position(const std::vector<int>& order, int node) {
  return static_cast<int>(std::find(order.begin(), order.end(), node) - order.begin());
}

TEST(CheckTest, DerivedValuesTakeTheTypeOfWhatTheyUseWhateverTheFileOrder) {
  const RuleSetDefinition def = Checked(
      "facts { name: \"start\" type: DATE }\n"
      "derived_values { name: \"days\" expression: \"due - start\" }\n"
      "derived_values { name: \"due\" expression: \"first + 7\" }\n"
      "derived_values { name: \"first\" expression: \"start + 1\" }\n"
      "inclusion { id: \"I1\" text: \"t\" expression: \"days > 7\" }\n");
  ASSERT_EQ(def.derived.size(), 3u);
  EXPECT_EQ(def.derived[0].type, ValueType::kNumber);  // days: date - date
  EXPECT_EQ(def.derived[1].type, ValueType::kDate);    // due
  EXPECT_EQ(def.derived[2].type, ValueType::kDate);    // first
  // Nodes: days 0, due 1, first 2, I1 3.
  ASSERT_EQ(def.nodes.size(), 4u);
  EXPECT_EQ(def.nodes[0].facts, std::vector<int>{0});
  EXPECT_EQ(def.nodes[0].nodes, std::vector<int>{1});
  EXPECT_EQ(def.nodes[3].nodes, std::vector<int>{0});
  ASSERT_EQ(def.node_order.size(), 4u);
  EXPECT_LT(Position(def.node_order, 2), Position(def.node_order, 1));
  EXPECT_LT(Position(def.node_order, 1), Position(def.node_order, 0));
  EXPECT_LT(Position(def.node_order, 0), Position(def.node_order, 3));
}

TEST(CheckTest, RulesUsedByRulesComeFirstInTheOrder) {
  const RuleSetDefinition def = Checked(
      "facts { name: \"x\" type: NUMBER }\n"
      "inclusion { id: \"I1\" text: \"t\" expression: \"I2 && x > 1\" }\n"
      "inclusion { id: \"I2\" text: \"t\" expression: \"x < 5\" }\n");
  ASSERT_EQ(def.nodes.size(), 2u);
  EXPECT_EQ(def.nodes[0].nodes, std::vector<int>{1});
  EXPECT_EQ(def.node_order, (std::vector<int>{1, 0}));
}

// A chain of derived values, each using the one before, ending in a rule.
std::string Chain(int derived_values) {
  std::string body = "facts { name: \"x\" type: NUMBER }\n"
                     "derived_values { name: \"d0\" expression: \"x\" }\n";
  for (int i = 1; i < derived_values; ++i) {
    absl::StrAppend(&body, "derived_values { name: \"d", i, "\" expression: \"d", i - 1,
                    " + 1\" }\n");
  }
  absl::StrAppend(&body, "inclusion { id: \"I1\" text: \"t\" expression: \"d",
                  derived_values - 1, " > ", derived_values, "\" }\n",
                  "test_cases { name: \"above\" kind: ELIGIBILITY facts { name: \"x\" number: 3 }"
                  " expect_decision: \"ELIGIBLE\" }\n"
                  "test_cases { name: \"below\" kind: ELIGIBILITY facts { name: \"x\" number: 0 }"
                  " expect_decision: \"INELIGIBLE\" }\n");
  return body;
}

std::vector<Problem> Problems(const std::string& body) {
  return LoadRuleSet(absl::StrCat(kHeader, body), "check.textproto").problems;
}

TEST(CheckTest, AChainAsDeepAsTheLimitLoadsAndEvaluates) {
  const auto rule_set = testing::LoadInline(Chain(kMaxDerivationDepth - 1));
  ASSERT_NE(rule_set, nullptr);
  const Evaluation evaluation =
      rule_set->Evaluate(EvaluationKind::kEligibility, *rule_set->BindFacts({{"x", 3.0, ""}}));
  EXPECT_EQ(evaluation.decision, Decision::kEligible);
}

TEST(CheckTest, AChainDeeperThanTheLimitIsRefused) {
  const std::vector<Problem> problems = Problems(Chain(kMaxDerivationDepth));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].rule_id, "I1");
  EXPECT_EQ(problems[0].message,
            "derived values and rules use one another 65 deep here; the limit is 64");
}

TEST(CheckTest, TooManyRulesAreRefusedBeforeAnyExpressionIsChecked) {
  std::string body = "facts { name: \"x\" type: NUMBER }\n";
  for (int i = 0; i <= kMaxRulesPerFile; ++i) {
    absl::StrAppend(&body, "inclusion { id: \"I", i, "\" text: \"t\" expression: \"(((\" }\n");
  }
  const std::vector<Problem> problems = Problems(body);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].message, "the file declares 501 rules; the limit is 500");
}

TEST(CheckTest, AFileLargerThanTheLimitIsRefusedUnread) {
  const std::vector<Problem> problems =
      LoadRuleSet(std::string(kMaxRuleFileBytes + 1, '#'), "big.textproto").problems;
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].message, "the file is 1048577 bytes; the limit is 1048576");
}

// FHIR bindings: a small file with a lab value, its upper limit and a
// true/false fact, and one binding per test appended to it.
constexpr absl::string_view kFhirFacts =
    "facts { name: \"cr\" type: NUMBER unit: \"mg/dL\"\n"
    "        accepted_units { unit: \"umol/L\" per_canonical_unit: 88.42 } }\n"
    "facts { name: \"cr_uln\" type: NUMBER unit: \"mg/dL\" }\n"
    "facts { name: \"female\" type: BOOL }\n"
    "inclusion { id: \"I1\" text: \"t\" expression: \"cr < cr_uln && female\" }\n";

std::vector<Problem> FhirProblems(const std::string& bindings) {
  std::vector<Problem> problems;
  const std::string text = absl::StrCat(kHeader, kFhirFacts, bindings);
  std::unique_ptr<ParsedRuleFile> parsed = ParseRuleFile(text, "fhir.textproto", &problems);
  EXPECT_NE(parsed, nullptr);
  RuleSetDefinition definition;
  if (parsed != nullptr) CheckRuleFile(*parsed, &definition, &problems);
  return problems;
}

// The line the binding text starts on: after the header and the facts.
constexpr int kFirstBindingLine = 7;

TEST(CheckFhirBindingsTest, TheBindingsOfAValidFileTravelInTheDefinition) {
  const RuleSetDefinition def = Checked(absl::StrCat(
      kFhirFacts,
      "fhir_bindings { fact: \"female\" patient_gender {} }\n"
      "fhir_bindings { fact: \"cr\" observation {\n"
      "  codes { system: \"http://loinc.org\" code: \"2160-0\" }\n"
      "  value_types: QUANTITY units: \"umol/L\" reference_range_high: \"cr_uln\"\n"
      "  max_age_days: 28 } }\n"));
  ASSERT_EQ(def.fhir_bindings.size(), 2u);
  EXPECT_EQ(def.fhir_bindings[1].observation().reference_range_high(), "cr_uln");
  EXPECT_EQ(def.fhir_bindings[1].observation().max_age_days(), 28);
}

TEST(CheckFhirBindingsTest, ABindingToAnUnknownFactIsRefused) {
  const std::vector<Problem> problems =
      FhirProblems("fhir_bindings { fact: \"creatinine\" patient_gender {} }\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].ToString(),
            absl::StrCat("fhir.textproto:", kFirstBindingLine,
                         ":17: fhir binding of \"creatinine\": not a fact of the file"));
}

TEST(CheckFhirBindingsTest, AUnitTheFactDoesNotAcceptIsRefused) {
  const std::vector<Problem> problems = FhirProblems(
      "fhir_bindings { fact: \"cr\" observation {\n"
      "  codes { system: \"http://loinc.org\" code: \"2160-0\" }\n"
      "  value_types: QUANTITY units: \"mg/dL\" units: \"mmol/L\" } }\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].ToString(),
            absl::StrCat("fhir.textproto:", kFirstBindingLine + 2,
                         ":40: fhir binding of \"cr\": unit \"mmol/L\" is not the fact's unit "
                         "or an accepted one (\"mg/dL\", \"umol/L\")"));
}

TEST(CheckFhirBindingsTest, OneCodeBoundTwiceIsRefused) {
  const std::vector<Problem> problems = FhirProblems(
      "fhir_bindings { fact: \"cr\" observation {\n"
      "  codes { system: \"http://loinc.org\" code: \"2160-0\" } value_types: QUANTITY } }\n"
      "fhir_bindings { fact: \"cr_uln\" observation {\n"
      "  codes { system: \"http://loinc.org\" code: \"2160-0\" } value_types: QUANTITY } }\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].ToString(),
            absl::StrCat("fhir.textproto:", kFirstBindingLine + 3,
                         ":3: fhir binding of \"cr_uln\": code http://loinc.org|2160-0 is "
                         "already bound to \"cr\""));
}

TEST(CheckFhirBindingsTest, AReferenceRangeTargetThatIsNotAFactIsRefused) {
  const std::vector<Problem> problems = FhirProblems(
      "fhir_bindings { fact: \"cr\" observation {\n"
      "  codes { system: \"http://loinc.org\" code: \"2160-0\" } value_types: QUANTITY\n"
      "  reference_range_high: \"cr_upper\" } }\n");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].ToString(),
            absl::StrCat("fhir.textproto:", kFirstBindingLine + 2,
                         ":3: fhir binding of \"cr\": reference_range_high \"cr_upper\" is not "
                         "a NUMBER fact of the file"));
}

TEST(CheckFhirBindingsTest, ValuesThatCannotGiveTheFactsTypeAreRefused) {
  const std::vector<Problem> problems = FhirProblems(
      "fhir_bindings { fact: \"female\" observation {\n"
      "  codes { system: \"http://loinc.org\" code: \"1-1\" } value_types: QUANTITY } }\n"
      "fhir_bindings { fact: \"cr\" patient_gender {} }\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].message,
            "fhir binding of \"female\": QUANTITY cannot give a bool fact");
  EXPECT_EQ(problems[1].message,
            "fhir binding of \"cr\": Patient.gender gives true/false: a BOOL fact");
}

TEST(CheckFhirBindingsTest, ACodeableConceptNeedsItsValuesAndMaxAgeIsBounded) {
  const std::vector<Problem> problems = FhirProblems(
      "fhir_bindings { fact: \"female\" observation {\n"
      "  codes { system: \"http://loinc.org\" code: \"1-1\" } value_types: CODEABLE_CONCEPT\n"
      "  max_age_days: -1 } }\n");
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].message,
            "fhir binding of \"female\": CODEABLE_CONCEPT and concept_values go together");
  EXPECT_EQ(problems[1].message,
            "fhir binding of \"female\": max_age_days -1 is not from 0 to 36500");
}

TEST(CheckFhirBindingsTest, TheBundledProtocolsBindingsLoad) {
  for (const char* file : {"NCT04094766-v1.0.textproto", "NCT04094766-v2.0.textproto"}) {
    const auto rule_set = testing::LoadBundled(file);
    ASSERT_NE(rule_set, nullptr) << file;
    EXPECT_EQ(rule_set->definition().fhir_bindings.size(), 11u) << file;
  }
}

}  // namespace
}  // namespace trialrules
