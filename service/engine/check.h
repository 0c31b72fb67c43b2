// Phase 2 of loading a rule file: the parsed file → a checked definition.
// Names are resolved, each expression's type is checked once (derived values
// in the order of their use), dose levels and header fields validated, and
// cycles refused; what checking learned travels on in the definition.
#ifndef TRIALRULES_SERVICE_ENGINE_CHECK_H_
#define TRIALRULES_SERVICE_ENGINE_CHECK_H_

#include <vector>

#include "service/engine/definition.h"
#include "service/engine/keep_going.h"
#include "service/engine/parse.h"
#include "service/engine/problem.h"

namespace trialrules {

// What one rule file may hold, checked before any expression is: a
// protocol's rules need far less, and anything larger is a mistake or an
// attack on the server that checks it.
inline constexpr int kMaxFactsPerFile = 1000;
inline constexpr int kMaxDerivedValuesPerFile = 500;
inline constexpr int kMaxRulesPerFile = 500;
inline constexpr int kMaxTestCasesPerFile = 5000;
// The longest chain of derived values and rules using one another.
inline constexpr int kMaxDerivationDepth = 64;

// Fills `definition`; false with `problems` (each with its position) when
// the file is not a valid rule set. `keep_going` is asked before each
// expression; when it refuses, the check stops there and returns false.
bool CheckRuleFile(const ParsedRuleFile& parsed, RuleSetDefinition* definition,
                   std::vector<Problem>* problems, KeepGoing keep_going = AlwaysKeepGoing);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_CHECK_H_
