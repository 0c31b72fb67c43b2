// The rule file's self-test, run once it is compiled: its fact sets and test
// cases (facts → expected rule outcomes, decision or refusal). A file whose
// test cases fail is not loaded.
#ifndef TRIALRULES_SERVICE_ENGINE_SELF_TEST_H_
#define TRIALRULES_SERVICE_ENGINE_SELF_TEST_H_

#include <string>
#include <vector>

#include "service/engine/parse.h"
#include "service/engine/problem.h"
#include "service/engine/rule_set.h"

namespace trialrules {

struct TestCaseResult {
  std::string name;
  bool passed = false;
};

// One result per test case, in file order; each failure (and each bad fact
// set) is also a problem with its position.
std::vector<TestCaseResult> RunSelfTests(const ParsedRuleFile& parsed,
                                         const RuleSet& rule_set,
                                         std::vector<Problem>* problems);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_SELF_TEST_H_
