// The canonical facts' exact text.
#include "gtest/gtest.h"
#include "service/audit/canonical_facts.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

// The canonical facts are what an auditor hashes to match a decision's
// facts_sha256: their exact text is a contract.
TEST(CanonicalFactsTest, SortedCanonicalUnitJson) {
  const auto rule_set = testing::LoadBundled("NCT04094766-v1.0.textproto");
  ASSERT_NE(rule_set, nullptr);
  absl::StatusOr<FactValues> facts = rule_set->BindFacts(
      {{"weight_kg", 70500.0, "g"},
       {"karnofsky", 80.0, ""},
       {"informed_consent", true, ""},
       {"assessment_date", std::string("2020-01-15"), ""},
       {"creatinine_mg_dl", 0.9, ""},
       {"alt_u_l", 150000.0 / 2, ""},
       {"age_years", 34.0, ""}});
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(CanonicalFacts(*rule_set, *facts),
            "{\"age_years\":34,\"alt_u_l\":75000,\"assessment_date\":\"2020-01-15\","
            "\"creatinine_mg_dl\":0.9,\"informed_consent\":true,\"karnofsky\":80,"
            "\"weight_kg\":70.5}");
}

TEST(CanonicalFactsTest, NoFactsIsAnEmptyObjectAndMissingFactsAreLeftOut) {
  const auto rule_set = testing::LoadBundled("NCT04094766-v1.0.textproto");
  ASSERT_NE(rule_set, nullptr);
  EXPECT_EQ(CanonicalFacts(*rule_set, rule_set->EmptyFacts()), "{}");
  const absl::StatusOr<FactValues> one = rule_set->BindFacts({{"karnofsky", 70.0, ""}});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(CanonicalFacts(*rule_set, *one), "{\"karnofsky\":70}");
}

}  // namespace
}  // namespace trialrules
