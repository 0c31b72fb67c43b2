#include "client/facts_file.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"

namespace trialrules {

using google::protobuf::Struct;
using google::protobuf::Value;

namespace {

// The values of object `key` of a JSON document.
absl::StatusOr<std::vector<FactInput>> ParseValuesJson(absl::string_view json,
                                                       absl::string_view key) {
  Struct document;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &document);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " file is not valid JSON: ", parsed.message().as_string()));
  }
  const auto values = document.fields().find(std::string(key));
  if (values == document.fields().end() ||
      values->second.kind_case() != Value::kStructValue) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " file must be a JSON object with an object \"", key, "\""));
  }
  return FactsFromStruct(values->second.struct_value());
}

}  // namespace

absl::StatusOr<std::vector<FactInput>> ParseFactsJson(absl::string_view json) {
  return ParseValuesJson(json, "facts");
}

absl::StatusOr<std::vector<FactInput>> ParseObservationsJson(absl::string_view json) {
  return ParseValuesJson(json, "observations");
}

absl::StatusOr<std::vector<FactInput>> FactsFromStruct(const Struct& facts) {
  std::vector<FactInput> inputs;
  for (const auto& [name, value] : facts.fields()) {
    FactInput input;
    input.name = name;
    switch (value.kind_case()) {
      case Value::kNumberValue: input.value = value.number_value(); break;
      case Value::kBoolValue: input.value = value.bool_value(); break;
      case Value::kStringValue: input.value = value.string_value(); break;
      case Value::kStructValue: {
        const auto& fields = value.struct_value().fields();
        const auto number = fields.find("value");
        const auto unit = fields.find("unit");
        if (number == fields.end() ||
            number->second.kind_case() != Value::kNumberValue ||
            (unit != fields.end() && unit->second.kind_case() != Value::kStringValue) ||
            fields.size() > 2 || (fields.size() == 2 && unit == fields.end())) {
          return absl::InvalidArgumentError(absl::StrCat(
              "fact \"", name,
              "\": an object value must be {\"value\": NUMBER, \"unit\": \"TEXT\"}"));
        }
        input.value = number->second.number_value();
        if (unit != fields.end()) input.unit = unit->second.string_value();
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "fact \"", name,
            "\": a value must be a number, true/false, a date or word string, or "
            "{\"value\", \"unit\"} (leave a missing fact out)"));
    }
    inputs.push_back(std::move(input));
  }
  // Protobuf's map has no order: sort so that output and errors are stable.
  std::sort(inputs.begin(), inputs.end(),
            [](const FactInput& a, const FactInput& b) { return a.name < b.name; });
  return inputs;
}

absl::StatusOr<std::vector<PatientFacts>> ParsePatientsJson(absl::string_view json) {
  Struct document;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &document);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("patients file is not valid JSON: ", parsed.message().as_string()));
  }
  const auto patients = document.fields().find("patients");
  if (patients == document.fields().end() ||
      patients->second.kind_case() != Value::kListValue) {
    return absl::InvalidArgumentError(
        "patients file must be a JSON object with a list \"patients\"");
  }
  std::vector<PatientFacts> out;
  int index = 0;
  for (const Value& patient : patients->second.list_value().values()) {
    const std::string where = absl::StrCat("patients[", index++, "]");
    if (patient.kind_case() != Value::kStructValue) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": must be an object"));
    }
    const auto& fields = patient.struct_value().fields();
    const auto ref = fields.find("subject_ref");
    const auto facts = fields.find("facts");
    if (facts == fields.end() || facts->second.kind_case() != Value::kStructValue) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": needs an object \"facts\""));
    }
    absl::StatusOr<std::vector<FactInput>> inputs =
        FactsFromStruct(facts->second.struct_value());
    if (!inputs.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", inputs.status().message()));
    }
    out.push_back({ref != fields.end() ? ref->second.string_value() : where, *std::move(inputs)});
  }
  return out;
}

std::optional<std::string> AssessmentDate(const std::vector<FactInput>& facts) {
  for (const FactInput& fact : facts) {
    if (fact.name != "assessment_date") continue;
    if (const auto* text = std::get_if<std::string>(&fact.value)) return *text;
  }
  return std::nullopt;
}

}  // namespace trialrules
