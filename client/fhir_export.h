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

// One ScreenRequest's worth of the export: views of its lines (into the
// text they were cut from) and each line's number in the export.
struct ExportBatch {
  std::vector<absl::string_view> lines;
  std::vector<uint64_t> line_numbers;
  size_t bytes = 0;  // of its lines, with a '\n' each
  size_t patients = 0;

  // The lines as NDJSON (fhir_ndjson), into `out`'s reused capacity.
  void WriteNdjson(std::string* out) const;
};

struct ExportBatches {
  std::vector<ExportBatch> batches;
  size_t patients = 0;
};

// `text` (ReadNdjsonExport's, which must outlive the batches) cut into batches of up to `max_patients`
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
