// The audit log's record text and its fail-closed writes, in-process.
#include "service/audit/audit_log.h"
#include "service/audit/canonical_facts.h"
#include "service/audit/jcs.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include <fstream>
#include <future>

#include "gtest/gtest.h"
#include "service/util/sha256.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

// Appends and waits until the log says how the write went (a synced log
// writes on its own thread).
absl::Status AppendAndWait(AuditLog& log, const std::string& lines) {
  std::promise<absl::Status> written;
  log.Append(lines, [&](absl::Status status) { written.set_value(status); });
  return written.get_future().get();
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rule_set_ = testing::LoadBundled("NCT04094766-v1.0.textproto");
    ASSERT_NE(rule_set_, nullptr);
    absl::StatusOr<FactValues> facts = rule_set_->BindFacts(
        {{"informed_consent", true, ""}, {"karnofsky", 80.0, ""}, {"weight_kg", 70.5, ""}});
    ASSERT_TRUE(facts.ok()) << facts.status();
    facts_ = *facts;
    rule_set_->Evaluate(EvaluationKind::kEligibility, facts_, &evaluation_);
    dir_ = ::testing::TempDir() + "audit_log_test_" + std::to_string(::getpid());
    ::mkdir(dir_.c_str(), 0700);
  }
  void TearDown() override {
    for (const char* name : {"/log", "/stdout"}) ::unlink((dir_ + name).c_str());
    ::rmdir(dir_.c_str());
  }
  DecisionRecord Record(absl::string_view id) const {
    return {id,          "CheckEligibility", rule_set_.get(), *ParseIsoDate("2020-01-15"),
            "SUBJECT-1", "SITE \"A\"",       "",               &evaluation_,
            &facts_};
  }
  // The value of "field":"..." in a record line.
  static std::string Field(const std::string& line, const std::string& field) {
    const std::string key = absl::StrCat("\"", field, "\":\"");
    const size_t start = line.find(key);
    if (start == std::string::npos) return "<absent>";
    const size_t value = start + key.size();
    return line.substr(value, line.find('"', value) - value);
  }

  std::shared_ptr<const RuleSet> rule_set_;
  FactValues facts_;
  Evaluation evaluation_;
  std::string dir_;
};

// The time is the writer's, cached per second: it must read as Abseil
// formats it, UTC with microseconds, and never go backwards.
TEST_F(AuditLogTest, LinesCarryTheirWriteTimeInUtcMicroseconds) {
  const std::string path = dir_ + "/log";
  std::unique_ptr<AuditLog> log = *AuditLog::Open(path, false);
  const absl::Time before = absl::Now();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(AppendAndWait(*log, log->FormatDecision(Record(absl::StrCat("id", i)))).ok());
  }
  const absl::Time after = absl::Now();
  std::ifstream in(path, std::ios::binary);
  std::string line, previous;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    const std::string text = Field(line, "time");
    absl::Time time;
    std::string error;
    ASSERT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%E6SZ", text, absl::UTCTimeZone(), &time, &error))
        << text << ": " << error;
    EXPECT_EQ(text, absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone()));
    EXPECT_GE(time, absl::FromUnixMicros(absl::ToUnixMicros(before)));
    EXPECT_LE(time, after);
    EXPECT_GE(text, previous);
    previous = text;
  }
  EXPECT_EQ(lines, 5);
}

TEST_F(AuditLogTest, RecordIsCanonicalJsonWithTheDecisionAndTheDigestOfTheCanonicalFacts) {
  std::unique_ptr<AuditLog> log = *AuditLog::Open(dir_ + "/log", false);
  const std::string record = log->FormatDecision(Record("0123"));
  EXPECT_TRUE(IsCanonicalJson(record)) << record;
  EXPECT_EQ(Field(record, "decision_id"), "0123");
  EXPECT_EQ(Field(record, "version"), "1.0");
  EXPECT_EQ(Field(record, "as_of_date"), "2020-01-15");
  EXPECT_EQ(Field(record, "facts_sha256"), Sha256Hex(CanonicalFacts(*rule_set_, facts_)));
  EXPECT_NE(record.find("\"site_id\":\"SITE \\\"A\\\"\""), std::string::npos) << record;
  EXPECT_EQ(record.find("\"facts\":"), std::string::npos);  // no patient data by default

  std::unique_ptr<AuditLog> with_facts = *AuditLog::Open(dir_ + "/log", true);
  const std::string full = with_facts->FormatDecision(Record("0123"));
  EXPECT_TRUE(IsCanonicalJson(full)) << full;
  EXPECT_NE(full.find(absl::StrCat("\"facts\":", CanonicalFacts(*rule_set_, facts_), ",")),
            std::string::npos) << full;
}

