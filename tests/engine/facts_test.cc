// Facts are checked before evaluation; each refusal names the fact and value.
#include "gtest/gtest.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

class FactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rule_set_ = testing::LoadBundled("NCT04094766-v1.0.textproto");
    ASSERT_NE(rule_set_, nullptr);
  }
  std::string Refusal(std::vector<FactInput> inputs) {
    absl::StatusOr<FactValues> facts = rule_set_->BindFacts(inputs);
    EXPECT_FALSE(facts.ok());
    if (facts.ok()) return "";
    EXPECT_EQ(facts.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(facts.status().message());
  }
  double Bound(const FactInput& input) {
    absl::StatusOr<FactValues> facts = rule_set_->BindFacts({input});
    EXPECT_TRUE(facts.ok()) << facts.status();
    return facts.ok() ? facts->values[rule_set_->FindFact(input.name)] : -1;
  }
  std::shared_ptr<const RuleSet> rule_set_;
};

TEST_F(FactsTest, RefusesUnknownName) {
  EXPECT_EQ(Refusal({{"ecog", 1.0, ""}}),
            "fact \"ecog\" = 1: unknown fact for protocol NCT04094766 version 1.0");
}

TEST_F(FactsTest, IgnoresUnknownNamesWhenAskedAndListsThem) {
  std::vector<std::string> ignored;
  absl::StatusOr<FactValues> facts =
      rule_set_->BindFacts({{"ecog", 1.0, ""}, {"karnofsky", 80.0, ""}}, &ignored);
  ASSERT_TRUE(facts.ok());
  EXPECT_EQ(ignored, std::vector<std::string>{"ecog"});
}

TEST_F(FactsTest, RefusesWrongType) {
  EXPECT_EQ(Refusal({{"karnofsky", true, ""}}),
            "fact \"karnofsky\" = true: expected a number");
  EXPECT_EQ(Refusal({{"pregnant", 1.0, ""}}),
            "fact \"pregnant\" = 1: expected true or false");
  EXPECT_EQ(Refusal({{"assessment_date", 20200101.0, ""}}),
            "fact \"assessment_date\" = 20200101: expected a date \"YYYY-MM-DD\"");
  EXPECT_EQ(Refusal({{"karnofsky", std::string("80"), ""}}),
            "fact \"karnofsky\" = \"80\": expected a number");
}

TEST_F(FactsTest, RefusesOutOfRange) {
  EXPECT_EQ(Refusal({{"karnofsky", 101.0, ""}}),
            "fact \"karnofsky\" = 101: outside the valid range 0 to 100");
  EXPECT_EQ(Refusal({{"lvef_pct", -1.0, ""}}),
            "fact \"lvef_pct\" = -1: outside the valid range 0 % to 100 %");
  EXPECT_EQ(Refusal({{"creatinine_mg_dl", 5000.0, "umol/L"}}),
            "fact \"creatinine_mg_dl\" = 5000 umol/L: outside the valid range "
            "0.01 mg/dL to 50 mg/dL (56.5482922415743 mg/dL)");
  EXPECT_EQ(Refusal({{"assessment_date", std::string("1850-01-01"), ""}}),
            "fact \"assessment_date\" = \"1850-01-01\": outside the valid range "
            "1900-01-01 to 2199-12-31");
}

TEST_F(FactsTest, RefusesNonFiniteNumbers) {
  EXPECT_EQ(Refusal({{"karnofsky", std::numeric_limits<double>::quiet_NaN(), ""}}),
            "fact \"karnofsky\" = nan: not a finite number");
  EXPECT_EQ(Refusal({{"alt_u_l", std::numeric_limits<double>::infinity(), ""}}),
            "fact \"alt_u_l\" = inf: not a finite number");
}

TEST_F(FactsTest, RefusesUnsupportedUnit) {
  EXPECT_EQ(Refusal({{"creatinine_mg_dl", 0.1, "mmol/L"}}),
            "fact \"creatinine_mg_dl\" = 0.1 mmol/L: unit \"mmol/L\" is not "
            "accepted (mg/dL, umol/L)");
  EXPECT_EQ(Refusal({{"pregnant", false, "mg"}}),
            "fact \"pregnant\" = false: a true/false fact takes no unit");
}

TEST_F(FactsTest, RefusesImpossibleDate) {
  EXPECT_EQ(Refusal({{"last_chemo_date", std::string("2021-02-29"), ""}}),
            "fact \"last_chemo_date\" = \"2021-02-29\": \"2021-02-29\" is not a "
            "real calendar date");
}

TEST_F(FactsTest, RefusesFractionForCounts) {
  EXPECT_EQ(Refusal({{"n_dlt", 1.5, ""}}),
            "fact \"n_dlt\" = 1.5: must be a whole number");
}

TEST_F(FactsTest, RefusesDuplicates) {
  EXPECT_EQ(Refusal({{"karnofsky", 80.0, ""}, {"karnofsky", 70.0, ""}}),
            "fact \"karnofsky\" is given more than once");
}

