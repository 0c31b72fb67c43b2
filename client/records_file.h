// The trial-records file (`trialrules trial`): one trial's adverse-event
// records as JSON, the fields of v1::TrialRecords by their names:
//   {"protocol_id": ..., "as_of_date": "YYYY-MM-DD", "current_dose_level": ...,
//    "patients": [{"subject_ref", "dose_level", "infusion_date", "death_date",
//                  "death_treatment_related",
//                  "events": [{"term", "grade", "hematologic", "onset_date",
//                              "resolution_date", "attribution",
//                              "observations": {NAME: VALUE}}]}]}
// null is the same as leaving a field out; observations as in the
// observations file of `trialrules grade`.
#ifndef TRIALRULES_CLIENT_RECORDS_FILE_H_
#define TRIALRULES_CLIENT_RECORDS_FILE_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "trialrules/v1/trial.pb.h"

namespace trialrules {

// InvalidArgument names the patient, event and field of what it refuses:
// a key it does not know, a value of the wrong JSON type, a grade that is
// not a whole number.
absl::StatusOr<v1::TrialRecords> ParseTrialRecordsJson(absl::string_view json);

}  // namespace trialrules

#endif  // TRIALRULES_CLIENT_RECORDS_FILE_H_
