// The audit records: for each kind of answer, the JSON text the audit log
// writes (and a replay writes again to compare), in the canonical form of
// RFC 8785 (members sorted, no whitespace, ECMAScript numbers), so that its
// bytes, and so its hash in the log's Merkle tree, depend on the decision
// alone. With `include_facts` a record also carries the canonical facts
// (patient data); by default only their SHA-256.
#ifndef TRIALRULES_SERVICE_AUDIT_RECORDS_H_
#define TRIALRULES_SERVICE_AUDIT_RECORDS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/engine/decision_table.h"
#include "service/engine/rule_set.h"
#include "service/util/dates.h"
#include "trialrules/v1/trial.pb.h"

namespace trialrules {

// One answered decision, as the audit log and metrics see it.
struct DecisionRecord {
  absl::string_view decision_id;
  absl::string_view method;  // e.g. "CheckEligibility"
  const RuleSet* rule_set = nullptr;
  DayNumber as_of = 0;  // the date the rule set was selected for
  absl::string_view subject_ref;
  absl::string_view site_id;
  absl::string_view dose_level;  // escalation decisions
  const Evaluation* evaluation = nullptr;
  const FactValues* facts = nullptr;
};

// One answered grading call, as the audit log sees it.
struct GradingRecord {
  absl::string_view decision_id;
  const DecisionTableSet* tables = nullptr;
  const DecisionTable* table = nullptr;
  absl::string_view subject_ref;
  absl::string_view site_id;
  absl::Span<const TableResult> results;  // one per observation set
};

// One answered trial evaluation (EvaluateTrial), as the audit log sees it.
struct TrialRecord {
  absl::string_view decision_id;
  const RuleSet* rule_set = nullptr;
  // The grading tables the evaluation used (their ids and SHA-256s are
  // recorded, so that a replay takes the same ones from the archive).
  absl::Span<const std::shared_ptr<const DecisionTableSet>> tables;
  absl::string_view site_id;
  const v1::TrialRecords* records = nullptr;
  const v1::TrialEvaluation* evaluation = nullptr;
};

// The record of one decision (CheckEligibility, CheckWithdrawal,
// EvaluateEscalation, EvaluateStopping).
std::string DecisionRecordJson(const DecisionRecord& record, bool include_facts);
// One record for a batch of bulk-screening decisions that share method,
// rule set, site and as-of date: those are written once, then per patient
// its decision id, subject, decision, outcomes (one letter per rule, T/F/U,
// in the order of "rule_ids") and facts hash. The same facts as one record
// per decision at a quarter of the bytes: bulk screening runs at hundreds
// of thousands of patients a second.
std::string BatchRecordJson(const std::vector<DecisionRecord>& records, bool include_facts);
// One record for a grading call: the table's id, version, hash and term,
// then per observation set its grade (or range), each row's outcome and the
// observations' hash (and, with `include_facts`, the observations).
std::string GradingRecordJson(const GradingRecord& record, bool include_facts);
// One record for a trial evaluation: the rule set and grading tables, the
// as-of date and the records' hash (and, with `include_facts`, the
// records), each patient's DLT and evaluability with its events' DLT
// criteria, the escalation and stopping decisions with each rule's outcome
// and the pending patients.
std::string TrialRecordJson(const TrialRecord& record, bool include_facts);
// The follow-up record of answers recorded but not delivered (the caller's
// deadline passed, it cancelled, the connection dropped).
std::string UndeliveredRecordJson(absl::Span<const std::string> decision_ids,
                                  absl::string_view reason);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_AUDIT_RECORDS_H_
