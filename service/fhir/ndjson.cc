#include "service/fhir/ndjson.h"

#include <cstddef>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "service/fhir/patient_facts.h"
#include "simdjson.h"

namespace trialrules {
namespace {

namespace dom = simdjson::dom;
using fhir_internal::PatientFactsReader;
using fhir_internal::Refuse;
using fhir_internal::Resource;
using fhir_internal::StringField;

constexpr std::string_view kPatientPrefix = "Patient/";

struct Line {
  size_t number = 0;  // 1-based
  absl::string_view text;
};

// The non-blank lines of `text`, numbered from 1 or by `numbers`.
std::vector<Line> SplitLines(absl::string_view text, absl::Span<const uint64_t> numbers) {
  std::vector<Line> lines;
  size_t count = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    absl::string_view line = text.substr(0, end);
    text = end == absl::string_view::npos ? absl::string_view() : text.substr(end + 1);
    const size_t number = count < numbers.size() ? numbers[count] : count + 1;
    ++count;
    if (!absl::StripAsciiWhitespace(line).empty()) lines.push_back({number, line});
  }
  return lines;
}

// A patient's lines as the export gives them.
struct Group {
  std::string id;
  Line patient;  // number 0: none
  std::vector<Line> observations;
  std::string first_observation;  // its Name(), for "no Patient" refusals
  absl::Status error;             // the first refusal of one of its resources
};

// Two passes, each parsing one small piece at a time with a parser whose
// buffers are reused, so that memory stays near one patient's size and hot
// in cache: the first parses each line for whose it is (Patient.id or
// Observation.subject), the second parses each patient's lines as one JSON
// array and reads them with the shared selection rules.
class NdjsonReader {
 public:
  NdjsonReader(const RuleSet& rules, const BundleOptions& options) : reader_(rules, options) {
    // The second pass reads a patient's lines one level deeper, in an
    // array: a line as deep as the first pass allows must read there too.
    // Should this allocation fail, parse() allocates at the default depth.
    const simdjson::error_code deeper = parser_.allocate(
        simdjson::dom::MINIMAL_DOCUMENT_CAPACITY, simdjson::DEFAULT_MAX_DEPTH + 1);
    static_cast<void>(deeper);
  }

  NdjsonFacts Read(absl::string_view text, absl::Span<const uint64_t> line_numbers) {
    text_end_ = text.data() + text.size();
    for (const Line& line : SplitLines(text, line_numbers)) Sort(line);
    for (Group& group : groups_) {
      NdjsonPatient patient{group.id, BundleFacts()};
      if (!group.error.ok()) {
        patient.facts = group.error;
      } else if (group.patient.number == 0) {
        patient.facts = absl::InvalidArgumentError(
            absl::StrCat("no Patient resource with id \"", group.id,
                         "\" (its Observations name it, e.g. ", group.first_observation, ")"));
      } else {
        patient.facts = ReadPatient(group);
      }
      out_.patients.push_back(std::move(patient));
    }
    return std::move(out_);
  }

 private:
  Group& GroupOf(std::string_view id) {
    const auto [it, inserted] = group_of_.try_emplace(std::string(id), groups_.size());
    if (inserted) groups_.push_back({std::string(id), {}, {}, "", absl::OkStatus()});
    return groups_[it->second];
  }

  static void Charge(Group& group, absl::Status error) {
    if (group.error.ok()) group.error = std::move(error);
  }

