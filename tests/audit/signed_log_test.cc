// The signed audit log in-process: leaf indexes and hash chain, checkpoints,
// resuming the tree at open, rotation, torn tails, and what VerifyLog and
// the proofs make of the files.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "service/audit/audit_log.h"
#include "service/audit/checkpoint.h"
#include "service/audit/log_audit.h"
#include "service/audit/log_files.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

std::shared_ptr<const NoteSigner> TestSigner() {
  std::array<uint8_t, 32> seed{};
  for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<uint8_t>(i * 7 + 1);
  return std::make_shared<const NoteSigner>(*NoteSigner::FromSeed(seed, "trialrules.test/log"));
}

class SignedLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "signed_log_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ::mkdir(dir_.c_str(), 0700);
    signer_ = TestSigner();
    verifier_.emplace(*NoteVerifier::FromVerifierKey(signer_->VerifierKey()));
  }
  void TearDown() override { (void)std::system(("rm -rf '" + dir_ + "'").c_str()); }

  AuditLogOptions Options() const {
    AuditLogOptions options;
    options.path = dir_ + "/audit.jsonl";
    options.signer = signer_;
    options.origin = "trialrules.test/log";
    options.checkpoint_records = 4;
    return options;
  }
  static void Write(AuditLog& log, int count, const std::string& prefix) {
    for (int i = 0; i < count; ++i) {
      std::promise<absl::Status> written;
      log.Append(absl::StrCat("{\"decision_id\":\"", prefix, i, "\"}"),
                 [&](absl::Status status) { written.set_value(status); });
      ASSERT_TRUE(written.get_future().get().ok());
    }
  }
  LogVerification Verify(const std::string& log) const {
    absl::StatusOr<LogVerification> result = VerifyLog(log, log + ".checkpoints", *verifier_);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.value_or(LogVerification{});
  }
  static std::string Problems(const LogVerification& result) {
    std::string text;
    for (const LogProblem& problem : result.problems) absl::StrAppend(&text, problem.message, "\n");
    return text;
  }
  std::vector<std::string> Lines() const {
    return absl::StrSplit(testing::ReadFile(dir_ + "/audit.jsonl"), '\n', absl::SkipEmpty());
  }
  void Rewrite(const std::vector<std::string>& lines) const {
    std::ofstream out(dir_ + "/audit.jsonl", std::ios::binary | std::ios::trunc);
    for (const std::string& line : lines) out << line << "\n";
  }

  std::string dir_;
  std::shared_ptr<const NoteSigner> signer_;
  std::optional<NoteVerifier> verifier_;
};

TEST_F(SignedLogTest, LinesChainAndCheckpointsCoverEveryRecordAtClose) {
  {
    std::unique_ptr<AuditLog> log = *AuditLog::Open(Options());
    Write(*log, 10, "a");
    EXPECT_EQ(log->size(), 10u);
  }
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 10u);
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::StatusOr<LogEnvelope> envelope = ParseLogLine(lines[i]);
    ASSERT_TRUE(envelope.ok()) << envelope.status();
    EXPECT_EQ(envelope->leaf_index, i);
    EXPECT_EQ(envelope->prev_leaf_hash, i == 0 ? "" : HexOf(LeafHash(lines[i - 1])));
    EXPECT_EQ(envelope->record, absl::StrCat("{\"decision_id\":\"a", i, "\"}"));
  }
  const LogVerification result = Verify(dir_ + "/audit.jsonl");
  EXPECT_TRUE(result.problems.empty()) << Problems(result);
  EXPECT_EQ(result.records, 10u);
  EXPECT_EQ(result.checkpointed_size, 10u);
  EXPECT_GE(result.checkpoints, 3u);  // at 4, 8 and at close
}