// A log whose last line was cut short (power loss, a full disk): the
// fragment stays as it is for the auditor, the next record starts on a new
// line, and the fragment is counted.
TEST_F(AuditLogTest, ATornLastLineIsKeptAndRecordsStartOnTheNextLine) {
  const std::string path = dir_ + "/log";
  const std::string complete = "{\"decision_id\":\"a\"}\n";
  const std::string fragment = "{\"decision_id\":\"b\",\"ti";
  std::ofstream(path, std::ios::binary) << complete << fragment;
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(path, false);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)->torn_tails(), 1u);
  const absl::Status written = AppendAndWait(**log, (*log)->FormatDecision(Record("c")));
  ASSERT_TRUE(written.ok()) << written;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line + "\n", complete);
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, fragment);
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(Field(line, "decision_id"), "c");
  EXPECT_FALSE(std::getline(in, line));

  // Opened again, the log ends with a whole line: nothing is torn.
  log->reset();
  absl::StatusOr<std::unique_ptr<AuditLog>> again = AuditLog::Open(path, false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->torn_tails(), 0u);
}

TEST(DecisionIdTest, ThirtyTwoHexDigitsUniqueWithOneProcessPrefix) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewDecisionId();
    ASSERT_EQ(id.size(), 32u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    ASSERT_EQ(id.substr(0, 16), ids.empty() ? id.substr(0, 16) : ids.begin()->substr(0, 16));
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

// A write cut short (here by a file-size limit, as a full disk would) is
// taken back whole and refused; later records follow the earlier ones with
// no hole, also on standard output redirected with `>` (no O_APPEND).
TEST_F(AuditLogTest, PartialWriteIsTakenBackWithoutAHoleOnAPlainStdout) {
  const std::string path = dir_ + "/stdout";
  const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(file, 0);
  const int saved_stdout = ::dup(STDOUT_FILENO);
  ::fflush(stdout);
  ASSERT_EQ(::dup2(file, STDOUT_FILENO), STDOUT_FILENO);
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open("-", false);
  ::dup2(saved_stdout, STDOUT_FILENO);
  ::close(saved_stdout);
  ::close(file);
  ASSERT_TRUE(log.ok()) << log.status();

  auto append = [&](const std::string& record) { return AppendAndWait(**log, record); };
  const std::string first = (*log)->FormatDecision(Record("first"));
  const std::string second = (*log)->FormatDecision(Record("second"));
  const std::string third = (*log)->FormatDecision(Record("third"));
  ASSERT_TRUE(append(first).ok());
  const std::string first_line = testing::ReadFile(path);

  // Past the limit a write fails with EFBIG instead of killing the process.
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGXFSZ, &ignore, &previous);
  struct rlimit limit {}, saved {};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  limit = saved;
  limit.rlim_cur = first_line.size() + second.size() / 2;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  const absl::Status refused = append(second);
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::sigaction(SIGXFSZ, &previous, nullptr);

  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_FALSE((*log)->healthy());
  EXPECT_EQ(testing::ReadFile(path), first_line);
  ASSERT_TRUE(append(third).ok());
  EXPECT_TRUE((*log)->healthy());
  const std::string both = testing::ReadFile(path);
  ASSERT_EQ(both.substr(0, first_line.size()), first_line);
  EXPECT_EQ(Field(both.substr(first_line.size()), "decision_id"), "third");
  EXPECT_EQ(std::count(both.begin(), both.end(), '\n'), 2);
}

}  // namespace
}  // namespace trialrules
