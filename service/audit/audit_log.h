// The decision audit log: one JSON line per answered decision, written
// before the answer leaves (fail closed), and with a signing key a
// tamper-evident one (docs/audit.md). An observer: it receives finished
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
#include "service/audit/checkpoint.h"
#include "service/audit/merkle.h"
#include "service/audit/records.h"
#include "service/engine/decision_table.h"
#include "service/engine/rule_set.h"
#include "service/util/dates.h"
#include "trialrules/v1/trial.pb.h"

namespace trialrules {

// Where the log goes and, with a signing key, how it is made provable.
struct AuditLogOptions {
  // A file (created, appended) or "-" for standard output.
  std::string path = "trialrules-audit.jsonl";
  // Each record also carries the canonical facts (patient data); by default
  // only their SHA-256.
  bool include_facts = false;
  // With a signer the log is an RFC 6962 Merkle tree: each line carries its
  // leaf index and the previous line's leaf hash, and signed checkpoints of
  // the tree are appended to `checkpoints_path`. Without one, lines carry
  // only the record and its time: the log cannot prove itself complete.
  std::shared_ptr<const NoteSigner> signer;
  // The log's name in its checkpoints (and the key's name), e.g.
  // "trialrules.example/trialrules-0": one per replica.
  std::string origin = "trialrules/audit";
  // Empty: `path` + ".checkpoints" (required when `path` is "-").
  std::string checkpoints_path;
  // A checkpoint after this many records, after this long with records not
  // yet checkpointed, and at close.
  uint64_t checkpoint_records = 1000;
  absl::Duration checkpoint_interval = absl::Seconds(10);
  // A file that reaches this size is renamed RotatedLogPath(path, its first
  // leaf index) and a new one started; the tree goes on across files.
  // 0: never.
  uint64_t max_file_bytes = 0;
};

// Thread-safe. Each record is one line, written by the log's own writer
// thread (or, for an unsigned pipe, by the caller that finds no write in
// progress) in the order the log receives them; the writer gives each its
// time (never earlier than the line before) and, when signed, its leaf index
// and the previous leaf's hash. Group commit: records queued while a batch
// is being written go together into the next write(2), and a regular file
// is fdatasync'ed before any caller hears that its record is written, so an
// answer leaves only once its record would survive a power loss.
class AuditLog {
 public:
  using Done = std::function<void(absl::Status)>;

  // Opens (creating, appending) the log. A regular file whose last line was
  // cut short (a power loss, a full disk outside the server's control)
  // keeps that fragment as it is for the auditor; the first record starts
  // on a new line, and the fragment is logged and counted (torn_tails())
  // and, when signed, named by a "torn_tail" record (its length and hash).
  // A signed log resumes its tree from every file of the log and refuses to
  // open (FAILED_PRECONDITION) when the files do not chain or do not match
  // the last checkpoint: run `trialrules audit verify` on them.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(AuditLogOptions options);
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                        bool include_facts);
  // Writes what is queued and, when signed, a last checkpoint.
  ~AuditLog();

  // The records this log writes (records.h), with its include_facts.
  std::string FormatDecision(const DecisionRecord& record) const {
    return DecisionRecordJson(record, options_.include_facts);
  }
  std::string FormatBatch(const std::vector<DecisionRecord>& records) const {
    return BatchRecordJson(records, options_.include_facts);
  }
  std::string FormatGrading(const GradingRecord& record) const {
    return GradingRecordJson(record, options_.include_facts);
  }
  std::string FormatTrial(const TrialRecord& record) const {
    return TrialRecordJson(record, options_.include_facts);
  }
  static std::string FormatUndelivered(absl::Span<const std::string> decision_ids,
                                       absl::string_view reason) {
    return UndeliveredRecordJson(decision_ids, reason);
  }

  // Writes `record` (a Format* result) as the next line and then calls
  // `done`, on this thread or the writing one: OK, or UNAVAILABLE when it
  // could not be written, in which case the caller must not answer.
  void Append(std::string record, Done done);

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
  // Records written (the tree's size when signed), across every file.
  uint64_t size() const { return size_.load(); }
  // The tree size of the last checkpoint written; 0 before the first.
  uint64_t checkpointed_size() const { return checkpointed_size_.load(); }
  bool signed_log() const { return options_.signer != nullptr; }
  const std::string& path() const { return options_.path; }
  const std::string& checkpoints_path() const { return options_.checkpoints_path; }
  const AuditLogOptions& options() const { return options_; }

  // Signs a checkpoint of every record written so far (when any is not yet
  // in one) and then calls `done` with the signed note, on the writer's
  // thread. FAILED_PRECONDITION for a log without a signer.
  void CheckpointNow(std::function<void(absl::StatusOr<std::string>)> done);

 private:
  struct TreeState {
    uint64_t size = 0;
    CompactTree tree;
    Hash last_leaf_hash{};
    int64_t last_micros = 0;  // time of the last line
    uint64_t checkpointed_size = 0;  // of the last checkpoint found
  };
  AuditLog(AuditLogOptions options, int fd, bool sync, uint64_t torn_tails, TreeState state,
           uint64_t file_first_index, std::string first_record);
  // Resumes the tree (signed) or the count (unsigned) from the log's files.
  static absl::StatusOr<TreeState> Resume(const AuditLogOptions& options,
                                          uint64_t* file_first_index);

  // The lines of `records`, advancing `state`.
  std::string Seal(const std::vector<std::string>& records, TreeState* state) const;
  absl::Status Write(const std::string& bytes);
  // After a successful write: rotation, and a checkpoint when one is due.
  void AfterWrite(uint64_t records);
  absl::Status RotateFile();
  absl::StatusOr<std::string> WriteCheckpoint();
  // A failed write or sync: counted, logged when health turns, and the
  // UNAVAILABLE the waiting calls get.
  absl::Status Failed(absl::string_view step, int error);

  const AuditLogOptions options_;
  int fd_;  // replaced at rotation, by the writer only
  // A regular file is synced (fdatasync) after each batch. A pipe cannot be.
  const bool sync_;
  const uint64_t torn_tails_;
  std::atomic<bool> healthy_{true};
  std::atomic<int> last_errno_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> size_{0};
  std::atomic<uint64_t> checkpointed_size_{0};

  // Written by one writer at a time (writing_).
  TreeState state_;
  uint64_t file_first_index_ = 0;
  uint64_t file_bytes_ = 0;
  uint64_t unchecked_records_ = 0;  // written since the last checkpoint
  absl::Time last_checkpoint_ = absl::Now();
  std::string last_note_;

  // Writes what is queued until nothing is; called with `lock` held.
  void WriteQueued(std::unique_lock<std::mutex>& lock);
  void WriterLoop();

  std::mutex mutex_;
  std::condition_variable queued_;
  std::vector<std::string> queued_records_;  // guarded by mutex_
  std::vector<Done> queued_done_;            // guarded by mutex_
  std::vector<std::function<void(absl::StatusOr<std::string>)>>
      checkpoint_waiters_;                   // guarded by mutex_
  bool writing_ = false;                     // guarded by mutex_
  bool closing_ = false;                     // guarded by mutex_
  std::thread writer_;                       // synced or signed logs only
};

// The name a log file takes when the file is rotated: `path` and the leaf
// index of its first record in 20 digits, so that names sort as the tree.
std::string RotatedLogPath(const std::string& path, uint64_t first_index);

// A decision id unique across processes: a random 64-bit process prefix and
// a counter, as 32 hex digits.
std::string NewDecisionId();

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_AUDIT_AUDIT_LOG_H_
