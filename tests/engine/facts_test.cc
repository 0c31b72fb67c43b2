// Facts are checked before evaluation; each refusal names the fact and value.
#include <charconv>

#include "gtest/gtest.h"
#include "tests/engine/test_util.h"

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

// The canonical facts are what an auditor hashes to match a decision's
// facts_sha256: their exact text is a contract.
TEST_F(FactsTest, CanonicalFactsAreSortedCanonicalUnitJson) {
  absl::StatusOr<FactValues> facts = rule_set_->BindFacts(
      {{"weight_kg", 70500.0, "g"},
       {"karnofsky", 80.0, ""},
       {"informed_consent", true, ""},
       {"assessment_date", std::string("2020-01-15"), ""},
       {"creatinine_mg_dl", 0.9, ""},
       {"alt_u_l", 150000.0 / 2, ""},
       {"age_years", 34.0, ""}});
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(rule_set_->CanonicalFacts(*facts),
            "{\"age_years\":34,\"alt_u_l\":75000,\"assessment_date\":\"2020-01-15\","
            "\"creatinine_mg_dl\":0.9,\"informed_consent\":true,\"karnofsky\":80,"
            "\"weight_kg\":70.5}");
}

// Whole numbers and numbers with up to three decimals take shortcuts; they
// must print exactly what std::to_chars prints, over their ranges and just
// outside them.
TEST(CanonicalNumberTest, ShortcutsAgreeWithToChars) {
  auto to_chars = [](double value) {
    char buffer[64];
    return std::string(buffer, std::to_chars(buffer, buffer + sizeof buffer, value).ptr);
  };
  auto canonical = [](double value) {
    std::string out;
    AppendCanonicalNumber(value, &out);
    return out;
  };
  for (int n = -100001; n <= 100001; ++n) {
    ASSERT_EQ(canonical(n), to_chars(n)) << n;
    ASSERT_EQ(canonical(n + 0.5), to_chars(n + 0.5)) << n;
  }
  for (double scale : {10.0, 100.0, 1000.0, 10000.0}) {
    for (int m = -300000; m <= 300000; ++m) {
      ASSERT_EQ(canonical(m / scale), to_chars(m / scale)) << m << "/" << scale;
    }
    // Large values, where a double's spacing nears the decimals.
    const int64_t low = 999000000LL * static_cast<int64_t>(scale);
    const int64_t high = 1001000000LL * static_cast<int64_t>(scale);
    for (int64_t m = low; m < high; m += (high - low) / 200000 + 1) {
      ASSERT_EQ(canonical(m / scale), to_chars(m / scale)) << m << "/" << scale;
    }
  }
  for (double value : {-0.0, 0.1, 0.001, -0.001, 0.0005, 1e5, 1e6, 2e9, 1e300, 5e-324,
                       99999.99999999999, 0.1 + 0.2, 1.0 / 3, 123456789.125, -987654321.5}) {
    EXPECT_EQ(canonical(value), to_chars(value)) << value;
  }
}

}  // namespace
}  // namespace trialrules

namespace trialrules {
namespace {

TEST(FactUnitsTest, AConversionThatOverflowsIsRefusedNotInfinite) {
  const LoadResult loaded = LoadRuleSet(
      "protocol_id: \"UNITS\"\nversion: \"1\"\neffective_from: \"2020-01-01\"\n"
      "facts { name: \"dose\" type: NUMBER unit: \"g\" min: 0\n"
      "        accepted_units { unit: \"pg\" per_canonical_unit: 1e-300 } }\n"
      "inclusion { id: \"I1\" text: \"some dose\" expression: \"dose > 0\" }\n",
      "units.textproto");
  ASSERT_NE(loaded.rule_set, nullptr) << (loaded.problems.empty() ? "" : loaded.problems[0].ToString());
  const absl::StatusOr<FactValues> facts =
      loaded.rule_set->BindFacts({{"dose", 1e10, "pg"}});
  ASSERT_FALSE(facts.ok());
  EXPECT_EQ(facts.status().message(), "fact \"dose\" = 1e+10 pg: too large once converted to g");
}

}  // namespace
}  // namespace trialrules
