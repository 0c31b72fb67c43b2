// Answers from a trial's adverse-event records: each event graded (by the
// protocol's grading tables when the record gives no grade) and judged
// against the protocol's DLT definition, each patient's DLT and
// evaluability, per-dose counts, then the escalation design (the rule
// file's 3+3 rules or BOIN) and the stopping rules decided over every way
// the events still pending adjudication could resolve.
//
// Everything is three-valued: an ongoing event that has not yet lasted long
// enough, an unadjudicated attribution or an ungraded observation leaves an
// event's DLT UNKNOWN, never FALSE. A decision is given when every
// resolution of the unknowns agrees; otherwise it is INDETERMINATE and the
// answer lists what each resolution would decide.
#ifndef TRIALRULES_SERVICE_ENGINE_TRIAL_H_
#define TRIALRULES_SERVICE_ENGINE_TRIAL_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "service/engine/decision_table.h"
#include "service/engine/rule_set.h"
#include "trialrules/v1/rule_file.pb.h"
#include "trialrules/v1/trial.pb.h"

namespace trialrules {

// At most this many unknowns are listed resolution by resolution (2^16).
// Beyond, the decisions are still taken over every count the unknowns could
// give (which is what the rules read), without the list; only when even
// those are too many does a count with unknown members stay missing.
inline constexpr int kMaxEnumeratedUnknowns = 16;

// The patients per dose a BOIN design may ask for before it stops.
inline constexpr int kMaxBoinEarlyStop = 1000;

// When `design` has parameters BOIN accepts: the SHA-256 (hex) of its
// parameters and boundary table for n = 1 to max(12, n_earlystop), which
// the rule version carries. Else InvalidArgument naming the parameter and
// its value.
absl::StatusOr<std::string> BoinDesignSha256(const v1::BoinDesign& design);

// Evaluates `records` under `rules` (the version in force on their
// as_of_date, chosen by the caller), grading ungraded events with `tables`
// (the grading tables the rule set names, as loaded). InvalidArgument names
// the patient and field of a record refused (nothing is answered then);
// FailedPrecondition when the rule set has no DLT definition or a grading
// table it needs is not loaded.
absl::StatusOr<v1::TrialEvaluation> EvaluateTrial(
    const RuleSet& rules, absl::Span<const std::shared_ptr<const DecisionTableSet>> tables,
    const v1::TrialRecords& records);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_TRIAL_H_
