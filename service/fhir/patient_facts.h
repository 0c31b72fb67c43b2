// One patient's FHIR R4 resources to facts: the contract's selection rules
// (status, date, latest wins, issued tie-break, units, one source per
// fact), shared by a Bundle (bundle_facts.h) and bulk NDJSON (ndjson.h),
// which differ only in how they find a patient's resources. Internal to
// service/fhir: callers use those two.
#ifndef TRIALRULES_SERVICE_FHIR_PATIENT_FACTS_H_
#define TRIALRULES_SERVICE_FHIR_PATIENT_FACTS_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/engine/rule_set.h"
#include "service/fhir/bundle_facts.h"
#include "simdjson.h"

namespace trialrules {
namespace fhir_internal {

// A Patient or Observation, parsed; `object` lives as long as the parser
// that made it.
struct Resource {
  // Where it was read: a Bundle's entry index, or an NDJSON line (1-based).
  size_t index = 0;
  bool ndjson_line = false;
  std::string type;
  std::string id;
  simdjson::dom::object object;

  std::string Reference() const;
  // How refusals name it: its place in the input and what it is.
  std::string Name() const;
};

// InvalidArgument naming `resource`, then `field` and `text`.
absl::Status Refuse(const Resource& resource, absl::string_view field, absl::string_view text);

// A string member; none when absent, an error naming `path` when it is not
// a string.
absl::StatusOr<std::optional<std::string>> StringField(const Resource& resource,
                                                       simdjson::dom::object object,
                                                       absl::string_view path,
                                                       std::string_view key);

// One Observation (or Patient field) that may give a fact.
struct Candidate {
  const Resource* resource = nullptr;
  DayNumber date = 0;
  std::optional<absl::Time> issued;
  // None: the resource is selected but gives nothing (a coded value the
  // binding does not map).
  std::optional<FactValue> value;
  std::string unit;
};

// One way a fact may come from the record: a binding, the fact's
// urn:trialrules:fact code, or a binding's reference range.
struct Source {
  int fact = -1;
  absl::string_view how;  // for refusals: "http://loinc.org|2160-0", ...
  int binding = -1;
  std::vector<Candidate> candidates;
};

// Reads patients one after another for one rule set: the bindings are
// indexed once, in the constructor, and each Read starts afresh from them.
// Not copyable: sources name strings it holds.
class PatientFactsReader {
 public:
  PatientFactsReader(const RuleSet& rules, const BundleOptions& options);
  PatientFactsReader(const PatientFactsReader&) = delete;
  PatientFactsReader& operator=(const PatientFactsReader&) = delete;

  // The facts of `patient` from its own fields and `observations`, each of
  // whose subject (when it has one) must be `patient` (by reference, or by
  // `patient_full_url` when not empty).
  absl::StatusOr<BundleFacts> Read(const Resource& patient, absl::string_view patient_full_url,
                                   absl::Span<const Resource* const> observations);

 private:
  void DeclareSources();
  int FactSource(int fact);
  absl::Status ReadPatient(const Resource& patient);
  int CompletedYears(const std::string& birth) const;
  absl::Status CheckSubject(const Resource& observation);
  absl::Status ReadObservation(const Resource& observation);
  const std::string& FactName(int source) const;
  absl::StatusOr<std::optional<DayNumber>> DateOf(const Resource& observation);
  absl::StatusOr<bool> ValueOf(const Resource& observation, const Source& source,
                               Candidate* candidate);
  absl::StatusOr<const Candidate*> Winner(const Source& source) const;
  absl::StatusOr<Candidate> RangeHigh(const Candidate& selected, const Source& range) const;
  absl::StatusOr<BundleFacts> Select();

  const RuleSet& rules_;
  const BundleOptions options_;
  // From the bindings, once.
  std::deque<std::string> hows_;     // what sources' `how` name
  std::vector<Source> declared_;     // one per binding, and per reference range
  std::vector<int> binding_source_;  // per binding: its source
  std::vector<int> range_source_;    // per binding: its reference range's, or -1
  // system → code → binding; looked up with the document's string_views.
  std::map<std::string, std::map<std::string, int, std::less<>>, std::less<>> codes_;
  std::vector<bool> is_range_;  // per declared source: a reference range's
  std::vector<int> name_order_;  // per fact: its rank by name (answers are sorted by name)
  // Per patient.
  const Resource* patient_ = nullptr;
  std::string patient_full_url_;
  // declared_, then urn:trialrules:fact ones: the first source_count_
  // (the rest are kept for their storage).
  std::vector<Source> sources_;
  size_t source_count_ = 0;
  std::vector<int> fact_source_;  // per fact: its urn:trialrules:fact source, or -1
  std::set<std::string> ignored_;
  // Select's: the winners (and reference ranges) of facts, kept for their
  // storage.
  struct Given {
    int fact = -1;
    const Candidate* candidate = nullptr;  // a source's, or in highs_
    absl::string_view how;
  };
  std::vector<Given> given_;
  std::vector<Candidate> highs_;
};

}  // namespace fhir_internal
}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_FHIR_PATIENT_FACTS_H_
