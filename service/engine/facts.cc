#include "service/engine/facts.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/engine/rule_set.h"
#include "service/util/dates.h"
#include "service/util/number_text.h"

namespace trialrules {
namespace {

constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

std::string DescribeValue(const FactSpec& spec, double canonical) {
  if (spec.type == ValueType::kDate) {
    return FormatIsoDate(static_cast<DayNumber>(canonical));
  }
  return spec.unit.empty() ? ShortestNumber(canonical)
                           : absl::StrCat(ShortestNumber(canonical), " ", spec.unit);
}

std::string DescribeInput(const FactValue& value,
                          absl::string_view unit) {
  if (const double* number = std::get_if<double>(&value)) {
    return unit.empty() ? ShortestNumber(*number)
                        : absl::StrCat(ShortestNumber(*number), " ", unit);
  }
  if (const bool* flag = std::get_if<bool>(&value)) {
    return *flag ? "true" : "false";
  }
  return absl::StrCat("\"", std::get<std::string>(value), "\"");
}

}  // namespace

absl::Status FactWithoutValueError(absl::string_view name) {
  return absl::InvalidArgumentError(absl::StrCat(
      "fact \"", name,
      "\" has no value (set number, boolean, date or text; leave a missing fact out)"));
}

absl::StatusOr<FactInput> FactInputFromProto(const v1::FactValue& fact) {
  std::optional<FactValue> value = FactValueOf(fact);
  if (!value) return FactWithoutValueError(fact.name());
  return FactInput{fact.name(), *std::move(value), fact.unit()};
}

absl::Status RuleSet::CheckValueField(const v1::FactValue& fact) const {
  const int index = FindFact(fact.name());
  if (index < 0) return absl::OkStatus();
  const ValueType type = def_.facts[index].type;
  const bool in_date = fact.value_case() == v1::FactValue::kDate;
  const bool in_text = fact.value_case() == v1::FactValue::kText;
  if ((type == ValueType::kText && in_date) || (type == ValueType::kDate && in_text)) {
    return absl::InvalidArgumentError(absl::StrCat(
        def_.value_noun, " \"", fact.name(), "\" = \"", in_date ? fact.date() : fact.text(),
        "\": ", type == ValueType::kText ? "a word goes in `text`, not `date`"
                                          : "a date goes in `date`, not `text`"));
  }
  return absl::OkStatus();
}

FactValues RuleSet::EmptyFacts() const {
  FactValues facts;
  ResetFacts(&facts);
  return facts;
}

void RuleSet::ResetFacts(FactValues* facts) const {
  facts->values.assign(def_.facts.size(), kUnknown);
  facts->present.assign(def_.facts.size(), 0);
}

absl::Status RuleSet::BindFactAt(int fact, const FactValue& value, absl::string_view unit,
                                 FactValues* facts) const {
  absl::StatusOr<double> converted = ConvertFact(fact, value, unit);
  if (!converted.ok()) return converted.status();
  facts->values[fact] = *converted;
  facts->present[fact] = 1;
  return absl::OkStatus();
}

absl::StatusOr<double> RuleSet::ConvertFact(
    int fact, const FactValue& value,
    absl::string_view unit) const {
  const FactSpec& spec = def_.facts[fact];
  auto refuse = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(def_.value_noun, " \"", spec.name,
                                                   "\" = ", DescribeInput(value, unit), ": ",
                                                   why));
  };
  double canonical = 0;
  switch (spec.type) {
    case ValueType::kNumber: {
      const double* number = std::get_if<double>(&value);
      if (number == nullptr) return refuse("expected a number");
      if (!std::isfinite(*number)) return refuse("not a finite number");
      canonical = *number;
      if (!unit.empty() && unit != spec.unit) {
        const auto alternative = std::find_if(
            spec.accepted_units.begin(), spec.accepted_units.end(),
            [&](const FactSpec::AlternativeUnit& a) { return a.unit == unit; });
        if (alternative == spec.accepted_units.end()) {
          std::vector<std::string> accepted = {
              spec.unit.empty() ? "no unit" : spec.unit};
          for (const auto& a : spec.accepted_units) accepted.push_back(a.unit);
          return refuse(absl::StrCat("unit \"", unit, "\" is not accepted (",
                                     absl::StrJoin(accepted, ", "), ")"));
        }
        canonical = alternative->canonical_per_unit != 0
                        ? *number * alternative->canonical_per_unit
                        : *number / alternative->per_canonical_unit;
        if (!std::isfinite(canonical)) {
          return refuse(absl::StrCat("too large once converted to ",
                                     spec.unit.empty() ? "the canonical unit" : spec.unit));
        }
      }
      if (spec.integer && canonical != std::floor(canonical)) {
        return refuse("must be a whole number");
      }
      break;
    }
    case ValueType::kBool: {
      const bool* flag = std::get_if<bool>(&value);
      if (flag == nullptr) return refuse("expected true or false");
      if (!unit.empty()) return refuse("a true/false fact takes no unit");
      canonical = *flag ? 1.0 : 0.0;
      break;
    }
    case ValueType::kDate: {
      const std::string* text = std::get_if<std::string>(&value);
      if (text == nullptr) return refuse("expected a date \"YYYY-MM-DD\"");
      if (!unit.empty()) return refuse("a date takes no unit");
      absl::StatusOr<DayNumber> day = ParseIsoDate(*text);
      if (!day.ok()) return refuse(day.status().message());
      canonical = *day;
      break;
    }
    case ValueType::kText: {
      const std::string allowed = absl::StrJoin(spec.allowed_values, ", ");
      const std::string* word = std::get_if<std::string>(&value);
      if (word == nullptr) return refuse(absl::StrCat("expected one of ", allowed));
      if (!unit.empty()) return refuse("a text value takes no unit");
      if (std::find(spec.allowed_values.begin(), spec.allowed_values.end(), *word) ==
          spec.allowed_values.end()) {
        return refuse(absl::StrCat("not an allowed value (", allowed, ")"));
      }
      canonical = def_.WordCode(*word);
      break;
    }
  }
  if (canonical < spec.min || canonical > spec.max) {
    std::string range =
        absl::StrCat("outside the valid range ", DescribeValue(spec, spec.min),
                     " to ", DescribeValue(spec, spec.max));
    if (spec.type == ValueType::kNumber && !unit.empty() && unit != spec.unit) {
      absl::StrAppend(&range, " (", DescribeValue(spec, canonical), ")");
    }
    return refuse(range);
  }
  return canonical;
}

absl::Status RuleSet::BindFact(absl::string_view name,
                               const FactValue& value,
                               absl::string_view unit, FactValues* facts,
                               std::vector<std::string>* ignored_unknown) const {
  const int fact = FindFact(name);
  if (fact < 0) {
    if (ignored_unknown != nullptr) {
      ignored_unknown->emplace_back(name);
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrCat(
        def_.value_noun, " \"", name, "\" = ", DescribeInput(value, unit), ": unknown ",
        def_.value_noun, " for ", def_.subject_noun, " ", def_.protocol_id, " version ",
        def_.version));
  }
  if (facts->present[fact]) {
    return absl::InvalidArgumentError(
        absl::StrCat(def_.value_noun, " \"", name, "\" is given more than once"));
  }
  return BindFactAt(fact, value, unit, facts);
}

absl::StatusOr<FactValues> RuleSet::BindFacts(
    absl::Span<const FactInput> inputs,
    std::vector<std::string>* ignored_unknown) const {
  FactValues facts = EmptyFacts();
  for (const FactInput& input : inputs) {
    absl::Status status =
        BindFact(input.name, input.value, input.unit, &facts, ignored_unknown);
    if (!status.ok()) return status;
  }
  return facts;
}

}  // namespace trialrules
