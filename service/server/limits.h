// The service's request limits, and the check of one field's length.
#ifndef TRIALRULES_SERVICE_SERVER_LIMITS_H_
#define TRIALRULES_SERVICE_SERVER_LIMITS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace trialrules {

// Request limits; each refusal names the field and the value.
struct ServiceLimits {
  size_t max_facts = 1000;          // facts per request, columns per screen
  size_t max_name_length = 64;      // fact names, protocol ids, versions
  size_t max_reference_length = 128;  // subject_ref, site_id, dose_level
  size_t max_patients_per_message = 100000;
  // An EvaluateRequest's fhir_bundle_json: one patient's record is far
  // smaller, and the whole Bundle is parsed in memory (about 3x its size).
  size_t max_fhir_bundle_bytes = 4 << 20;
  // Per GradeEvents call: an unknown grade is refined over up to 1,024
  // completions (decision_table.cc): 0.3 ms for 840 of them, so a call
  // stays under about 40 ms.
  size_t max_observation_sets = 100;
  // Per EvaluateTrial call: patients, and events over all of them. A phase
  // 1 trial has tens of patients; 60 with 10 events each take under a
  // millisecond.
  size_t max_trial_patients = 2000;
  size_t max_trial_events = 20000;
  // Calls being handled at once (streams count while open); beyond it a
  // call is refused at once with RESOURCE_EXHAUSTED instead of queueing.
  int max_concurrent_calls = 1000;
  // A stream whose client set no deadline is ended (DEADLINE_EXCEEDED) at
  // its next message after this long.
  absl::Duration max_stream_duration = absl::Minutes(5);
  // The longest a unary call may work, whatever the caller's deadline
  // (decision calls finish in microseconds; checking a rule file may not).
  absl::Duration max_call_duration = absl::Seconds(30);
  // Threads that check rule files sent to ValidateRuleSet, apart from the
  // threads that answer decisions, and how many checks may wait for one.
  int validation_threads = 1;
  int validation_queue = 4;
};

// InvalidArgument naming `field`, its start and its length when `value` is
// longer than `limit`.
absl::Status CheckLength(absl::string_view field, absl::string_view value, size_t limit);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_SERVER_LIMITS_H_
