#include "service/audit/log_audit.h"

#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "service/audit/jcs.h"
#include "service/audit/log_files.h"
#include "service/util/file.h"
#include "service/util/sha256.h"

namespace trialrules {
namespace {

constexpr size_t kMaxProblems = 100;
constexpr absl::string_view kProofHeader = "c2sp.org/tlog-proof@v1";

class Verifier {
 public:
  explicit Verifier(LogVerification* result) : result_(*result) {}

  void Problem(std::optional<uint64_t> index, std::string where, std::string message) {
    if (result_.problems.size() < kMaxProblems) {
      result_.problems.push_back({index, std::move(where), std::move(message)});
    } else if (result_.problems.size() == kMaxProblems) {
      result_.problems.push_back({std::nullopt, "", "more problems follow; fix these first"});
    }
  }

  // The signed checkpoints, in file order; those that do not verify are
  // problems.
  void ReadCheckpoints(const std::string& path, const NoteVerifier& verifier) {
    absl::StatusOr<std::string> text = ReadFileBytes(path);
    if (!text.ok()) {
      Problem(std::nullopt, path, std::string(text.status().message()));
      return;
    }
    const std::vector<std::string> notes = SplitNotes(*text);
    uint64_t previous = 0;
    for (size_t k = 0; k < notes.size(); ++k) {
      const std::string where = absl::StrCat(path, ": checkpoint ", k + 1);
      absl::StatusOr<Checkpoint> checkpoint = verifier.Open(notes[k]);
      if (!checkpoint.ok()) {
        Problem(std::nullopt, where, std::string(checkpoint.status().message()));
        continue;
      }
      if (origin_.empty()) origin_ = checkpoint->origin;
      if (checkpoint->origin != origin_) {
        Problem(std::nullopt, where,
                absl::StrCat("is of log \"", checkpoint->origin, "\", the others of \"", origin_,
                             "\""));
        continue;
      }
      if (checkpoint->size < previous) {
        Problem(std::nullopt, where,
                absl::StrCat("tree size ", checkpoint->size, " is smaller than the ", previous,
                             " of the checkpoint before it: the log cannot shrink"));
      }
      previous = std::max(previous, checkpoint->size);
      auto [it, added] = roots_.emplace(checkpoint->size, std::make_pair(checkpoint->root, where));
      if (!added && it->second.first != checkpoint->root) {
        Problem(std::nullopt, where,
                absl::StrCat("tree size ", checkpoint->size, " has another root in ",
                             it->second.second, ": the log forked"));
      }
      ++result_.checkpoints;
      result_.checkpointed_size = std::max(result_.checkpointed_size, checkpoint->size);
    }
    if (notes.empty()) Problem(std::nullopt, path, "no checkpoint");
  }

  void Line(const LogLine& line) {
    if (line.file != file_) {
      file_ = line.file;
      ++result_.files;
    }
    const std::string where = absl::StrCat(*line.file, ":", line.line_number);
    absl::StatusOr<LogEnvelope> envelope = ParseLogLine(line.text);
    if (!line.ends_with_newline) {
      Flush();
      Leaf(line.text, where, nullptr);
      Problem(position_ - 1, where,
              absl::StrCat("record ", position_ - 1,
                           " is cut short: the file ends inside it (truncated)"));
      return;
    }
    if (!envelope.ok() || !envelope->indexed) {
      // Perhaps a torn write, which the next record then names.
      Flush();
      fragment_ = std::string(line.text);
      fragment_where_ = where;
      fragment_problem_ = envelope.ok() ? "has no leaf_index" : std::string(envelope.status().message());
      return;
    }
    if (fragment_.has_value()) {
      const std::string expected = absl::StrCat("{\"torn_tail\":{\"bytes\":", fragment_->size(),
                                                ",\"sha256\":\"", Sha256Hex(*fragment_), "\"}}");
      if (envelope->record == expected) {
        ++result_.torn_lines;
        fragment_.reset();
      } else {
        Flush();
      }
    }
    Leaf(line.text, where, &*envelope);
  }

  // A pending line that no torn_tail record accounts for: a leaf that is
  // not a record.
  void Flush() {
    if (!fragment_.has_value()) return;
    const std::string text = *std::move(fragment_);
    fragment_.reset();
    Leaf(text, fragment_where_, nullptr);
    Problem(position_ - 1, fragment_where_,
            absl::StrCat("record ", position_ - 1, " is not a record: ", fragment_problem_,
                         " (edited, or a line inserted)"));
  }

