// The check phase: what it learns about each expression travels on in the
// definition (types, direct uses, an order where each node follows its uses).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "service/engine/check.h"
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

// A long chain of derived values, each using the one before: every value is
// checked and compiled once, and the chain evaluates end to end.
TEST(CheckTest, ALongChainOfDerivedValuesLoadsAndEvaluates) {
  constexpr int kChain = 1000;
  std::string body = "facts { name: \"x\" type: NUMBER }\n"
                     "derived_values { name: \"d0\" expression: \"x\" }\n";
  for (int i = 1; i < kChain; ++i) {
    absl::StrAppend(&body, "derived_values { name: \"d", i, "\" expression: \"d", i - 1,
                    " + 1\" }\n");
  }
  absl::StrAppend(&body, "inclusion { id: \"I1\" text: \"t\" expression: \"d", kChain - 1,
                  " == x + ", kChain - 1, "\" }\n");
  const auto rule_set = testing::LoadInline(body);
  ASSERT_NE(rule_set, nullptr);
  const Evaluation evaluation =
      rule_set->Evaluate(EvaluationKind::kEligibility, *rule_set->BindFacts({{"x", 3.0, ""}}));
  EXPECT_EQ(evaluation.decision, Decision::kEligible);
}

}  // namespace
}  // namespace trialrules
