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

// Debian's Abseil has its own string_view; simdjson hands out std's.
absl::string_view View(std::string_view text) { return {text.data(), text.size()}; }

struct Line {
  size_t number = 0;  // 1-based
  absl::string_view text;
  // Sorted by QuickSort, unparsed: what its parse must confirm. Empty when
  // the line was parsed to be sorted.
  std::string_view quick_id;
};

// Calls `f` with each non-blank line of `text`, as it goes (a list of an
// export's lines would be as large as its patients' groups), numbered from
// 1 or by `numbers`.
template <typename F>
void ForEachLine(absl::string_view text, absl::Span<const uint64_t> numbers, F f) {
  size_t count = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    absl::string_view line = text.substr(0, end);
    text = end == absl::string_view::npos ? absl::string_view() : text.substr(end + 1);
    const size_t number = count < numbers.size() ? numbers[count] : count + 1;
    ++count;
    if (!absl::StripAsciiWhitespace(line).empty()) f(Line{number, line, {}});
  }
}

// Whose a line is, read from its text without parsing it, for the way
// exports write resources: {"resourceType":"T","id":"I", ... with the
// Observation's "subject":{"reference":"Patient/P"} further on. Any other
// way of writing (spaces, escapes, members in another order) gives false
// and the line is parsed to be sorted. A true is a guess that the line's
// parse, which reading its patient does anyway, confirms (Confirms):
// "subject" could be a nested member's, or the line not JSON at all.
struct QuickSorted {
  std::string_view type, id, patient;
};

bool QuickSort(std::string_view line, QuickSorted* out) {
  constexpr std::string_view kStart = R"({"resourceType":")";
  constexpr std::string_view kId = R"(,"id":")";
  constexpr std::string_view kSubject = R"("subject":{"reference":"Patient/)";
  // The string from `at` to the next quote, when it has no escapes.
  auto text = [&](size_t at, std::string_view* string) {
    const size_t end = line.find('"', at);
    if (end == std::string_view::npos) return std::string_view::npos;
    *string = line.substr(at, end - at);
    return string->find('\\') == std::string_view::npos ? end + 1 : std::string_view::npos;
  };
  if (line.substr(0, kStart.size()) != kStart) return false;
  size_t at = text(kStart.size(), &out->type);
  if (at == std::string_view::npos || (out->type != "Patient" && out->type != "Observation") ||
      line.substr(at, kId.size()) != kId) {
    return false;
  }
  at = text(at + kId.size(), &out->id);
  if (at == std::string_view::npos || out->id.empty()) return false;
  if (out->type == "Patient") return true;
  // Found by its 'j', rare in FHIR JSON: a search for the whole key stops
  // at every quote of the line.
  for (at = line.find('j', at); at != std::string_view::npos; at = line.find('j', at + 1)) {
    if (at >= 4 && line.substr(at - 4, kSubject.size()) == kSubject) {
      return text(at - 4 + kSubject.size(), &out->patient) != std::string_view::npos &&
             !out->patient.empty();
    }
  }
  return false;
}

// A patient's lines as the export gives them.
struct Group {
  std::string id;
  Line patient;  // number 0: none
  std::vector<Line> observations;
  std::string first_observation;  // its Name(), for "no Patient" refusals
  absl::Status error;             // the first refusal of one of its resources
};

// Two passes over the lines. The first sorts each line to its patient
// (Patient.id or Observation.subject), by QuickSort where it can and by
// parsing it where it cannot. The second parses each patient's lines, each
// into a document of its own kept for the patient (the parser and the
// documents' buffers are reused, so memory stays near one patient's size
// and hot in cache), confirms each quick sort, and reads them with the
// shared selection rules. So a line of the usual form is parsed once.
// Should a quick sort prove wrong, the whole text is read again with every
// line parsed to be sorted, so the result is always that of parsing.
class NdjsonReader {
 public:
  NdjsonReader(const RuleSet& rules, const BundleOptions& options) : reader_(rules, options) {}

  NdjsonFacts Read(absl::string_view text, absl::Span<const uint64_t> line_numbers) {
    NdjsonFacts out;
    if (!ReadAll(text, line_numbers, /*quick=*/true, &out)) {
      groups_.clear();
      group_of_.clear();
      out = NdjsonFacts();
      ReadAll(text, line_numbers, /*quick=*/false, &out);
    }
    return out;
  }

