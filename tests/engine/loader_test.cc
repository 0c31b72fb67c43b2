// Rule files: the bundled ones load clean; each kind of bad file is reported
// with its exact message (tests/data/bad_rules: NAME.textproto beside
// NAME.expected, so that a new case is a new pair of files).
#include <filesystem>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/rule_files.h"

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

// A file cut short (a copy in progress, a partial save) loses its test
// cases, which sit at the end: the coverage gate refuses it, wherever the
// cut falls after the first criterion.
TEST(RuleFileTest, AFileCutShortFailsItsOwnCoverageGate) {
  const std::string text = ReadFile(SourcePath("rules/NCT04094766-v1.0.textproto"));
  const size_t first_exclusion = text.find("\nexclusion {");
  const size_t first_test = text.find("\ntest_cases {");
  ASSERT_NE(first_exclusion, std::string::npos);
  ASSERT_NE(first_test, std::string::npos);
  for (size_t cut : {first_exclusion, first_test, (first_test + text.size()) / 2}) {
    const std::string cut_text = text.substr(0, text.rfind('\n', cut) + 1);
    const LoadResult result = LoadRuleSet(cut_text, "cut.textproto");
    EXPECT_EQ(result.rule_set, nullptr) << "cut at byte " << cut;
    ASSERT_FALSE(result.problems.empty()) << "cut at byte " << cut;
  }
  const LoadResult before_exclusions =
      LoadRuleSet(text.substr(0, first_exclusion + 1), "cut.textproto");
  ASSERT_FALSE(before_exclusions.problems.empty());
  EXPECT_NE(before_exclusions.problems[0].message.find("no test case makes this inclusion "
                                                       "criterion TRUE or FALSE"),
            std::string::npos)
      << before_exclusions.problems[0].ToString();
}

}  // namespace
}  // namespace trialrules