TEST_F(SignedLogTest, ReopenedLogGoesOnWithTheSameTree) {
  { Write(**AuditLog::Open(Options()), 5, "a"); }
  {
    std::unique_ptr<AuditLog> log = *AuditLog::Open(Options());
    EXPECT_EQ(log->size(), 5u);
    Write(*log, 3, "b");
  }
  const LogVerification result = Verify(dir_ + "/audit.jsonl");
  EXPECT_TRUE(result.problems.empty()) << Problems(result);
  EXPECT_EQ(result.records, 8u);
}

TEST_F(SignedLogTest, AnAlteredLogIsRefusedAtOpenAndPinnedByVerify) {
  { Write(**AuditLog::Open(Options()), 6, "a"); }
  std::vector<std::string> lines = Lines();
  lines[2].replace(lines[2].find("\"a2\""), 4, "\"z2\"");
  Rewrite(lines);
  absl::StatusOr<std::unique_ptr<AuditLog>> reopened = AuditLog::Open(Options());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(reopened.status().message().find("does not follow leaf 2"), std::string::npos)
      << reopened.status();
  const LogVerification result = Verify(dir_ + "/audit.jsonl");
  EXPECT_NE(Problems(result).find("record 2 was altered"), std::string::npos) << Problems(result);
  ASSERT_FALSE(result.problems.empty());
  EXPECT_EQ(result.problems.front().index, std::optional<uint64_t>(3));
}

TEST_F(SignedLogTest, RotatedFilesKeepOneTree) {
  AuditLogOptions options = Options();
  options.max_file_bytes = 400;
  { Write(**AuditLog::Open(options), 12, "a"); }
  { Write(**AuditLog::Open(options), 4, "b"); }
  const std::vector<std::string> files = LogFiles(options.path);
  EXPECT_GE(files.size(), 3u);
  EXPECT_EQ(files.front(), RotatedLogPath(options.path, 0));
  const LogVerification result = Verify(options.path);
  EXPECT_TRUE(result.problems.empty()) << Problems(result);
  EXPECT_EQ(result.records, 16u);
  EXPECT_EQ(result.files, files.size());
}

TEST_F(SignedLogTest, ATornLineIsNamedByTheNextRecordAndVerifies) {
  { Write(**AuditLog::Open(Options()), 3, "a"); }
  { std::ofstream(dir_ + "/audit.jsonl", std::ios::app) << "{\"leaf_index\":3,\"prev_le"; }
  {
    std::unique_ptr<AuditLog> log = *AuditLog::Open(Options());
    EXPECT_EQ(log->torn_tails(), 1u);
    Write(*log, 2, "b");
  }
  const LogVerification result = Verify(dir_ + "/audit.jsonl");
  EXPECT_TRUE(result.problems.empty()) << Problems(result);
  EXPECT_EQ(result.torn_lines, 1u);
  EXPECT_EQ(result.records, 6u);  // 3, the torn_tail record, 2
}

TEST_F(SignedLogTest, ProofsOfRecordsCheckOutAgainstTheCheckpoint) {
  std::unique_ptr<AuditLog> log = *AuditLog::Open(Options());
  Write(*log, 7, "a");
  std::promise<absl::StatusOr<std::string>> note;
  log->CheckpointNow([&](absl::StatusOr<std::string> n) { note.set_value(std::move(n)); });
  ASSERT_TRUE(note.get_future().get().ok());
  const std::string path = dir_ + "/audit.jsonl";
  for (int i = 0; i < 7; ++i) {
    absl::StatusOr<DecisionProof> proof =
        ProveDecision(path, path + ".checkpoints", absl::StrCat("a", i));
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(proof->index, static_cast<uint64_t>(i));
    absl::StatusOr<DecisionProof> checked = CheckDecisionProof(proof->Text(), *verifier_);
    ASSERT_TRUE(checked.ok()) << checked.status();
    EXPECT_EQ(checked->line, proof->line);
  }
  EXPECT_EQ(ProveDecision(path, path + ".checkpoints", "nope").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace trialrules
