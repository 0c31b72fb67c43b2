#include "client/records_file.h"

#include <cmath>
#include <functional>
#include <map>
#include <string>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "client/client.h"
#include "client/facts_file.h"

namespace trialrules {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// Reads the keys of one JSON object, each with its own setter; a key
// without a setter is refused, naming it.
class ObjectReader {
 public:
  using Setter = std::function<absl::Status(const Value&)>;

  ObjectReader(std::string where, std::map<std::string, Setter> setters)
      : where_(std::move(where)), setters_(std::move(setters)) {}

  absl::Status Read(const Value& value) const {
    if (value.kind_case() != Value::kStructValue) return Refuse("", "must be an object");
    for (const auto& [key, field] : value.struct_value().fields()) {
      const auto setter = setters_.find(key);
      if (setter == setters_.end()) {
        std::vector<std::string> keys;
        for (const auto& [name, unused] : setters_) keys.push_back(name);
        return Refuse(key, absl::StrCat("is not a field here (", absl::StrJoin(keys, ", "), ")"));
      }
      if (field.kind_case() == Value::kNullValue) continue;
      if (absl::Status s = setter->second(field); !s.ok()) {
        return Refuse(key, s.message());
      }
    }
    return absl::OkStatus();
  }

  absl::Status Refuse(absl::string_view key, absl::string_view message) const {
    // A nested object's refusal starts with its own path: "[0].term: ...".
    const bool nested = absl::StartsWith(message, "[");
    return absl::InvalidArgumentError(absl::StrCat(
        where_, key.empty() || where_.empty() ? "" : ".", key, nested ? "" : ": ", message));
  }

 private:
  std::string where_;
  std::map<std::string, Setter> setters_;
};

ObjectReader::Setter Text(std::string* out) {
  return [out](const Value& v) {
    if (v.kind_case() != Value::kStringValue) return absl::InvalidArgumentError("must be a string");
    *out = v.string_value();
    return absl::OkStatus();
  };
}

template <typename SetBool>
ObjectReader::Setter Flag(SetBool set) {
  return [set](const Value& v) {
    if (v.kind_case() != Value::kBoolValue) {
      return absl::InvalidArgumentError("must be true, false or null");
    }
    set(v.bool_value());
    return absl::OkStatus();
  };
}

absl::Status ReadEvent(const Value& value, const std::string& where,
                       v1::AdverseEventRecord* event) {
  ObjectReader reader(
      where,
      {{"term", Text(event->mutable_term())},
       {"grade",
        [event](const Value& v) {
          if (v.kind_case() != Value::kNumberValue || v.number_value() != std::floor(v.number_value()) ||
              std::abs(v.number_value()) > 1e6) {
            return absl::InvalidArgumentError("must be a whole number or null");
          }
          event->set_grade(static_cast<int>(v.number_value()));
          return absl::OkStatus();
        }},
       {"hematologic", Flag([event](bool b) { event->set_hematologic(b); })},
       {"onset_date", Text(event->mutable_onset_date())},
       {"resolution_date", Text(event->mutable_resolution_date())},
       {"attribution", Text(event->mutable_attribution())},
       {"observations", [event](const Value& v) {
          if (v.kind_case() != Value::kStructValue) {
            return absl::InvalidArgumentError("must be an object");
          }
          absl::StatusOr<std::vector<FactInput>> inputs = FactsFromStruct(v.struct_value());
          if (!inputs.ok()) return inputs.status();
          AddObservations(*inputs, event->mutable_observations());
          return absl::OkStatus();
        }}});
  return reader.Read(value);
}

absl::Status ReadPatient(const Value& value, const std::string& where,
                         v1::PatientRecord* patient) {
  ObjectReader reader(
      where,
      {{"subject_ref", Text(patient->mutable_subject_ref())},
       {"dose_level", Text(patient->mutable_dose_level())},
       {"infusion_date", Text(patient->mutable_infusion_date())},
       {"death_date", Text(patient->mutable_death_date())},
       {"death_treatment_related",
        Flag([patient](bool b) { patient->set_death_treatment_related(b); })},
       {"events", [patient](const Value& v) {
          if (v.kind_case() != Value::kListValue) return absl::InvalidArgumentError("must be a list");
          for (int e = 0; e < v.list_value().values_size(); ++e) {
            absl::Status s = ReadEvent(v.list_value().values(e), absl::StrCat("[", e, "]"),
                                       patient->add_events());
            if (!s.ok()) return s;
          }
          return absl::OkStatus();
        }}});
  return reader.Read(value);
}

}  // namespace

absl::StatusOr<v1::TrialRecords> ParseTrialRecordsJson(absl::string_view json) {
  Value document;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &document);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("records file is not valid JSON: ", parsed.message().as_string()));
  }
  v1::TrialRecords records;
  ObjectReader reader(
      "",
      {{"protocol_id", Text(records.mutable_protocol_id())},
       {"as_of_date", Text(records.mutable_as_of_date())},
       {"current_dose_level", Text(records.mutable_current_dose_level())},
       {"patients", [&records](const Value& v) {
          if (v.kind_case() != Value::kListValue) return absl::InvalidArgumentError("must be a list");
          for (int p = 0; p < v.list_value().values_size(); ++p) {
            const Value& patient = v.list_value().values(p);
            std::string where = absl::StrCat("[", p, "]");
            if (patient.kind_case() == Value::kStructValue) {
              const auto ref = patient.struct_value().fields().find("subject_ref");
              if (ref != patient.struct_value().fields().end()) {
                absl::StrAppend(&where, " (", ref->second.string_value(), ")");
              }
            }
            absl::Status s = ReadPatient(patient, where, records.add_patients());
            if (!s.ok()) return s;
          }
          return absl::OkStatus();
        }}});
  if (absl::Status s = reader.Read(document); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("records file: ", s.message()));
  }
  return records;
}

}  // namespace trialrules