  void Leaf(absl::string_view text, const std::string& where, const LogEnvelope* envelope) {
    const uint64_t index = position_;
    if (envelope != nullptr) {
      if (!IsCanonicalJson(text)) {
        Problem(index, where,
                absl::StrCat("record ", index, " is not in canonical JSON (RFC 8785) form: "
                             "it was edited"));
      }
      const std::optional<uint64_t> expected =
          previous_index_.has_value() ? std::optional<uint64_t>(*previous_index_ + 1)
                                      : std::optional<uint64_t>(index == 0 ? 0 : index);
      if (envelope->leaf_index != *expected) {
        Problem(index, where,
                absl::StrCat("record ", index, " has leaf_index ", envelope->leaf_index,
                             " where ", *expected, " follows: records were deleted, inserted "
                             "or reordered"));
      }
      previous_index_ = envelope->leaf_index;
      const std::string previous_hash = index == 0 ? "" : HexOf(last_hash_);
      if (envelope->prev_leaf_hash != previous_hash) {
        Problem(index, where,
                index == 0 ? "record 0 names a previous leaf: records before it were removed"
                           : absl::StrCat("record ", index, "'s prev_leaf_hash is not the hash "
                                          "of record ", index - 1, ": record ", index - 1,
                                          " was altered, or records between them removed"));
      }
      if (envelope->time < last_time_) {
        Problem(index, where,
                absl::StrCat("record ", index, "'s time ", envelope->time,
                             " is before the time of the record before it (", last_time_, ")"));
      }
      last_time_ = std::string(envelope->time);
    } else {
      previous_index_.reset();
    }
    last_hash_ = LeafHash(text);
    tree_.Append(last_hash_);
    ++position_;
    result_.records = position_;
    const auto root = roots_.find(position_);
    if (root != roots_.end()) {
      if (tree_.Root() != root->second.first) {
        Problem(std::nullopt, root->second.second,
                absl::StrCat("the first ", position_, " records do not have this checkpoint's "
                             "root: a record in [", last_matched_, ", ", position_,
                             ") was altered, inserted or removed"));
      } else {
        last_matched_ = position_;
      }
    }
  }

  void Finish(const std::string& log_path) {
    Flush();
    for (const auto& [size, root] : roots_) {
      if (size > position_) {
        Problem(position_, root.second,
                absl::StrCat("covers ", size, " records but the log has ", position_,
                             ": records ", position_, " to ", size - 1,
                             " were removed (truncated or deleted)"));
      }
    }
    if (position_ > result_.checkpointed_size) {
      Problem(result_.checkpointed_size, log_path,
              absl::StrCat("records ", result_.checkpointed_size, " to ", position_ - 1,
                           " are in no signed checkpoint: appended after the last one, or "
                           "written by a server that stopped without one"));
    }
  }

