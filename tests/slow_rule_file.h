// A valid rule file that is as slow to check as the limits allow: rules
// whose expressions are near the length limit, and test cases that
// evaluate every rule. For tests of work that must stop when asked.
#ifndef TRIALRULES_TESTS_SLOW_RULE_FILE_H_
#define TRIALRULES_TESTS_SLOW_RULE_FILE_H_

#include <string>

#include "absl/strings/str_cat.h"

namespace trialrules::testing {

// `rules` inclusion criteria (at most 499) over ten facts, one exclusion
// criterion, and `test_cases` + 1 test cases; every criterion is TRUE in
// one test and FALSE in another. At (499, 900) the file is near 1 MiB.
inline std::string SlowRuleFile(int rules, int test_cases) {
  constexpr int kFacts = 10;
  std::string text =
      "protocol_id: \"SLOW\" version: \"1.0\" effective_from: \"2020-01-01\" "
      "title: \"slow to check\"\n";
  std::string all_facts;
  std::string low_facts = "facts { name: \"x0\" number: 100 }";
  for (int i = 0; i < kFacts; ++i) {
    absl::StrAppend(&text, "facts { name: \"x", i, "\" type: NUMBER }\n");
    absl::StrAppend(&all_facts, " facts { name: \"x", i, "\" number: ", i + 1, " }");
    if (i > 0) absl::StrAppend(&low_facts, " facts { name: \"x", i, "\" number: 0 }");
  }
  absl::StrAppend(&text, "fact_sets { name: \"all\"", all_facts, " }\n");
  std::string sum;
  for (int k = 0;; ++k) {
    const std::string term = absl::StrCat("x", k % kFacts, "*x", (k + 3) % kFacts);
    if (sum.size() + term.size() + 20 > 1900) break;
    absl::StrAppend(&sum, sum.empty() ? "" : " + ", term);
  }
  for (int r = 0; r < rules; ++r) {
    absl::StrAppend(&text, "inclusion { id: \"I", r, "\" text: \"t\" expression: \"", sum,
                    " > ", r, "\" }\n");
  }
  absl::StrAppend(&text, "exclusion { id: \"E0\" text: \"t\" expression: \"x0 > 5\" }\n");
  absl::StrAppend(&text, "test_cases { name: \"low\" kind: ELIGIBILITY ", low_facts,
                  " expect_decision: \"INELIGIBLE\" }\n");
  for (int t = 0; t < test_cases; ++t) {
    absl::StrAppend(&text, "test_cases { name: \"t", t,
                    "\" kind: ELIGIBILITY based_on: \"all\" expect_decision: \"ELIGIBLE\" }\n");
  }
  return text;
}

}  // namespace trialrules::testing

#endif  // TRIALRULES_TESTS_SLOW_RULE_FILE_H_
