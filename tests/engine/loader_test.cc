// Rule files: the bundled ones load clean; each kind of bad file is reported
// with its exact message (tests/data/bad_rules: NAME.textproto beside
// NAME.expected, so that a new case is a new pair of files).
#include <filesystem>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/rule_files.h"
#include "tests/slow_rule_file.h"

namespace trialrules {
namespace {

using testing::LoadBundled;
using testing::ReadFile;
using testing::SourcePath;

TEST(RuleFileTest, BundledRulesLoadWithEveryTestCasePassing) {
  for (const std::string name :
       {"NCT04094766-v1.0.textproto", "NCT04094766-v2.0.textproto",
        "NCT03671460-v1.0.textproto"}) {
    const LoadResult result = LoadRuleSet(ReadFile(SourcePath("rules/" + name)), name);
    EXPECT_TRUE(result.problems.empty()) << name;
    ASSERT_NE(result.rule_set, nullptr) << name;
    EXPECT_GE(result.tests.size(), 100u) << name;
    for (const TestCaseResult& test : result.tests) EXPECT_TRUE(test.passed) << test.name;
  }
}

TEST(RuleFileTest, EveryBundledRuleIsCoveredByATestCase) {
  for (const std::string name :
       {"NCT04094766-v1.0.textproto", "NCT04094766-v2.0.textproto",
        "NCT03671460-v1.0.textproto"}) {
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

// A load asks keep_going before each expression it checks or compiles and
// before each test case, and stops at the first refusal in any phase,
// keeping that status. (The server stops a ValidateRuleSet call this way
// when its caller cancels or its deadline passes.)
TEST(RuleFileTest, LoadStopsAtTheFirstRefusalInEveryPhase) {
  const std::string text = testing::SlowRuleFile(/*rules=*/20, /*test_cases=*/30);
  int check_ins = 0;
  const LoadResult whole = LoadRuleSet(text, "slow.textproto", [&] {
    ++check_ins;
    return absl::OkStatus();
  });
  ASSERT_NE(whole.rule_set, nullptr);
  ASSERT_TRUE(whole.stopped.ok());
  EXPECT_EQ(whole.tests.size(), 31u);
  // 21 rules, each checked and compiled; 31 test cases; one after parsing.
  EXPECT_GE(check_ins, 21 + 21 + 31 + 1);
  for (int refuse_at : {1, 2, 25, 45, check_ins - 10, check_ins}) {
    int asked = 0;
    const LoadResult stopped = LoadRuleSet(text, "slow.textproto", [&] {
      return ++asked >= refuse_at ? absl::CancelledError("caller went away")
                                  : absl::OkStatus();
    });
    EXPECT_EQ(asked, refuse_at) << "asked again after refusing at " << refuse_at;
    EXPECT_EQ(stopped.rule_set, nullptr) << refuse_at;
    EXPECT_EQ(stopped.stopped, absl::CancelledError("caller went away")) << refuse_at;
    EXPECT_TRUE(stopped.problems.empty()) << stopped.problems[0].ToString();
  }
}

TEST(CoverageTest, ComparisonsAreSplitAtLogicCommasAndTheirParenthesis) {
  const std::vector<Comparison> comparisons = ComparisonsIn(
      "lvef_pct >= 50 && (crcl_ml_min >= 50 || creatinine_mg_dl < 2 * uln) && "
      "if(age > 18, weight, 0) != 3 && !(a == b)");
  std::vector<std::string> texts;
  for (const Comparison& c : comparisons) texts.push_back(c.lhs + " | " + c.rhs);
  EXPECT_EQ(texts, (std::vector<std::string>{"lvef_pct | 50", "crcl_ml_min | 50",
                                             "creatinine_mg_dl | 2 * uln", "age | 18",
                                             "if(age > 18, weight, 0) | 3", "a | b"}));
}

TEST(CoverageTest, TheFilesTestCasesReachEveryOutcomeAndBoundaryTheyShow) {
  const LoadResult loaded = LoadRuleSet(ReadFile(SourcePath("rules/NCT04094766-v1.0.textproto")),
                                        "NCT04094766-v1.0.textproto");
  ASSERT_NE(loaded.rule_set, nullptr);
  ASSERT_EQ(loaded.coverage.size(), loaded.rule_set->rules().size());
  for (const RuleCoverage& rule : loaded.coverage) {
    const RuleSpec& spec = loaded.rule_set->rules()[rule.rule];
    if (spec.id == "I8") {
      EXPECT_EQ(rule.outcomes.size(), 3u);
      EXPECT_EQ(rule.boundaries.size(), 10u);
      for (const BoundaryCoverage& boundary : rule.boundaries) {
        EXPECT_TRUE(boundary.tested) << boundary.comparison;
      }
    }
    if (spec.id == "S2") {
      // A posterior probability exactly at 0.9 takes counts no trial has.
      ASSERT_EQ(rule.boundaries.size(), 2u);
      EXPECT_FALSE(rule.boundaries[1].tested) << rule.boundaries[1].comparison;
    }
  }
}

}  // namespace
}  // namespace trialrules
