// The catalog's one rule for which version answers a request.
#include "gtest/gtest.h"
#include "service/catalog/reload.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

using testing::LoadBundled;
using testing::SourcePath;

constexpr DayNumber kToday = 20000;  // 2024-10-04

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::shared_ptr<const RuleSet>> rule_sets;
    for (const FileLoad& load : LoadRuleFiles({SourcePath("rules")})) {
      ASSERT_TRUE(load.result.problems.empty()) << load.path;
      rule_sets.push_back(load.result.rule_set);
    }
    catalog_ = *Catalog::Build(rule_sets);
  }
  Catalog catalog_;
};

TEST_F(CatalogTest, PicksTheVersionInForceOnTheDate) {
  EXPECT_EQ((*catalog_.Select({"NCT04094766", "", *ParseIsoDate("2019-09-01"), ""}, kToday))->version(), "1.0");
  EXPECT_EQ((*catalog_.Select({"NCT04094766", "", *ParseIsoDate("2020-05-31"), ""}, kToday))->version(), "1.0");
  EXPECT_EQ((*catalog_.Select({"NCT04094766", "", *ParseIsoDate("2020-06-01"), ""}, kToday))->version(), "2.0");
}

TEST_F(CatalogTest, ExplicitVersionWins) {
  EXPECT_EQ((*catalog_.Select({"NCT04094766", "1.0", *ParseIsoDate("2024-01-01"), ""}, kToday))->version(), "1.0");
}

TEST_F(CatalogTest, UnknownProtocolOrVersionIsNotFound) {
  auto protocol = catalog_.Select({"NCT00000000", "", std::nullopt, ""}, kToday);
  EXPECT_EQ(protocol.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(protocol.status().message(),
            "protocol_id \"NCT00000000\": no such protocol is loaded");
  auto version = catalog_.Select({"NCT04094766", "9.9", std::nullopt, ""}, kToday);
  EXPECT_EQ(version.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(version.status().message(),
            "version \"9.9\": protocol NCT04094766 has no such version loaded");
}

TEST_F(CatalogTest, NoVersionInForceIsFailedPrecondition) {
  auto none = catalog_.Select({"NCT04094766", "", *ParseIsoDate("2019-08-31"), ""}, kToday);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(none.status().message(),
            "protocol NCT04094766: no version is in force on 2019-08-31");
}

TEST_F(CatalogTest, WithoutAnAsOfDateTodayAnswers) {
  EXPECT_EQ((*catalog_.Select({"NCT04094766", "", std::nullopt, ""}, *ParseIsoDate("2020-05-31")))->version(), "1.0");
  EXPECT_EQ((*catalog_.Select({"NCT04094766", "", std::nullopt, ""}, *ParseIsoDate("2020-06-01")))->version(), "2.0");
}

TEST(AsOfDateTest, AbsentIsNoneABadDateNamesTheField) {
  EXPECT_EQ(*ParseAsOfDate("header.as_of_date", ""), std::nullopt);
  EXPECT_EQ(*ParseAsOfDate("header.as_of_date", "2020-06-01"), *ParseIsoDate("2020-06-01"));
  const auto bad = ParseAsOfDate("fact \"assessment_date\"", "2021-02-29");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "fact \"assessment_date\" = \"2021-02-29\": \"2021-02-29\" is not a real calendar date");
}

TEST_F(CatalogTest, RefusesTwoFilesClaimingOneVersion) {
  auto v1 = LoadBundled("NCT04094766-v1.0.textproto");
  auto again = LoadBundled("NCT04094766-v1.0.textproto");
  auto catalog = Catalog::Build({v1, again});
  EXPECT_EQ(catalog.status().code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace trialrules
