// What an auditor does with a signed audit log, offline, with only its
// files and the log's public key: verify the whole log against its signed
// checkpoints, prove one decision's record into a checkpoint, and check
// such a proof on its own. The same functions serve GetDecisionProof.
#ifndef TRIALRULES_SERVICE_AUDIT_LOG_AUDIT_H_
#define TRIALRULES_SERVICE_AUDIT_LOG_AUDIT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/audit/checkpoint.h"
#include "service/audit/merkle.h"

namespace trialrules {

// One thing wrong with a log. `index` is the leaf index it is pinned to,
// when it can be (the position of the line in the log).
struct LogProblem {
  std::optional<uint64_t> index;
  std::string where;  // file:line, or the checkpoint
  std::string message;
};

struct LogVerification {
  uint64_t records = 0;             // leaves found
  uint64_t files = 0;
  uint64_t checkpoints = 0;         // signed notes that verified
  uint64_t checkpointed_size = 0;   // the largest
  uint64_t torn_lines = 0;          // cut-short lines accounted for by a torn_tail record
  std::vector<LogProblem> problems;  // empty: the log is intact
};

// Checks that every line of every file of the log is a canonical record
// with contiguous leaf indexes, each naming the previous leaf's hash, with
// times that never go backwards; that every checkpoint's signature
// verifies, that the checkpoints only grow, and that the tree of the
// records has each checkpoint's root at its size; and that every record is
// in a checkpoint. Errors only when the files cannot be read.
absl::StatusOr<LogVerification> VerifyLog(const std::string& log_path,
                                          const std::string& checkpoints_path,
                                          const NoteVerifier& verifier);

// A record of the log with its inclusion proof into a signed checkpoint,
// in the C2SP tlog-proof layout:
//   c2sp.org/tlog-proof@v1
//   extra <base64 of the record's line>
//   index <leaf index>
//   <base64 proof hashes, one per line>
//   <empty line>
//   <the checkpoint, a signed note>
struct DecisionProof {
  uint64_t index = 0;
  std::string line;  // the record's line (the leaf), without newline
  std::vector<Hash> proof;
  std::string checkpoint;  // the signed note
  uint64_t tree_size = 0;
  std::string Text() const;
};

// The proof of the record of `decision_id` (its own record, a screening
// batch naming it, or a follow-up naming it: the decision's first record)
// into the latest checkpoint of `checkpoints_path` that covers it. NOT_FOUND
// when no record names the decision; FAILED_PRECONDITION when no
// checkpoint covers it yet.
absl::StatusOr<DecisionProof> ProveDecision(const std::string& log_path,
                                            const std::string& checkpoints_path,
                                            absl::string_view decision_id);

// Parses a tlog-proof text and checks it: the checkpoint's signature, and
// the record's inclusion at its index in the checkpoint's tree. DATA_LOSS
// when they do not verify, INVALID_ARGUMENT for a malformed proof.
absl::StatusOr<DecisionProof> CheckDecisionProof(absl::string_view text,
                                                 const NoteVerifier& verifier);

// The line of the first record that names `decision_id` (as its decision,
// or within a screening batch), without newline.
absl::StatusOr<std::string> FindDecisionRecord(const std::string& log_path,
                                               absl::string_view decision_id);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_AUDIT_LOG_AUDIT_H_
