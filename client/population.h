// Synthetic patients for tests, benchmarks and the load generator: varied
// facts drawn from each fact's declared type and range, so that every
// criterion sees both sides of its boundaries. Not clinical data.
#ifndef TRIALRULES_CLIENT_POPULATION_H_
#define TRIALRULES_CLIENT_POPULATION_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "service/engine/rule_set.h"

namespace trialrules {

// The assessment date of every synthetic patient (their other dates fall
// in the 120 days before it): the as-of date to evaluate them on.
inline constexpr absl::string_view kSyntheticAssessmentDate = "2020-01-15";

// `count` fact lists for the facts that `kind` depends on, each fact left
// out with probability `missing_fraction`. Deterministic for a seed.
std::vector<std::vector<FactInput>> SyntheticPopulation(
    const RuleSet& rule_set, EvaluationKind kind, int count,
    double missing_fraction, uint64_t seed);

}  // namespace trialrules

#endif  // TRIALRULES_CLIENT_POPULATION_H_
