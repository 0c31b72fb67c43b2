#include "client/population.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace trialrules {

std::vector<std::vector<FactInput>> SyntheticPopulation(
    const RuleSet& rule_set, EvaluationKind kind, int count,
    double missing_fraction, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const DayNumber assessment = *ParseIsoDate(kSyntheticAssessmentDate);
  std::vector<std::vector<FactInput>> population(count);
  for (auto& patient : population) {
    for (int f : rule_set.FactsFor(kind)) {
      if (unit(random) < missing_fraction) continue;
      const FactSpec& spec = rule_set.facts()[f];
      FactInput input{spec.name, 0.0, ""};
      switch (spec.type) {
        case ValueType::kBool:
          // Mostly the favourable side, as in a screened population.
          input.value = unit(random) < 0.5;
          break;
        case ValueType::kDate: {
          const DayNumber day = spec.name == "assessment_date"
                                    ? assessment
                                    : assessment - static_cast<int>(unit(random) * 120);
          input.value = FormatIsoDate(day);
          break;
        }
        case ValueType::kText:
          input.value = spec.allowed_values[static_cast<size_t>(unit(random) *
                                                                spec.allowed_values.size()) %
                                            spec.allowed_values.size()];
          break;
        case ValueType::kNumber: {
          const double low = std::isfinite(spec.min) ? spec.min : 0.0;
          const double high =
              std::isfinite(spec.max) ? std::min(spec.max, low + 200) : low + 200;
          double value = low + unit(random) * (high - low);
          // As a lab reports them: whole numbers for counts, else one decimal.
          value = spec.integer ? std::floor(value) : std::round(value * 10) / 10;
          value = std::clamp(value, low, high);
          input.value = value;
          break;
        }
      }
      patient.push_back(std::move(input));
    }
  }
  return population;
}

}  // namespace trialrules
