// A caller's facts once checked: values in canonical units, indexed like the
// rule set's declared facts. The checks themselves are RuleSet::BindFact and
// its siblings (facts.cc), which know each fact's type, units and range.
#ifndef TRIALRULES_SERVICE_ENGINE_FACTS_H_
#define TRIALRULES_SERVICE_ENGINE_FACTS_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "service/engine/vocabulary.h"
#include "trialrules/v1/rule_file.pb.h"

namespace trialrules {

// Validated facts, indexed like RuleSet::facts(): canonical-unit numbers,
// 0/1 for bools, day numbers for dates; NaN where absent.
struct FactValues {
  std::vector<double> values;
  std::vector<uint8_t> present;
};

// The value of a message with the oneof `value { number, boolean, date }`
// and perhaps `text` (v1::FactValue of rule files and requests,
// v1::ScreenValue of screening rows); none when it is not set.
template <typename ValueMessage>
std::optional<FactValue> FactValueOf(const ValueMessage& message) {
  if constexpr (requires { ValueMessage::kText; }) {
    if (message.value_case() == ValueMessage::kText) return message.text();
  }
  switch (message.value_case()) {
    case ValueMessage::kNumber: return message.number();
    case ValueMessage::kBoolean: return message.boolean();
    case ValueMessage::kDate: return message.date();
    default: return std::nullopt;
  }
}

// The refusal of fact `name` sent without a value.
absl::Status FactWithoutValueError(absl::string_view name);

// A fact as the API and rule files write it (v1::FactValue) → the engine's
// input. A fact without a value is refused, naming it.
absl::StatusOr<FactInput> FactInputFromProto(const v1::FactValue& fact);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_FACTS_H_
