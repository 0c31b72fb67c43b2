// Facts from one patient's FHIR R4 Bundle (JSON), through the bindings of a
// rule file (fhir_bindings, docs/rule-files.md#facts-from-fhir): which
// resources count, which one wins, and where each fact came from. The facts
// come out as a caller would type them (numbers with their UCUM unit), so
// that RuleSet::BindFacts checks ranges and converts units as for any caller.
// No gRPC, no files, no clock.
#ifndef TRIALRULES_SERVICE_FHIR_BUNDLE_FACTS_H_
#define TRIALRULES_SERVICE_FHIR_BUNDLE_FACTS_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/engine/rule_set.h"
#include "service/util/dates.h"

namespace trialrules {

// A Bundle larger than this, or with more entries, is refused unread: one
// patient's record is far smaller, and the parse holds all of it in memory.
inline constexpr size_t kMaxBundleBytes = 16 << 20;
inline constexpr size_t kMaxBundleEntries = 20000;

// The code system of Observations that give a fact by its name.
inline constexpr absl::string_view kFactCodeSystem = "urn:trialrules:fact";

struct BundleOptions {
  // The day the facts are assessed for: later Observations do not count,
  // and max_age_days counts back from it; ages are taken on it.
  DayNumber assessment_date = 0;
  // As for typed facts: an urn:trialrules:fact Observation naming a fact
  // the protocol does not have is listed in `ignored_unknown` instead of
  // refusing the Bundle.
  bool ignore_unknown_facts = false;
};

struct BundleFacts {
  // One per fact the Bundle gives, sorted by name.
  std::vector<FactInput> facts;
  // Per fact, in the same order: the resource it came from, as
  // "Observation/ID" or "Patient/ID".
  std::vector<std::pair<std::string, std::string>> provenance;
  // Fact names of urn:trialrules:fact Observations the protocol does not
  // have (ignore_unknown_facts only), sorted, unique.
  std::vector<std::string> ignored_unknown;
};

// The facts `bundle_json` gives for `rules`. A Bundle that is malformed, too
// large, has other than one Patient, has an Observation of another patient,
// gives a fact two ways, or whose selected resources disagree or carry a
// unit the fact does not take is InvalidArgument, naming the entry (index,
// type/id) and the field.
absl::StatusOr<BundleFacts> FactsFromBundle(absl::string_view bundle_json,
                                            const RuleSet& rules,
                                            const BundleOptions& options);

// The fact every rule set may declare for the day a patient is assessed.
inline constexpr absl::string_view kAssessmentDateFact = "assessment_date";

// Binds `fhir`'s facts into `facts` as RuleSet::BindFact does (ranges,
// units), each refusal naming the resource the fact came from; then, when
// `bind_assessment_date` and `rules` declare it, the assessment_date fact:
// the facts were selected for that day, so the rules see it too. A
// resource giving assessment_date itself is refused (a fact has one
// source).
absl::Status BindFhirFacts(const BundleFacts& fhir, const RuleSet& rules,
                           DayNumber assessment_date, bool bind_assessment_date,
                           FactValues* facts);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_FHIR_BUNDLE_FACTS_H_
