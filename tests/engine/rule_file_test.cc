// Rule files: the bundled ones load clean; each kind of bad file is reported
// with its exact message (tests/data/bad_rules: NAME.textproto beside
// NAME.expected, so that a new case is a new pair of files).
#include <filesystem>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "service/catalog/catalog.h"
#include "tests/engine/test_util.h"

namespace trialrules {
namespace {

using testing::LoadBundled;
using testing::ReadFile;
using testing::SourcePath;

TEST(RuleFileTest, BundledRulesLoadWithEveryTestCasePassing) {
  for (const std::string name :
       {"NCT04094766-v1.0.textproto", "NCT04094766-v2.0.textproto"}) {
    const LoadResult result = LoadRuleSet(ReadFile(SourcePath("rules/" + name)), name);
    EXPECT_TRUE(result.problems.empty()) << name;
    ASSERT_NE(result.rule_set, nullptr) << name;
    EXPECT_GE(result.tests.size(), 100u) << name;
    for (const TestCaseResult& test : result.tests) EXPECT_TRUE(test.passed) << test.name;
  }
}

TEST(RuleFileTest, EveryBundledRuleIsCoveredByATestCase) {
  for (const std::string name :
       {"NCT04094766-v1.0.textproto", "NCT04094766-v2.0.textproto"}) {
    const std::string text = ReadFile(SourcePath("rules/" + name));
    auto rule_set = LoadBundled(name);
    ASSERT_NE(rule_set, nullptr);
    for (const RuleSpec& rule : rule_set->rules()) {
      EXPECT_NE(text.find("rule: \"" + rule.id + "\""), std::string::npos)
          << name << ": no test case expects an outcome of " << rule.id;
    }
  }
}

TEST(RuleFileTest, BadRuleFilesReportExactProblems) {
  const std::filesystem::path dir = SourcePath("tests/data/bad_rules");
  int cases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".textproto") continue;
    ++cases;
    const std::string name = entry.path().filename().string();
    const LoadResult result = LoadRuleSet(ReadFile(entry.path().string()), name);
    EXPECT_EQ(result.rule_set, nullptr) << name;
    std::vector<std::string> lines;
    for (const Problem& problem : result.problems) lines.push_back(problem.ToString());
    std::filesystem::path expected = entry.path();
    expected.replace_extension(".expected");
    EXPECT_EQ(absl::StrJoin(lines, "\n") + "\n", ReadFile(expected.string())) << name;
  }
  EXPECT_GE(cases, 15);
}

TEST(RuleFileTest, GarbageNeverCrashesTheLoader) {
  const std::string samples[] = {
      "", "\xff\xfe\x00garbage", "protocol_id: ", "facts { name: \"x\" type: 77 }",
      "inclusion { id: \"I1\" text: \"t\" expression: \"((((((\" }",
      std::string(100000, '{')};
  for (const std::string& text : samples) {
    const LoadResult result = LoadRuleSet(text, "garbage.textproto");
    EXPECT_EQ(result.rule_set, nullptr);
    EXPECT_FALSE(result.problems.empty());
  }
}

TEST(RuleFileTest, Sha256IdentifiesTheFileBytes) {
  auto rule_set = LoadBundled("NCT04094766-v1.0.textproto");
  ASSERT_NE(rule_set, nullptr);
  EXPECT_EQ(rule_set->sha256().size(), 64u);
  auto other = LoadBundled("NCT04094766-v2.0.textproto");
  EXPECT_NE(rule_set->sha256(), other->sha256());
}

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
  EXPECT_EQ((*catalog_.Select("NCT04094766", "", *ParseIsoDate("2019-09-01")))->version(), "1.0");
  EXPECT_EQ((*catalog_.Select("NCT04094766", "", *ParseIsoDate("2020-05-31")))->version(), "1.0");
  EXPECT_EQ((*catalog_.Select("NCT04094766", "", *ParseIsoDate("2020-06-01")))->version(), "2.0");
}

TEST_F(CatalogTest, ExplicitVersionWins) {
  EXPECT_EQ((*catalog_.Select("NCT04094766", "1.0", *ParseIsoDate("2024-01-01")))->version(), "1.0");
}

TEST_F(CatalogTest, UnknownProtocolOrVersionIsNotFound) {
  auto protocol = catalog_.Select("NCT00000000", "", 0);
  EXPECT_EQ(protocol.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(protocol.status().message(),
            "protocol_id \"NCT00000000\": no such protocol is loaded");
  auto version = catalog_.Select("NCT04094766", "9.9", 0);
  EXPECT_EQ(version.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(version.status().message(),
            "version \"9.9\": protocol NCT04094766 has no such version loaded");
}

TEST_F(CatalogTest, NoVersionInForceIsFailedPrecondition) {
  auto none = catalog_.Select("NCT04094766", "", *ParseIsoDate("2019-08-31"));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(none.status().message(),
            "protocol NCT04094766: no version is in force on 2019-08-31");
}

TEST_F(CatalogTest, RefusesTwoFilesClaimingOneVersion) {
  auto v1 = LoadBundled("NCT04094766-v1.0.textproto");
  auto again = LoadBundled("NCT04094766-v1.0.textproto");
  auto catalog = Catalog::Build({v1, again});
  EXPECT_EQ(catalog.status().code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace trialrules
