// The words trialrules answers in: outcomes, rule kinds, evaluation kinds,
// decisions, value types and a caller's fact. Header-only and free of the
// engine, so that clients and observers can speak them without linking it.
#ifndef TRIALRULES_SERVICE_ENGINE_VOCABULARY_H_
#define TRIALRULES_SERVICE_ENGINE_VOCABULARY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "absl/strings/string_view.h"

namespace trialrules {

// A criterion's three-valued result.
enum class Outcome : uint8_t { kFalse, kTrue, kUnknown };

enum class RuleKind : uint8_t {
  kInclusion, kExclusion, kWithdrawal, kStopping, kEscalation
};

// What a caller asks about; each kind evaluates its own rules.
enum class EvaluationKind : uint8_t {
  kEligibility, kWithdrawal, kEscalation, kStopping
};
inline constexpr EvaluationKind kAllEvaluationKinds[] = {
    EvaluationKind::kEligibility, EvaluationKind::kWithdrawal,
    EvaluationKind::kEscalation, EvaluationKind::kStopping};

enum class Decision : uint8_t {
  kIndeterminate,
  kEligible, kIneligible,           // eligibility
  kWithdraw, kContinue,             // withdrawal; kContinue also for escalation
  kEscalate, kExpand, kDeEscalate,  // escalation
  kTriggered, kNotTriggered,        // stopping
};

// The type of a fact, derived value or expression. A text value is one of
// a fact's allowed words.
enum class ValueType : uint8_t { kNumber, kBool, kDate, kText };

// An adverse event's attribution to the treatment, least related first.
inline constexpr absl::string_view kAttributions[] = {"unrelated", "unlikely", "possible",
                                                      "probable", "definite"};

// A fact's value as a caller sends it: a number, a true/false value, or a
// string: an ISO date "YYYY-MM-DD" for a DATE fact, a word for a TEXT fact.
using FactValue = std::variant<double, bool, std::string>;

// One fact as a caller sends it. Numbers may carry a unit.
struct FactInput {
  std::string name;
  FactValue value;
  std::string unit;
};

// "TRUE", "FALSE", "UNKNOWN".
constexpr absl::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kTrue: return "TRUE";
    case Outcome::kFalse: return "FALSE";
    case Outcome::kUnknown: return "UNKNOWN";
  }
  return "UNKNOWN";
}

// "inclusion", ...
constexpr absl::string_view RuleKindName(RuleKind kind) {
  switch (kind) {
    case RuleKind::kInclusion: return "inclusion";
    case RuleKind::kExclusion: return "exclusion";
    case RuleKind::kWithdrawal: return "withdrawal";
    case RuleKind::kStopping: return "stopping";
    case RuleKind::kEscalation: return "escalation";
  }
  return "?";
}

// "eligibility", ...
constexpr absl::string_view EvaluationKindName(EvaluationKind kind) {
  switch (kind) {
    case EvaluationKind::kEligibility: return "eligibility";
    case EvaluationKind::kWithdrawal: return "withdrawal";
    case EvaluationKind::kEscalation: return "escalation";
    case EvaluationKind::kStopping: return "stopping";
  }
  return "?";
}

inline std::optional<EvaluationKind> ParseEvaluationKind(absl::string_view name) {
  for (EvaluationKind kind : kAllEvaluationKinds) {
    if (EvaluationKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

// "ELIGIBLE", ...
constexpr absl::string_view DecisionName(Decision decision) {
  switch (decision) {
    case Decision::kIndeterminate: return "INDETERMINATE";
    case Decision::kEligible: return "ELIGIBLE";
    case Decision::kIneligible: return "INELIGIBLE";
    case Decision::kWithdraw: return "WITHDRAW";
    case Decision::kContinue: return "CONTINUE";
    case Decision::kEscalate: return "ESCALATE";
    case Decision::kExpand: return "EXPAND";
    case Decision::kDeEscalate: return "DE_ESCALATE";
    case Decision::kTriggered: return "TRIGGERED";
    case Decision::kNotTriggered: return "NOT_TRIGGERED";
  }
  return "INDETERMINATE";
}

// "number", "bool", "date", "text".
constexpr absl::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kNumber: return "number";
    case ValueType::kBool: return "bool";
    case ValueType::kDate: return "date";
    case ValueType::kText: return "text";
  }
  return "?";
}

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_VOCABULARY_H_
