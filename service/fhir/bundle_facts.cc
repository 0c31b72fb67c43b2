#include "service/fhir/bundle_facts.h"

#include <memory>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "service/fhir/patient_facts.h"
#include "simdjson.h"

namespace trialrules {
namespace {

namespace dom = simdjson::dom;
using fhir_internal::Refuse;
using fhir_internal::Resource;
using fhir_internal::StringField;

// A Bundle's resources: which are the patient's is for the Bundle to say
// (exactly one Patient); what they give is PatientFactsReader's.
class BundleReader {
 public:
  BundleReader(const RuleSet& rules, const BundleOptions& options) : reader_(rules, options) {}

  absl::StatusOr<BundleFacts> Read(absl::string_view json) {
    if (json.size() > kMaxBundleBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the Bundle is ", json.size(), " bytes; the limit is ", kMaxBundleBytes));
    }
    const simdjson::padded_string padded(json.data(), json.size());
    dom::element root;
    if (const auto error = parser_.parse(padded).get(root); error != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrCat("the Bundle is not JSON: ", simdjson::error_message(error)));
    }
    dom::object bundle;
    std::string_view type;
    if (root.get_object().get(bundle) != simdjson::SUCCESS ||
        bundle["resourceType"].get_string().get(type) != simdjson::SUCCESS ||
        type != "Bundle") {
      return absl::InvalidArgumentError(
          "not a FHIR Bundle: the JSON must be an object with \"resourceType\": \"Bundle\"");
    }
    if (absl::Status status = ReadEntries(bundle); !status.ok()) return status;
    if (patients_.size() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("the Bundle has ", patients_.size(),
                       " Patient resources; it must have exactly one"));
    }
    return reader_.Read(*patients_[0], patient_full_url_, observations_);
  }

 private:
  absl::Status ReadEntries(dom::object bundle) {
    dom::element entries_element;
    if (bundle["entry"].get(entries_element) != simdjson::SUCCESS) return absl::OkStatus();
    dom::array entries;
    if (entries_element.get_array().get(entries) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("Bundle.entry must be an array");
    }
    if (entries.size() > kMaxBundleEntries) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the Bundle has ", entries.size(), " entries; the limit is ", kMaxBundleEntries));
    }
    size_t index = 0;
    for (dom::element element : entries) {
      Resource resource;
      resource.index = index++;
      dom::object entry;
      if (element.get_object().get(entry) != simdjson::SUCCESS) {
        return Refuse(resource, "entry", "must be an object");
      }
      dom::element resource_element;
      // An entry without a resource (a transaction's DELETE) holds no data.
      if (entry["resource"].get(resource_element) != simdjson::SUCCESS) continue;
      std::string_view type;
      if (resource_element.get_object().get(resource.object) != simdjson::SUCCESS ||
          resource.object["resourceType"].get_string().get(type) != simdjson::SUCCESS) {
        return Refuse(resource, "resource",
                      "must be an object with a string \"resourceType\"");
      }
      resource.type = std::string(type);
      if (resource.type != "Patient" && resource.type != "Observation") continue;
      absl::StatusOr<std::optional<std::string>> id =
          StringField(resource, resource.object, "id", "id");
      if (!id.ok()) return id.status();
      if (!id->has_value() || (*id)->empty()) {
        return Refuse(resource, "id", "is required (answers name where each fact came from)");
      }
      resource.id = **id;
      absl::StatusOr<std::optional<std::string>> full_url =
          StringField(resource, entry, "fullUrl", "fullUrl");
      if (!full_url.ok()) return full_url.status();
      resources_.push_back(std::make_unique<Resource>(std::move(resource)));
      if (resources_.back()->type == "Patient") {
        patients_.push_back(resources_.back().get());
        patient_full_url_ = full_url->value_or("");
      } else {
        observations_.push_back(resources_.back().get());
      }
    }
    return absl::OkStatus();
  }

  fhir_internal::PatientFactsReader reader_;
  dom::parser parser_;
  std::vector<std::unique_ptr<Resource>> resources_;
  std::vector<const Resource*> patients_;
  std::vector<const Resource*> observations_;
  std::string patient_full_url_;
};

}  // namespace

absl::StatusOr<BundleFacts> FactsFromBundle(absl::string_view bundle_json,
                                            const RuleSet& rules,
                                            const BundleOptions& options) {
  return BundleReader(rules, options).Read(bundle_json);
}

absl::Status BindFhirFacts(const BundleFacts& fhir, const RuleSet& rules,
                           DayNumber assessment_date, bool bind_assessment_date,
                           FactValues* facts) {
  for (size_t i = 0; i < fhir.facts.size(); ++i) {
    const FactInput& fact = fhir.facts[i];
    const std::string& resource = fhir.provenance[i].second;
    if (fact.name == kAssessmentDateFact) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fact \"", fact.name, "\" is given more than one way: ", resource,
          " and the assessment date; a fact has one source"));
    }
    if (absl::Status bound = rules.BindFact(fact.name, fact.value, fact.unit, facts);
        !bound.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(resource, ": ", bound.message()));
    }
  }
  if (bind_assessment_date && rules.FindFact(kAssessmentDateFact) >= 0) {
    return rules.BindFact(kAssessmentDateFact, FormatIsoDate(assessment_date), "", facts);
  }
  return absl::OkStatus();
}

}  // namespace trialrules