 private:
  // False when a quick sort proved wrong (never when `quick` is false).
  bool ReadAll(absl::string_view text, absl::Span<const uint64_t> line_numbers, bool quick,
               NdjsonFacts* out) {
    text_end_ = text.data() + text.size();
    quick_ = quick;
    out_ = out;
    unlisted_line_errors_ = 0;
    ForEachLine(text, line_numbers, [this](const Line& line) { Sort(line); });
    if (unlisted_line_errors_ > 0) {
      out->line_errors.push_back(
          absl::StrCat("and ", unlisted_line_errors_, " more lines of no patient"));
    }
    out->patients.reserve(groups_.size());
    for (Group& group : groups_) {
      NdjsonPatient patient{std::string(), BundleFacts()};
      if (!group.error.ok()) {
        if (!ConfirmAll(group)) return false;
        patient.facts = group.error;
      } else if (group.patient.number == 0) {
        if (!ConfirmAll(group)) return false;
        patient.facts = absl::InvalidArgumentError(
            absl::StrCat("no Patient resource with id \"", group.id,
                         "\" (its Observations name it, e.g. ", group.first_observation, ")"));
      } else if (!ReadPatient(group, &patient.facts)) {
        return false;
      }
      patient.id = std::move(group.id);
      out->patients.push_back(std::move(patient));
    }
    return true;
  }

  Group& GroupOf(std::string_view id) {
    // An export lists a patient's Observations together.
    if (last_group_ < groups_.size() && groups_[last_group_].id == id) {
      return groups_[last_group_];
    }
    if (const auto it = group_of_.find(View(id)); it != group_of_.end()) {
      last_group_ = it->second;
      return groups_[it->second];
    }
    last_group_ = groups_.size();
    group_of_.emplace(std::string(id), groups_.size());
    groups_.push_back({std::string(id), {}, {}, "", absl::OkStatus()});
    return groups_.back();
  }

  static void Charge(Group& group, absl::Status error) {
    if (group.error.ok()) group.error = std::move(error);
  }

  // simdjson reads up to SIMDJSON_PADDING bytes past the end: the export's
  // next lines are there, except near its end, where the line is copied.
  simdjson::simdjson_result<dom::element> Parse(const Line& line, dom::document& document) {
    const bool padded = text_end_ - (line.text.data() + line.text.size()) >=
                        static_cast<std::ptrdiff_t>(simdjson::SIMDJSON_PADDING);
    return parser_.parse_into_document(document, line.text.data(), line.text.size(),
                                       /*realloc_if_needed=*/!padded);
  }

  // First pass: the group `line` belongs to, or a line error.
  void Sort(Line line) {
    QuickSorted sorted;
    if (quick_ && QuickSort(std::string_view(line.text.data(), line.text.size()), &sorted)) {
      line.quick_id = sorted.id;
      if (sorted.type == "Patient") {
        Group& group = GroupOf(sorted.id);
        // A second Patient of one id is refused as parsing says.
        if (group.patient.number == 0) {
          group.patient = line;
          return;
        }
      } else {
        Group& group = GroupOf(sorted.patient);
        if (group.observations.empty()) {
          group.first_observation = absl::StrCat("line ", line.number, " (Observation/",
                                                 View(sorted.id), ")");
        }
        group.observations.push_back(line);
        return;
      }
      line.quick_id = {};
    }
    SortParsed(line);
  }

  // Whether a line error is listed: a text of nothing but broken lines
  // must not cost a string per line.
  bool KeepLineError() {
    if (out_->line_errors.size() < kMaxLineErrors) return true;
    ++unlisted_line_errors_;
    return false;
  }

