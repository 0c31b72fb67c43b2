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

}  // namespace
}  // namespace trialrules
