// The decision audit log: one JSON line per answered decision, written
// before the answer leaves (fail closed). An observer: it receives finished
// decisions and changes nothing.
#ifndef TRIALRULES_SERVICE_AUDIT_AUDIT_LOG_H_
#define TRIALRULES_SERVICE_AUDIT_AUDIT_LOG_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/engine/rule_set.h"

namespace trialrules {

// One answered decision, as the audit log and metrics see it.
struct DecisionRecord {
  std::string decision_id;
  absl::Time time;
  absl::string_view method;  // e.g. "CheckEligibility"
  const RuleSet* rule_set = nullptr;
  absl::string_view subject_ref;
  absl::string_view site_id;
  const Evaluation* evaluation = nullptr;
  const FactValues* facts = nullptr;
};

// Thread-safe. Lines are appended with one write(2) each, so concurrent
// records never interleave.
class AuditLog {
 public:
  // Opens (creating, appending) `path`. With `include_facts` each line also
  // carries the canonical facts; by default only their SHA-256, so that no
  // patient data reaches the log.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                        bool include_facts);
  ~AuditLog();

  // Writes one line per record. UNAVAILABLE when the log cannot be written:
  // the caller must then not answer.
  absl::Status Record(const std::vector<DecisionRecord>& records);

  // Writes one line for a batch of bulk-screening decisions that share
  // method, rule set, site and time: those are written once, then per
  // patient its decision id, subject, decision, outcomes (one letter per
  // rule, T/F/U, in the order of "rule_ids") and facts hash. The same facts
  // as one line per decision, at a quarter of the bytes: bulk screening runs
  // at hundreds of thousands of patients a second.
  absl::Status RecordBatch(const std::vector<DecisionRecord>& records);

  // Appends the JSON line for one record, with its newline. `time` is the
  // record's time, formatted (records of one batch share it).
  void AppendLine(const DecisionRecord& record, absl::string_view time,
                  std::string* out) const;

  // False after a failed write, until a write succeeds again.
  bool healthy() const { return healthy_.load(); }
  uint64_t failures() const { return failures_.load(); }
  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, int fd, bool include_facts);
  absl::Status Write(const std::string& bytes);

  const std::string path_;
  const bool include_facts_;
  std::mutex mutex_;
  int fd_;  // guarded by mutex_
  std::atomic<bool> healthy_{true};
  std::atomic<uint64_t> failures_{0};
};

// A decision id unique across processes: a random 64-bit process prefix and
// a counter, as 32 hex digits.
std::string NewDecisionId();

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_AUDIT_AUDIT_LOG_H_
