// Facts of many patients from FHIR Bulk Data NDJSON (one resource per line,
// e.g. an export's Patient.ndjson and Observation.ndjson one after the
// other): Patients by id, Observations by `subject.reference`
// "Patient/ID", each patient read with the same selection rules as a
// Bundle (patient_facts.h). A patient whose resources are refused gets an
// error and the others go on. No gRPC, no files, no clock.
#ifndef TRIALRULES_SERVICE_FHIR_NDJSON_H_
#define TRIALRULES_SERVICE_FHIR_NDJSON_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/engine/rule_set.h"
#include "service/fhir/bundle_facts.h"

namespace trialrules {

struct NdjsonPatient {
  // The Patient's id (the ID of "Patient/ID").
  std::string id;
  // Its facts, or why its resources were refused (InvalidArgument naming
  // the line, the resource and the field).
  absl::StatusOr<BundleFacts> facts;
};

inline constexpr size_t kMaxLineErrors = 100;

struct NdjsonFacts {
  // One per patient, in the order the export first names each.
  std::vector<NdjsonPatient> patients;
  // Lines that belong to no patient and so cannot be charged to one:
  // malformed JSON, no resourceType, an Observation without a
  // "Patient/ID" subject. Each names its line (1-based); past
  // kMaxLineErrors, a last entry says how many more there were.
  std::vector<std::string> line_errors;
};

// The facts of every patient in `ndjson`, assessed as `options` say. Blank
// lines are skipped; resources other than Patient and Observation are
// ignored. Two Patients with one id, or Observations of a Patient the
// export does not have, are that patient's error. Beyond the text it
// holds where each line is (some 40 bytes a line) and the parse of one
// patient's lines at a time: callers split a large export by patients.
// Errors number the lines from 1, or, when `line_numbers` is not empty, by
// it: one number, at least 1, per line of `ndjson` (e.g. the lines'
// numbers in the export a caller split).
NdjsonFacts FactsFromNdjson(absl::string_view ndjson, const RuleSet& rules,
                            const BundleOptions& options,
                            absl::Span<const uint64_t> line_numbers = {});

// How many lines `ndjson` has (a last line without '\n' counts).
size_t CountNdjsonLines(absl::string_view ndjson);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_FHIR_NDJSON_H_
