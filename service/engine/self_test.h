// The rule file's self-test, run once it is compiled: its fact sets and test
// cases (facts → expected rule outcomes, decision or refusal). A file whose
// test cases fail is not loaded.
#ifndef TRIALRULES_SERVICE_ENGINE_SELF_TEST_H_
#define TRIALRULES_SERVICE_ENGINE_SELF_TEST_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "service/engine/coverage.h"
#include "service/engine/keep_going.h"
#include "service/engine/parse.h"
#include "service/engine/problem.h"
#include "service/engine/rule_set.h"

namespace trialrules {

struct TestCaseResult {
  std::string name;
  bool passed = false;
};

// One result per test case in `tests`, in file order; each failure (and
// each bad fact set) is also a problem with its position. `keep_going` is
// asked before each test case; its refusal stops the run and is returned.
// `coverage` gets, per rule, what the test cases reach (when they pass);
// the file's `require_coverage` is checked against it.
absl::Status RunSelfTests(const ParsedRuleFile& parsed, const RuleSet& rule_set,
                          KeepGoing keep_going, std::vector<TestCaseResult>* tests,
                          std::vector<Problem>* problems,
                          std::vector<RuleCoverage>* coverage = nullptr);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_SELF_TEST_H_
