// The decision audit log: one JSON line per answered decision, written
// before the answer leaves (fail closed). An observer: it receives finished
// decisions and changes nothing.
#ifndef TRIALRULES_SERVICE_AUDIT_AUDIT_LOG_H_
#define TRIALRULES_SERVICE_AUDIT_AUDIT_LOG_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "service/engine/decision_table.h"
#include "service/engine/rule_set.h"
#include "trialrules/v1/trial.pb.h"

namespace trialrules {

// One answered decision, as the audit log and metrics see it.
struct DecisionRecord {
  absl::string_view decision_id;
  absl::Time time;
  absl::string_view method;  // e.g. "CheckEligibility"
  const RuleSet* rule_set = nullptr;
  absl::string_view subject_ref;
  absl::string_view site_id;
  const Evaluation* evaluation = nullptr;
  const FactValues* facts = nullptr;
};


// One answered grading call, as the audit log sees it.
struct GradingRecord {
  absl::string_view decision_id;
  absl::Time time;
  const DecisionTableSet* tables = nullptr;
  const DecisionTable* table = nullptr;
  absl::string_view subject_ref;
  absl::string_view site_id;
  absl::Span<const TableResult> results;  // one per observation set
};

// One answered trial evaluation (EvaluateTrial), as the audit log sees it.
struct TrialRecord {
  absl::string_view decision_id;
  absl::Time time;
  const RuleSet* rule_set = nullptr;
  absl::string_view site_id;
  const v1::TrialRecords* records = nullptr;
  const v1::TrialEvaluation* evaluation = nullptr;
};

// Thread-safe. Group commit: records queued while a batch is being written
// go together into the next write(2). An answer is sent only once its
// record is written (and, for a regular file, synced), and a gRPC handler
// never waits for another's write:
//  - a regular file is written and fdatasync'ed by the log's own writer
//    thread, which then tells each caller how its write went: a sync takes
//    a disk's time, during which the handlers' threads go on deciding;
//  - a pipe (which cannot be synced) is written by the caller that finds
//    no write in progress, with what others queued meanwhile: a lone call
//    pays no thread hand-off.
class AuditLog {
 public:
  using Done = std::function<void(absl::Status)>;

  // Opens (creating, appending) `path`, or takes standard output for "-".
  // A regular file whose last line was cut short (a power loss, a full disk
  // outside the server's control) keeps that fragment as it is for the
  // auditor; the first record starts on a new line, and the fragment is
  // logged and counted (torn_tails()).
  // With `include_facts` each line also
  // carries the canonical facts; by default only their SHA-256, so that no
  // patient data reaches the log.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                        bool include_facts);
  ~AuditLog();

  // One line per record.
  std::string FormatLines(const std::vector<DecisionRecord>& records) const;
  // One line for a batch of bulk-screening decisions that share method, rule
  // set, site and time: those are written once, then per patient its
  // decision id, subject, decision, outcomes (one letter per rule, T/F/U, in
  // the order of "rule_ids") and facts hash. The same facts as one line per
  // decision at a quarter of the bytes: bulk screening runs at hundreds of
  // thousands of patients a second.
  std::string FormatBatch(const std::vector<DecisionRecord>& records) const;

  // One line for a grading call: the table's id, version, hash and term,
  // then per observation set its grade (or range), each row's outcome and
  // the observations' hash (and, with `include_facts`, the observations).
  std::string FormatGrading(const GradingRecord& record) const;

  // One line for a trial evaluation: the rule set, the as-of date and the
  // records' hash (and, with `include_facts`, the records), each patient's
  // DLT and evaluability with its events' DLT criteria, the escalation and
  // stopping decisions with each rule's outcome and the pending patients.
  std::string FormatTrial(const TrialRecord& record) const;

  // Writes `lines` (now, or with the write in progress) and then calls
  // `done`, on this thread or the writing one: OK, or UNAVAILABLE when they
  // could not be written, in which case the caller must not answer.
  void Append(std::string lines, Done done);

  // False after a failed write, until a write succeeds again or Probe()
  // finds the space that was missing.
  bool healthy() const { return healthy_.load(); }
  // While unhealthy because the disk was full, checks the free space and,
  // once there is some again, lets decisions be tried again (a replica
  // marked not ready receives no calls that could prove the disk writable).
  void Probe();
  uint64_t failures() const { return failures_.load(); }
  // 1 when the log's last line was found cut short at open (and kept).
  uint64_t torn_tails() const { return torn_tails_; }
  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, int fd, bool include_facts, bool sync, uint64_t torn_tails);
  void AppendLine(const DecisionRecord& record, std::string* out) const;
  // ,"facts_sha256":"…" (and with include_facts_, ,"facts":{…}).
  void AppendFactsFields(const DecisionRecord& record, std::string* out) const;
  void AppendFactsFields(const RuleSet& rule_set, const FactValues& facts,
                         std::string* out) const;
  absl::Status Write(const std::string& bytes);
  // A failed write or sync: counted, logged when health turns, and the
  // UNAVAILABLE the waiting calls get.
  absl::Status Failed(absl::string_view step, int error);

  const std::string path_;
  const bool include_facts_;
  const int fd_;
  // A regular file is synced (fdatasync) after each batch: an answer leaves
  // only once its record would survive a power loss. A pipe cannot be.
  const bool sync_;
  const uint64_t torn_tails_;
  std::atomic<bool> healthy_{true};
  std::atomic<int> last_errno_{0};
  std::atomic<uint64_t> failures_{0};

  // Writes what is queued until nothing is; called with `lock` held.
  void WriteQueued(std::unique_lock<std::mutex>& lock);
  void WriterLoop();

  std::mutex mutex_;
  std::condition_variable queued_;
  std::string queued_bytes_;      // guarded by mutex_
  std::vector<Done> queued_done_;  // guarded by mutex_
  bool writing_ = false;           // guarded by mutex_
  bool closing_ = false;           // guarded by mutex_
  std::thread writer_;             // synced logs only
};

// A decision id unique across processes: a random 64-bit process prefix and
// a counter, as 32 hex digits.
std::string NewDecisionId();

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_AUDIT_AUDIT_LOG_H_
