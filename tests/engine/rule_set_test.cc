// Any number of threads may evaluate one compiled rule set at once, and each
// gets exactly the answer a lone thread gets. Run under ThreadSanitizer by
// scripts/test.sh.
#include <thread>

#include "client/population.h"
#include "gtest/gtest.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

struct Expected {
  Decision decision;
  std::vector<Outcome> outcomes;
  std::vector<int> missing_facts;
};

Expected Summarise(const Evaluation& evaluation) {
  Expected summary{evaluation.decision, {}, evaluation.missing_facts};
  for (const RuleResult& result : evaluation.rules) summary.outcomes.push_back(result.outcome);
  return summary;
}

TEST(ConcurrencyTest, ManyThreadsEvaluatingOneRuleSetAgreeWithOneThread) {
  auto rule_set = testing::LoadBundled("NCT04094766-v2.0.textproto");
  ASSERT_NE(rule_set, nullptr);
  struct Case {
    EvaluationKind kind;
    FactValues facts;
    Expected expected;
  };
  std::vector<Case> cases;
  for (EvaluationKind kind : kAllEvaluationKinds) {
    for (const auto& patient : SyntheticPopulation(*rule_set, kind, 200, 0.2, 7)) {
      absl::StatusOr<FactValues> facts = rule_set->BindFacts(patient);
      ASSERT_TRUE(facts.ok()) << facts.status();
      cases.push_back({kind, *facts, Summarise(rule_set->Evaluate(kind, *facts))});
    }
  }
  // The population must exercise every decision path, not one answer.
  std::set<Decision> decisions;
  for (const Case& c : cases) decisions.insert(c.expected.decision);
  EXPECT_GE(decisions.size(), 5u);

  constexpr int kThreads = 8;
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Evaluation evaluation;
      for (int round = 0; round < 5; ++round) {
        for (size_t i = 0; i < cases.size(); ++i) {
          const Case& c = cases[(i * (t + 1)) % cases.size()];
          rule_set->Evaluate(c.kind, c.facts, &evaluation);
          const Expected got = Summarise(evaluation);
          if (got.decision != c.expected.decision ||
              got.outcomes != c.expected.outcomes ||
              got.missing_facts != c.expected.missing_facts) {
            ++mismatches;
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace trialrules