  // First pass: the group `line` belongs to, or a line error.
  void Sort(const Line& line) {
    Resource resource;
    resource.index = line.number;
    resource.ndjson_line = true;
    dom::element element;
    // simdjson reads up to simdjson::SIMDJSON_PADDING bytes past the end: the export's
    // next lines are there, except near its end, where the line is copied.
    const bool padded = text_end_ - (line.text.data() + line.text.size()) >=
                        static_cast<std::ptrdiff_t>(simdjson::SIMDJSON_PADDING);
    if (const auto error =
            line_parser_.parse(line.text.data(), line.text.size(), /*realloc_if_needed=*/!padded)
                .get(element);
        error != simdjson::SUCCESS) {
      out_.line_errors.push_back(absl::StrCat("line ", line.number, ": not JSON: ",
                                              simdjson::error_message(error)));
      return;
    }
    std::string_view type;
    if (element.get_object().get(resource.object) != simdjson::SUCCESS ||
        resource.object["resourceType"].get_string().get(type) != simdjson::SUCCESS) {
      out_.line_errors.push_back(absl::StrCat(
          "line ", line.number, ": must be an object with a string \"resourceType\""));
      return;
    }
    if (type != "Patient" && type != "Observation") return;
    resource.type = std::string(type);
    std::string_view id;
    dom::element id_element;
    if (resource.object["id"].get(id_element) == simdjson::SUCCESS) {
      if (id_element.get_string().get(id) != simdjson::SUCCESS) id = {};
    }
    resource.id = std::string(id);

    if (type == "Patient") {
      if (id.empty()) {
        out_.line_errors.push_back(std::string(
            Refuse(resource, "id", "is required (a Patient is found by its id)").message()));
        return;
      }
      Group& group = GroupOf(id);
      if (group.patient.number != 0) {
        Charge(group, Refuse(resource, "id",
                             absl::StrCat("\"", resource.id, "\" is also the id of line ",
                                          group.patient.number, " (Patient/", resource.id,
                                          ")")));
        return;
      }
      group.patient = line;
      return;
    }
    // An Observation belongs to the patient its subject names.
    dom::object subject;
    std::string_view reference;
    if (resource.object["subject"].get_object().get(subject) != simdjson::SUCCESS ||
        subject["reference"].get_string().get(reference) != simdjson::SUCCESS ||
        reference.substr(0, kPatientPrefix.size()) != kPatientPrefix ||
        reference.size() == kPatientPrefix.size()) {
      out_.line_errors.push_back(std::string(
          Refuse(resource, "subject.reference", "must be \"Patient/ID\" (whose result it is)")
              .message()));
      return;
    }
    Group& group = GroupOf(reference.substr(kPatientPrefix.size()));
    if (id.empty()) {
      Charge(group, Refuse(resource, "id",
                           "is required (answers name where each fact came from)"));
      return;
    }
    if (group.observations.empty()) group.first_observation = resource.Name();
    group.observations.push_back(line);
  }

  // Second pass: one patient's lines, parsed together, through the
  // selection rules.
  absl::StatusOr<BundleFacts> ReadPatient(const Group& group) {
    size_t size = 2 + group.patient.text.size();
    for (const Line& line : group.observations) size += 1 + line.text.size();
    array_.clear();
    // Room for simdjson's padding, so that it parses in place.
    array_.reserve(size + simdjson::SIMDJSON_PADDING);
    array_ += '[';
    array_.append(group.patient.text.data(), group.patient.text.size());
    for (const Line& line : group.observations) {
      array_ += ',';
      array_.append(line.text.data(), line.text.size());
    }
    array_ += ']';
    dom::array array;
    if (parser_.parse(array_.data(), array_.size(), /*realloc_if_needed=*/false)
            .get_array()
            .get(array) != simdjson::SUCCESS) {
      return absl::InternalError("a patient's lines, each JSON, were not a JSON array");
    }
    resources_.resize(1 + group.observations.size());
    observations_.clear();
    size_t i = 0;
    for (dom::element element : array) {
      Resource& resource = resources_[i];
      resource.index = i == 0 ? group.patient.number : group.observations[i - 1].number;
      resource.ndjson_line = true;
      std::string_view type, id;
      // Each was checked in the first pass.
      if (element.get_object().get(resource.object) != simdjson::SUCCESS ||
          resource.object["resourceType"].get_string().get(type) != simdjson::SUCCESS ||
          resource.object["id"].get_string().get(id) != simdjson::SUCCESS) {
        return absl::InternalError("a line read in the first pass changed in the second");
      }
      resource.type.assign(type.data(), type.size());
      resource.id.assign(id.data(), id.size());
      if (i > 0) observations_.push_back(&resource);
      ++i;
    }
    return reader_.Read(resources_[0], "", observations_);
  }

  PatientFactsReader reader_;
  const char* text_end_ = nullptr;
  dom::parser line_parser_;
  dom::parser parser_;
  std::string array_;
  std::vector<Resource> resources_;
  std::vector<const Resource*> observations_;
  std::vector<Group> groups_;
  absl::flat_hash_map<std::string, size_t> group_of_;
  NdjsonFacts out_;
};

}  // namespace

NdjsonFacts FactsFromNdjson(absl::string_view ndjson, const RuleSet& rules,
                            const BundleOptions& options,
                            absl::Span<const uint64_t> line_numbers) {
  return NdjsonReader(rules, options).Read(ndjson, line_numbers);
}

size_t CountNdjsonLines(absl::string_view ndjson) {
  size_t breaks = 0;
  const char* end = ndjson.data() + ndjson.size();
  for (const char* at = ndjson.data();
       at < end && (at = static_cast<const char*>(std::memchr(at, '\n', end - at))) != nullptr;
       ++at) {
    ++breaks;
  }
  return breaks + (!ndjson.empty() && ndjson.back() != '\n' ? 1 : 0);
}

}  // namespace trialrules