TEST_F(FactsTest, ConvertsAlternativeUnits) {
  EXPECT_DOUBLE_EQ(Bound({"creatinine_mg_dl", 88.42, "umol/L"}), 1.0);
  EXPECT_DOUBLE_EQ(Bound({"bilirubin_mg_dl", 34.2, "umol/L"}), 2.0);
  EXPECT_DOUBLE_EQ(Bound({"weight_kg", 70000.0, "g"}), 70.0);
  EXPECT_DOUBLE_EQ(Bound({"creatinine_mg_dl", 1.5, "mg/dL"}), 1.5);
  EXPECT_DOUBLE_EQ(Bound({"creatinine_mg_dl", 1.5, ""}), 1.5);
  EXPECT_DOUBLE_EQ(Bound({"assessment_date", std::string("1970-01-02"), ""}), 1.0);
}

TEST_F(FactsTest, RefusalChangesNothing) {
  // The same rule set answers the same after any number of refusals.
  const FactValues empty = rule_set_->EmptyFacts();
  const Evaluation before = rule_set_->Evaluate(EvaluationKind::kEligibility, empty);
  for (int i = 0; i < 10; ++i) Refusal({{"karnofsky", 1000.0, ""}});
  const Evaluation after = rule_set_->Evaluate(EvaluationKind::kEligibility, empty);
  EXPECT_EQ(before.decision, after.decision);
  EXPECT_EQ(before.missing_facts, after.missing_facts);
}

TEST(FactUnitsTest, AConversionThatOverflowsIsRefusedNotInfinite) {
  const LoadResult loaded = LoadRuleSet(
      "protocol_id: \"UNITS\"\nversion: \"1\"\neffective_from: \"2020-01-01\"\n"
      "facts { name: \"dose\" type: NUMBER unit: \"g\" min: 0\n"
      "        accepted_units { unit: \"pg\" per_canonical_unit: 1e-300 } }\n"
      "inclusion { id: \"I1\" text: \"some dose\" expression: \"dose > 0\" }\n"
      "test_cases { name: \"some\" kind: ELIGIBILITY facts { name: \"dose\" number: 1 }\n"
      "             expect_decision: \"ELIGIBLE\" }\n"
      "test_cases { name: \"none\" kind: ELIGIBILITY facts { name: \"dose\" number: 0 }\n"
      "             expect_decision: \"INELIGIBLE\" }\n",
      "units.textproto");
  ASSERT_NE(loaded.rule_set, nullptr) << (loaded.problems.empty() ? "" : loaded.problems[0].ToString());
  const absl::StatusOr<FactValues> facts =
      loaded.rule_set->BindFacts({{"dose", 1e10, "pg"}});
  ASSERT_FALSE(facts.ok());
  EXPECT_EQ(facts.status().message(), "fact \"dose\" = 1e+10 pg: too large once converted to g");
}

// A factor stated in its exact direction: bilirubin canonical in umol/L,
// 1 mg/dL = 17.1 umol/L, so 2.0 mg/dL is exactly 34.2 umol/L.
TEST(FactUnitsTest, AFactorStatedAsCanonicalPerUnitMultiplies) {
  const LoadResult loaded = LoadRuleSet(
      "protocol_id: \"UNITS\"\nversion: \"1\"\neffective_from: \"2020-01-01\"\n"
      "facts { name: \"bilirubin_umol_l\" type: NUMBER unit: \"umol/L\" min: 0 max: 1710\n"
      "        accepted_units { unit: \"mg/dL\" canonical_per_unit: 17.1 } }\n"
      "inclusion { id: \"I1\" text: \"bilirubin\" expression: \"bilirubin_umol_l <= 34.2\" }\n"
      "test_cases { name: \"at\" kind: ELIGIBILITY\n"
      "  facts { name: \"bilirubin_umol_l\" number: 2.0 unit: \"mg/dL\" } expect_decision: \"ELIGIBLE\" }\n"
      "test_cases { name: \"over\" kind: ELIGIBILITY\n"
      "  facts { name: \"bilirubin_umol_l\" number: 2.01 unit: \"mg/dL\" } expect_decision: \"INELIGIBLE\" }\n",
      "units.textproto");
  ASSERT_NE(loaded.rule_set, nullptr) << (loaded.problems.empty() ? "" : loaded.problems[0].ToString());
  const absl::StatusOr<FactValues> facts =
      loaded.rule_set->BindFacts({{"bilirubin_umol_l", 2.0, "mg/dL"}});
  ASSERT_TRUE(facts.ok());
  EXPECT_EQ(facts->values[0], 2.0 * 17.1);
  // Both factors, or neither, is a problem with its position.
  const LoadResult both = LoadRuleSet(
      "protocol_id: \"UNITS\"\nversion: \"1\"\neffective_from: \"2020-01-01\"\n"
      "facts { name: \"b\" type: NUMBER unit: \"umol/L\"\n"
      "        accepted_units { unit: \"mg/dL\" canonical_per_unit: 17.1 per_canonical_unit: 0.05848 } }\n"
      "inclusion { id: \"I1\" text: \"b\" expression: \"b <= 34.2\" }\n",
      "units.textproto");
  ASSERT_FALSE(both.problems.empty());
  EXPECT_EQ(both.problems[0].ToString(),
            "units.textproto:5:9: fact \"b\": unit \"mg/dL\": give one positive factor, "
            "per_canonical_unit or canonical_per_unit");
}

}  // namespace
}  // namespace trialrules
