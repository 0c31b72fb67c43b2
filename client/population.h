// Synthetic patients for tests, benchmarks and the load generator: varied
// facts drawn from each fact's declared type and range, so that every
// criterion sees both sides of its boundaries. Not clinical data.
#ifndef TRIALRULES_CLIENT_POPULATION_H_
#define TRIALRULES_CLIENT_POPULATION_H_

#include <cstdint>
#include <vector>

#include "service/engine/rule_set.h"

namespace trialrules {

// `count` fact lists for the facts that `kind` depends on, each fact left
// out with probability `missing_fraction`. Deterministic for a seed.
std::vector<std::vector<FactInput>> SyntheticPopulation(
    const RuleSet& rule_set, EvaluationKind kind, int count,
    double missing_fraction, uint64_t seed);

}  // namespace trialrules

#endif  // TRIALRULES_CLIENT_POPULATION_H_
