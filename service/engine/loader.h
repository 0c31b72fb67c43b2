// Loading a rule file: parse → check → compile → self-test. Every problem
// is returned as data with its position, never thrown; a file is loaded
// whole or not at all.
#ifndef TRIALRULES_SERVICE_ENGINE_LOADER_H_
#define TRIALRULES_SERVICE_ENGINE_LOADER_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "service/engine/keep_going.h"
#include "service/engine/problem.h"
#include "service/engine/rule_set.h"
#include "service/engine/self_test.h"

namespace trialrules {

struct LoadResult {
  // Null when there is any problem.
  std::shared_ptr<const RuleSet> rule_set;
  std::vector<Problem> problems;
  std::vector<TestCaseResult> tests;  // empty unless the file compiled
  std::vector<RuleCoverage> coverage;  // per rule, when the test cases pass
  // Not OK when `keep_going` stopped the load (then `rule_set` is null and
  // the problems and tests are those found before it stopped).
  absl::Status stopped;
};

// `file_name` is used in problems and kept in the rule set. `keep_going` is
// asked before each expression is checked and compiled and before each test
// case, so that a stop takes effect within milliseconds.
LoadResult LoadRuleSet(absl::string_view text, absl::string_view file_name,
                       KeepGoing keep_going = AlwaysKeepGoing);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_LOADER_H_
