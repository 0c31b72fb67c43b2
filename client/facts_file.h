// The facts-file format shared by the CLI and its tests:
//   {"facts": {NAME: VALUE, ...}}
// VALUE is a number, true/false, an ISO date string "YYYY-MM-DD", or
// {"value": NUMBER, "unit": "UCUM code"}.
#ifndef TRIALRULES_CLIENT_FACTS_FILE_H_
#define TRIALRULES_CLIENT_FACTS_FILE_H_

#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include <google/protobuf/struct.pb.h>

#include "service/engine/compare.h"
#include "service/engine/rule_set.h"

namespace trialrules {

absl::StatusOr<std::vector<FactInput>> ParseFactsJson(absl::string_view json);

// An observations file (`trialrules grade`): {"observations": {NAME: VALUE}},
// values as in the facts file; a string is a date or a TEXT observation's word.
absl::StatusOr<std::vector<FactInput>> ParseObservationsJson(absl::string_view json);

// Many patients: {"patients": [{"subject_ref": "...", "facts": {...}}, ...]}.
absl::StatusOr<std::vector<PatientFacts>> ParsePatientsJson(absl::string_view json);

// The facts of one JSON object, as in the facts file.
absl::StatusOr<std::vector<FactInput>> FactsFromStruct(const google::protobuf::Struct& facts);

// The value of `assessment_date` if the facts carry one as a date string.
std::optional<std::string> AssessmentDate(const std::vector<FactInput>& facts);

}  // namespace trialrules

#endif  // TRIALRULES_CLIENT_FACTS_FILE_H_