  void SortParsed(const Line& line) {
    Resource resource;
    resource.index = line.number;
    resource.ndjson_line = true;
    dom::element element;
    if (const auto error = Parse(line, scratch_).get(element); error != simdjson::SUCCESS) {
      if (KeepLineError()) {
        out_->line_errors.push_back(absl::StrCat("line ", line.number, ": not JSON: ",
                                                 simdjson::error_message(error)));
      }
      return;
    }
    std::string_view type;
    if (element.get_object().get(resource.object) != simdjson::SUCCESS ||
        resource.object["resourceType"].get_string().get(type) != simdjson::SUCCESS) {
      if (KeepLineError()) {
        out_->line_errors.push_back(absl::StrCat(
            "line ", line.number, ": must be an object with a string \"resourceType\""));
      }
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
        if (KeepLineError()) {
          out_->line_errors.push_back(std::string(
              Refuse(resource, "id", "is required (a Patient is found by its id)").message()));
        }
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
    std::string_view patient;
    if (!SubjectPatient(resource.object, &patient)) {
      if (KeepLineError()) {
        out_->line_errors.push_back(std::string(
            Refuse(resource, "subject.reference", "must be \"Patient/ID\" (whose result it is)")
                .message()));
      }
      return;
    }
    Group& group = GroupOf(patient);
    if (id.empty()) {
      Charge(group, Refuse(resource, "id",
                           "is required (answers name where each fact came from)"));
      return;
    }
    if (group.observations.empty()) group.first_observation = resource.Name();
    group.observations.push_back(line);
  }

  // The ID of an Observation's subject.reference "Patient/ID".
  static bool SubjectPatient(dom::object object, std::string_view* patient) {
    dom::object subject;
    std::string_view reference;
    if (object["subject"].get_object().get(subject) != simdjson::SUCCESS ||
        subject["reference"].get_string().get(reference) != simdjson::SUCCESS ||
        reference.substr(0, kPatientPrefix.size()) != kPatientPrefix ||
        reference.size() == kPatientPrefix.size()) {
      return false;
    }
    *patient = reference.substr(kPatientPrefix.size());
    return true;
  }

  // Whether parsing `line` sorts it where its quick sort did (to `group`,
  // as `type` `line.quick_id`); for a parsed line, that it is still a
  // resource with a string id. Fills `resource` from the parse.
  static bool Confirms(const Line& line, const Group& group, std::string_view type,
                       simdjson::simdjson_result<dom::element> parsed, Resource* resource) {
    dom::element element;
    std::string_view read_type, id;
    if (parsed.get(element) != simdjson::SUCCESS ||
        element.get_object().get(resource->object) != simdjson::SUCCESS ||
        resource->object["resourceType"].get_string().get(read_type) != simdjson::SUCCESS ||
        resource->object["id"].get_string().get(id) != simdjson::SUCCESS) {
      return false;
    }
    if (!line.quick_id.empty()) {
      std::string_view patient;
      if (read_type != type || id != line.quick_id ||
          (type == "Observation" && (!SubjectPatient(resource->object, &patient) ||
                                     patient != std::string_view(group.id)))) {
        return false;
      }
    }
    resource->type.assign(read_type.data(), read_type.size());
    resource->id.assign(id.data(), id.size());
    return true;
  }

  // The lines of a patient that is refused unread: each quick sort
  // confirmed.
  bool ConfirmAll(const Group& group) {
    Resource resource;
    if (group.patient.number != 0 && !group.patient.quick_id.empty() &&
        !Confirms(group.patient, group, "Patient", Parse(group.patient, scratch_), &resource)) {
      return false;
    }
    for (const Line& line : group.observations) {
      if (!line.quick_id.empty() &&
          !Confirms(line, group, "Observation", Parse(line, scratch_), &resource)) {
        return false;
      }
    }
    return true;
  }

  // Second pass: one patient's lines, each parsed into a document of its
  // own, through the selection rules. False when a quick sort proved wrong.
  bool ReadPatient(const Group& group, absl::StatusOr<BundleFacts>* facts) {
    const size_t count = 1 + group.observations.size();
    // Sized before any is parsed: elements point into their documents.
    if (documents_.size() < count) documents_.resize(count);
    if (resources_.size() < count) resources_.resize(count);
    observations_.clear();
    for (size_t i = 0; i < count; ++i) {
      const Line& line = i == 0 ? group.patient : group.observations[i - 1];
      Resource& resource = resources_[i];
      resource.index = line.number;
      resource.ndjson_line = true;
      if (!Confirms(line, group, i == 0 ? "Patient" : "Observation",
                    Parse(line, documents_[i]), &resource)) {
        if (!line.quick_id.empty()) return false;
        *facts = absl::InternalError("a line read in the first pass changed in the second");
        return true;
      }
      if (i > 0) observations_.push_back(&resource);
    }
    *facts = reader_.Read(resources_[0], "", observations_);
    return true;
  }

  PatientFactsReader reader_;
  const char* text_end_ = nullptr;
  bool quick_ = true;
  NdjsonFacts* out_ = nullptr;
  size_t unlisted_line_errors_ = 0;
  dom::parser parser_;
  // One per resource of the patient being read.
  std::vector<dom::document> documents_;
  dom::document scratch_;
  std::vector<Resource> resources_;
  std::vector<const Resource*> observations_;
  std::vector<Group> groups_;
  absl::flat_hash_map<std::string, size_t> group_of_;
  size_t last_group_ = 0;  // the group of the last line sorted
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