 private:
  LogVerification& result_;
  std::string origin_;
  std::map<uint64_t, std::pair<Hash, std::string>> roots_;  // by tree size
  const std::string* file_ = nullptr;
  uint64_t position_ = 0;
  uint64_t last_matched_ = 0;
  std::optional<uint64_t> previous_index_;
  Hash last_hash_{};
  std::string last_time_;
  CompactTree tree_;
  std::optional<std::string> fragment_;
  std::string fragment_where_;
  std::string fragment_problem_;
};

// The checkpoints of a file, latest last, parsed but not verified (the
// server proving its own log; an auditor checks the proof's signature).
std::vector<std::pair<Checkpoint, std::string>> ReadCheckpointNotes(const std::string& path) {
  std::vector<std::pair<Checkpoint, std::string>> checkpoints;
  absl::StatusOr<std::string> text = ReadFileBytes(path);
  if (!text.ok()) return checkpoints;
  for (std::string& note : SplitNotes(*text)) {
    const size_t body_end = note.find("\n\n");
    if (body_end == std::string::npos) continue;
    absl::StatusOr<Checkpoint> checkpoint =
        ParseCheckpointBody(absl::string_view(note).substr(0, body_end + 1));
    if (checkpoint.ok()) checkpoints.emplace_back(*std::move(checkpoint), std::move(note));
  }
  return checkpoints;
}

std::string DecisionKey(absl::string_view decision_id) {
  return absl::StrCat("\"decision_id\":\"", decision_id, "\"");
}

}  // namespace

absl::StatusOr<LogVerification> VerifyLog(const std::string& log_path,
                                          const std::string& checkpoints_path,
                                          const NoteVerifier& verifier) {
  LogVerification result;
  Verifier check(&result);
  check.ReadCheckpoints(checkpoints_path, verifier);
  const absl::Status scanned = ForEachLogLine(log_path, [&](const LogLine& line) {
    check.Line(line);
    return absl::OkStatus();
  });
  if (!scanned.ok()) return scanned;
  check.Finish(log_path);
  return result;
}

std::string DecisionProof::Text() const {
  std::string text = absl::StrCat(kProofHeader, "\nextra ", absl::Base64Escape(line),
                                  "\nindex ", index, "\n");
  for (const Hash& hash : proof) {
    absl::StrAppend(&text,
                    absl::Base64Escape(absl::string_view(
                        reinterpret_cast<const char*>(hash.data()), hash.size())),
                    "\n");
  }
  absl::StrAppend(&text, "\n", checkpoint);
  return text;
}

absl::StatusOr<std::string> FindDecisionRecord(const std::string& log_path,
                                               absl::string_view decision_id) {
  const std::string key = DecisionKey(decision_id);
  std::optional<std::string> found;
  absl::Status scanned = ForEachLogLine(log_path, [&](const LogLine& line) -> absl::Status {
    if (line.text.find(key) == absl::string_view::npos) return absl::OkStatus();
    found = std::string(line.text);
    return absl::CancelledError();  // found: stop reading
  });
  if (!found.has_value()) {
    if (!scanned.ok() && !absl::IsCancelled(scanned)) return scanned;
    return absl::NotFoundError(
        absl::StrCat("no record of the audit log ", log_path, " names decision ", decision_id));
  }
  return *found;
}

absl::StatusOr<DecisionProof> ProveDecision(const std::string& log_path,
                                            const std::string& checkpoints_path,
                                            absl::string_view decision_id) {
  const std::string key = DecisionKey(decision_id);
  std::vector<Hash> leaves;
  DecisionProof proof;
  bool found = false;
  const absl::Status scanned = ForEachLogLine(log_path, [&](const LogLine& line) {
    if (!found && line.text.find(key) != absl::string_view::npos) {
      found = true;
      proof.index = leaves.size();
      proof.line = std::string(line.text);
    }
    leaves.push_back(LeafHash(line.text));
    return absl::OkStatus();
  });
  if (!scanned.ok()) return scanned;
  if (!found) {
    return absl::NotFoundError(
        absl::StrCat("no record of the audit log ", log_path, " names decision ", decision_id));
  }
  std::vector<std::pair<Checkpoint, std::string>> checkpoints =
      ReadCheckpointNotes(checkpoints_path);
  if (checkpoints.empty() || checkpoints.back().first.size <= proof.index) {
    return absl::FailedPreconditionError(absl::StrCat(
        "decision ", decision_id, " is record ", proof.index,
        ", which no checkpoint covers yet; ask again after the next checkpoint"));
  }
  const auto& [checkpoint, note] = checkpoints.back();
  if (checkpoint.size > leaves.size()) {
    return absl::DataLossError(absl::StrCat("the latest checkpoint covers ", checkpoint.size,
                                            " records but the log has ", leaves.size(),
                                            "; run trialrules audit verify"));
  }
  const MerkleTree tree(leaves);
  absl::StatusOr<std::vector<Hash>> path = tree.InclusionProof(proof.index, checkpoint.size);
  if (!path.ok()) return path.status();
  if (tree.Root(checkpoint.size).value_or(Hash{}) != checkpoint.root) {
    return absl::DataLossError(absl::StrCat(
        "the log's first ", checkpoint.size,
        " records do not have the latest checkpoint's root; run trialrules audit verify"));
  }
  proof.proof = *std::move(path);
  proof.checkpoint = note;
  proof.tree_size = checkpoint.size;
  return proof;
}

absl::StatusOr<DecisionProof> CheckDecisionProof(absl::string_view text,
                                                 const NoteVerifier& verifier) {
  const auto malformed = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("not a tlog-proof: ", what));
  };
  absl::string_view rest = text;
  if (!absl::ConsumePrefix(&rest, kProofHeader) || !absl::ConsumePrefix(&rest, "\n")) {
    return malformed(absl::StrCat("the first line is not ", kProofHeader));
  }
  const size_t blank = rest.find("\n\n");
  if (blank == absl::string_view::npos) return malformed("no empty line before the checkpoint");
  DecisionProof proof;
  proof.checkpoint = std::string(rest.substr(blank + 2));
  bool have_extra = false, have_index = false;
  for (absl::string_view line : absl::StrSplit(rest.substr(0, blank), '\n')) {
    if (absl::ConsumePrefix(&line, "extra ")) {
      if (!absl::Base64Unescape(line, &proof.line)) return malformed("extra is not base64");
      have_extra = true;
    } else if (absl::ConsumePrefix(&line, "index ")) {
      if (!absl::SimpleAtoi(line, &proof.index)) return malformed("index is not a number");
      have_index = true;
    } else {
      std::string bytes;
      if (!have_index || !absl::Base64Unescape(line, &bytes) || bytes.size() != 32) {
        return malformed(absl::StrCat("\"", line.substr(0, 60), "\" is not a proof hash"));
      }
      Hash hash;
      std::copy(bytes.begin(), bytes.end(), hash.begin());
      proof.proof.push_back(hash);
    }
  }
  if (!have_extra) return malformed("no extra line with the record");
  if (!have_index) return malformed("no index line");
  absl::StatusOr<Checkpoint> checkpoint = verifier.Open(proof.checkpoint);
  if (!checkpoint.ok()) return checkpoint.status();
  proof.tree_size = checkpoint->size;
  if (absl::Status s = VerifyInclusion(LeafHash(proof.line), proof.index, checkpoint->size,
                                       proof.proof, checkpoint->root);
      !s.ok()) {
    return absl::DataLossError(absl::StrCat("record ", proof.index,
                                            " is not in the checkpoint's tree: ", s.message()));
  }
  return proof;
}

}  // namespace trialrules
