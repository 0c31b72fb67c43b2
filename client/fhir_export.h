// A FHIR Bulk Data export (NDJSON: Patient.ndjson, Observation.ndjson, ...)
// cut into messages of whole patients for ScreenPatients: a patient's
// Patient and Observations must travel in one message, and an export keeps
// them in different files. Only what places a line is read (resourceType,
// Patient.id, Observation.subject.reference); the server reads the rest.
#ifndef TRIALRULES_CLIENT_FHIR_EXPORT_H_
#define TRIALRULES_CLIENT_FHIR_EXPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trialrules {

// The export's text: a file, or every *.ndjson file of a directory in name
// order, one after the other (lines are numbered through them all). The
// string has simdjson's padding in its capacity.
absl::StatusOr<std::string> ReadNdjsonExport(const std::string& path);

struct ExportBatch {
  // The batch's lines, each ending in '\n', and each line's number in the
  // export (fhir_ndjson and fhir_line_numbers of one ScreenRequest).
  std::string ndjson;
  std::vector<uint64_t> line_numbers;
  size_t patients = 0;
};

struct ExportBatches {
  std::vector<ExportBatch> batches;
  size_t patients = 0;
};

// `text` (ReadNdjsonExport's) cut into batches of up to `max_patients`
// patients and about `max_bytes` bytes (a larger patient gets a batch of
// its own), patients in the order the export first names them. Lines
// whose patient cannot be told (not JSON, no resourceType, an Observation
// without a "Patient/ID" subject, a Patient without an id) go in the first
// batch, for the server to name. Resources other than Patient and
// Observation are left out.
ExportBatches BatchExportByPatient(const std::string& text, size_t max_patients,
                                   size_t max_bytes);

}  // namespace trialrules

#endif  // TRIALRULES_CLIENT_FHIR_EXPORT_H_
