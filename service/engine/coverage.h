// What a rule file's own test cases reach, for rule authors: per rule, the
// outcomes its test cases give it and the boundaries of its comparisons
// that a test case sits on (both sides equal).
#ifndef TRIALRULES_SERVICE_ENGINE_COVERAGE_H_
#define TRIALRULES_SERVICE_ENGINE_COVERAGE_H_

#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "service/engine/vocabulary.h"

namespace trialrules {

// One comparison an expression makes, e.g. `alt_u_l < 5 * alt_uln_u_l`.
struct Comparison {
  std::string text;
  std::string lhs;
  std::string rhs;
};

// The comparisons `expression` makes, in order: each operator with the
// operands it binds (up to `&&`, `||`, `,` or the enclosing parenthesis).
std::vector<Comparison> ComparisonsIn(absl::string_view expression);

struct BoundaryCoverage {
  std::string comparison;  // its text
  bool tested = false;     // some test case makes both sides equal
};

struct RuleCoverage {
  int rule = 0;                  // index into RuleSet::rules()
  std::set<Outcome> outcomes;    // reached by the file's test cases
  std::vector<BoundaryCoverage> boundaries;  // of its numeric and date comparisons
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_COVERAGE_H_
