// Faults and misbehaving clients against the real server: overload, a
// stream left open without a deadline, a cancelled stream, idle and stalled
// connections on the gRPC port, a full audit-log disk that comes back, rule
// files that are slow to check, request bytes that do not parse, and
// shutdown while work is stuck.
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <fstream>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <sys/stat.h>

#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/integration/requests.h"
#include "tests/integration/server_process.h"
#include "tests/slow_rule_file.h"

namespace trialrules {
namespace {

using testing::EligiblePatient;
using testing::HandledSeries;
using testing::Sample;
using testing::WaitForSample;
using testing::ServerProcess;

constexpr int kServing = grpc::health::v1::HealthCheckResponse::SERVING;
constexpr int kNotServing = grpc::health::v1::HealthCheckResponse::NOT_SERVING;

v1::ScreenRequest ScreenHeader() {
  v1::ScreenRequest request;
  request.mutable_header()->set_protocol_id("NCT04094766");
  request.mutable_header()->add_fact_names("informed_consent");
  return request;
}

TEST(FaultsTest, OverloadIsRefusedAtOnceAndTheSlotComesBack) {
  ServerProcess server({"--max-concurrent-calls=1"});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  {
    // An open stream holds the only slot.
    grpc::ClientContext context;
    auto stream = client.stub()->ScreenPatients(&context);
    ASSERT_TRUE(stream->Write(ScreenHeader()));
    v1::ScreenResponse response;
    ASSERT_TRUE(stream->Read(&response));
    const auto refused = client.Evaluate(EvaluationKind::kEligibility, EligiblePatient());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(refused.status().message(),
              "overloaded: 1 calls in flight already; retry with backoff");
    // The client walks away without finishing: the server must let go.
    context.TryCancel();
  }
  absl::StatusCode code = absl::StatusCode::kUnknown;
  for (int i = 0; i < 100 && code != absl::StatusCode::kOk; ++i) {
    code = client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).status().code();
    if (code != absl::StatusCode::kOk) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(code, absl::StatusCode::kOk);
}

TEST(FaultsTest, OversizedMessageIsRefusedBeforeItIsRead) {
  ServerProcess server({"--max-message-bytes=4096"});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  v1::EvaluateRequest request = EligiblePatient();
  request.set_subject_ref(std::string(8000, 'x'));
  const auto refused = client.Evaluate(EvaluationKind::kEligibility, request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_TRUE(client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok());
  EXPECT_EQ(server.AuditLog().find("xxxx"), std::string::npos);
}

TEST(FaultsTest, StreamWithoutDeadlineIsEndedAfterTheServersLimit) {
  ServerProcess server({"--max-stream-seconds=1"});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  grpc::ClientContext context;  // no deadline
  auto stream = client.stub()->ScreenPatients(&context);
  ASSERT_TRUE(stream->Write(ScreenHeader()));
  v1::ScreenResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  v1::ScreenRequest batch;
  batch.add_patients()->add_values()->set_boolean(true);
  stream->Write(batch);
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_NE(status.error_message().find("has no deadline and has been open longer than 1s"),
            std::string::npos)
      << status.error_message();
}

TEST(FaultsTest, IdleAndStalledConnectionsDoNotStopTheGrpcPort) {
  ServerProcess server;
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  std::vector<int> connections;
  for (int i = 0; i < 200; ++i) {
    const int fd = testing::ConnectLoopback(server.port());
    ASSERT_GE(fd, 0);
    // Some idle; some stalled inside the HTTP/2 preface; some after it.
    if (i % 3 == 1) {
      ASSERT_GT(::send(fd, "PRI * HTTP/2.0\r\n", 16, MSG_NOSIGNAL), 0);
    }
    if (i % 3 == 2) {
      ASSERT_GT(::send(fd, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24, MSG_NOSIGNAL), 0);
    }
    connections.push_back(fd);
  }
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok());
  }
  EXPECT_FALSE(server.Scrape().empty());
  for (int fd : connections) ::close(fd);
}

// A 4 MiB tmpfs for the audit log (root only: mount(2)).
class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
    dir_ = std::filesystem::temp_directory_path() /
           ("trialrules-fulldisk-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    ASSERT_EQ(::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=4m"), 0) << strerror(errno);
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  // Fills the file system to the last byte.
  void Fill() {
    std::ofstream filler(dir_ / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    while (filler.write(block.data(), block.size())) {
    }
  }
  std::filesystem::path dir_;
  bool mounted_ = false;
};

TEST_F(FullDiskTest, FailsClosedThenRecoversOnItsOwnWithNoTornRecord) {
  const std::string audit = (dir_ / "audit.jsonl").string();
  ServerProcess server({"--audit-log=" + audit});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  ASSERT_TRUE(client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok());

  Fill();
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    const auto response = client.Evaluate(EvaluationKind::kEligibility, EligiblePatient());
    if (!response.ok()) {
      EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_TRUE(server.WaitForHealth(kNotServing));

  // Space returns: health comes back by itself, with no call to prove it.
  std::filesystem::remove(dir_ / "filler");
  EXPECT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  EXPECT_TRUE(client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok());
  EXPECT_NE(server.Stderr().find("space available again"), std::string::npos);

  // Every answered decision has its whole line, and no torn line is left.
  const std::string text = testing::ReadText(audit);
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++lines;
    EXPECT_TRUE(line.front() == '{' && line.back() == '}') << line;
  }
  EXPECT_EQ(lines, 1 + (20 - refused) + 1);
}

// One ValidateRuleSet call in flight.
struct PendingCheck {
  grpc::ClientContext context;
  v1::ValidateRuleSetResponse response;
  grpc::Status status;
  absl::Notification done;
};

// Rule-file checks run on their own worker (one thread here, four may
// wait): a sixth is refused at once, decisions are answered meanwhile, and
// checks whose callers went away stop at once instead of running on.
TEST(FaultsTest, RuleFileChecksAreBoundedAndStopWhenTheirCallersGoAway) {
  ServerProcess server({"--validation-threads=1"});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(30));
  v1::ValidateRuleSetRequest slow;
  slow.set_text(testing::SlowRuleFile(/*rules=*/499, /*test_cases=*/900));
  std::vector<std::unique_ptr<PendingCheck>> checks;
  for (int i = 0; i < 5; ++i) {
    auto check = std::make_unique<PendingCheck>();
    check->context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(2));
    PendingCheck* pending = check.get();
    client.stub()->async()->ValidateRuleSet(&check->context, &slow, &check->response,
                                            [pending](grpc::Status status) {
                                              pending->status = std::move(status);
                                              pending->done.Notify();
                                            });
    checks.push_back(std::move(check));
  }
  const std::string in_flight =
      "trialrules_grpc_server_calls_in_flight{grpc_method=\"ValidateRuleSet\","
      "grpc_service=\"trialrules.v1.TrialRules\"}";
  ASSERT_EQ(WaitForSample(server, in_flight, 5), 5) << server.Scrape();

  const auto refused = client.ValidateRuleSet(slow.text(), "sixth.textproto");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().message(),
            "rule-file checks are busy: 1 running and 4 waiting already; retry with backoff");
  const auto decision = client.Evaluate(EvaluationKind::kEligibility, EligiblePatient());
  EXPECT_TRUE(decision.ok()) << decision.status();

  for (auto& check : checks) check->context.TryCancel();
  for (auto& check : checks) {
    ASSERT_TRUE(check->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    EXPECT_EQ(check->status.error_code(), grpc::StatusCode::CANCELLED);
  }
  // Each check would take seconds of CPU; stopped, they take none.
  EXPECT_EQ(WaitForSample(server, HandledSeries("ValidateRuleSet", "CANCELLED"), 5), 5);
  const double cpu_before = server.CpuSeconds();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_LT(server.CpuSeconds() - cpu_before, 0.5) << "the cancelled checks ran on";
  EXPECT_EQ(Sample(server.Scrape(), HandledSeries("ValidateRuleSet", "RESOURCE_EXHAUSTED")),
            1);

  // A deadline stops a check the same way, and is counted as what the
  // caller got.
  TrialRulesClient impatient(server.Target(), absl::Milliseconds(300));
  const auto late = impatient.ValidateRuleSet(slow.text(), "late.textproto");
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(WaitForSample(server, HandledSeries("ValidateRuleSet", "DEADLINE_EXCEEDED"), 1),
            1);
  EXPECT_EQ(Sample(server.Scrape(), HandledSeries("ValidateRuleSet", "OK")), -1);

  // The worker is free again.
  const auto quick = client.ValidateRuleSet(
      testing::ReadText(std::string(TRIALRULES_SOURCE_DIR) + "/rules/NCT04094766-v2.0.textproto"),
      "v2.textproto");
  ASSERT_TRUE(quick.ok()) << quick.status();
  EXPECT_TRUE(quick->valid());
}

// A unary call whose caller set no deadline still ends: at the server's
// budget (--max-call-seconds), with a message that says so.
TEST(FaultsTest, CallWithoutDeadlineEndsAtTheServersBudget) {
  ServerProcess server({"--max-call-seconds=1"});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  auto stub = v1::TrialRules::NewStub(server.Channel());
  grpc::ClientContext context;  // no deadline
  v1::ValidateRuleSetRequest request;
  request.set_text(testing::SlowRuleFile(/*rules=*/499, /*test_cases=*/900));
  v1::ValidateRuleSetResponse response;
  const grpc::Status status = stub->ValidateRuleSet(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(status.error_message(),
            "the check did not finish within the server's budget of 1s for a call; it was "
            "stopped");
  EXPECT_EQ(WaitForSample(server, HandledSeries("ValidateRuleSet", "DEADLINE_EXCEEDED"), 1),
            1);
}

// Bytes that are not a request message are refused as such, without
// echoing them, without a line in the server's log, and counted.
TEST(FaultsTest, UnparseableRequestBytesAreInvalidArgument) {
  ServerProcess server;
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  grpc::GenericStub stub(server.Channel());
  // A truncated varint; then protocol_id holding bytes that are not UTF-8.
  for (const std::string& bytes : {std::string("\xff\xff\xff\xff", 4),
                                   std::string("\x0a\x04\xc3\x28SECRET", 8)}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&context, "/trialrules.v1.TrialRules/CheckEligibility", {}, &request,
                   &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(status.error_message(),
              "the request could not be parsed as a trialrules.v1.EvaluateRequest message "
              "(malformed protocol buffer bytes, or a string field that is not UTF-8)");
  }
  EXPECT_EQ(WaitForSample(server, HandledSeries("CheckEligibility", "INVALID_ARGUMENT"), 2), 2);
  EXPECT_EQ(server.Stderr().find("libprotobuf"), std::string::npos) << server.Stderr();
  EXPECT_EQ(server.Stderr().find("SECRET"), std::string::npos);
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  EXPECT_TRUE(client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok());
}

// During a drain, a second SIGTERM exits at once.
TEST(FaultsTest, SecondSignalDuringTheDrainExitsAtOnce) {
  ServerProcess server({"--drain-seconds=120"});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  grpc::ClientContext context;
  auto stream = client.stub()->ScreenPatients(&context);  // holds the drain open
  ASSERT_TRUE(stream->Write(ScreenHeader()));
  v1::ScreenResponse response;
  ASSERT_TRUE(stream->Read(&response));
  server.Signal(SIGTERM);
  for (int i = 0; i < 200 && server.Stderr().find("draining") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(server.WaitForExit(1), -1) << "the drain should still wait for the stream";
  server.Signal(SIGTERM);
  EXPECT_EQ(server.WaitForExit(30), 1) << server.Stderr();
  EXPECT_NE(server.Stderr().find("again, exiting now"), std::string::npos) << server.Stderr();
  context.TryCancel();
}

// The drain deadline holds even when calls cannot finish: here the audit
// log is a pipe whose reader stopped reading, so writes block for ever.
TEST(FaultsTest, DrainDeadlineHoldsWhenAuditWritesAreStuck) {
  const std::filesystem::path fifo =
      std::filesystem::temp_directory_path() /
      ("trialrules-stuck-audit-" + std::to_string(::getpid()));
  std::filesystem::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // The reader that never reads: opened without blocking, kept open.
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  ServerProcess server({"--audit-log=" + fifo.string(), "--audit-include-facts",
                        "--drain-seconds=1"});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  // Enough decisions to fill the pipe; the later ones hang.
  TrialRulesClient client(server.Target(), absl::Seconds(2));
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&client] {
      for (int i = 0; i < 100; ++i) {
        if (!client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok()) return;
      }
    });
  }
  for (std::thread& caller : callers) caller.join();  // each ends at its first timeout
  server.Signal(SIGTERM);
  EXPECT_EQ(server.WaitForExit(30), 1) << server.Stderr();
  EXPECT_NE(server.Stderr().find("the drain deadline passed"), std::string::npos)
      << server.Stderr();
  ::close(reader);
  std::filesystem::remove(fifo);
}

// An answer whose record is written after the caller has given up (here
// the audit log is a pipe whose reader pauses, so the write waits past the
// caller's deadline) never reaches the caller: a follow-up record says so,
// naming the decision.
TEST(FaultsTest, AnAnswerRecordedButNotDeliveredGetsAFollowUpRecord) {
  const std::filesystem::path fifo =
      std::filesystem::temp_directory_path() /
      ("trialrules-paused-audit-" + std::to_string(::getpid()));
  std::filesystem::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  ServerProcess server({"--audit-log=" + fifo.string(), "--audit-include-facts"});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(1));
  std::set<std::string> delivered;
  // Until the pipe is full and calls time out waiting for their records; a
  // few, in case a loaded machine made one time out before it was decided.
  int timeouts = 0;
  for (int i = 0; i < 2000 && timeouts < 3; ++i) {
    const auto response = client.Evaluate(EvaluationKind::kEligibility, EligiblePatient());
    if (response.ok()) {
      delivered.insert(response->decision_id());
    } else {
      ASSERT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded)
          << response.status();
      ++timeouts;
    }
  }
  ASSERT_EQ(timeouts, 3);

  // The reader goes on: the waiting record is written, its answer finds the
  // call over, and the follow-up record follows.
  std::string text;
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  const auto whole_follow_up = [&] {
    const size_t at = text.find("\"delivery\":\"failed\"");
    return at != std::string::npos && text.find('\n', at) != std::string::npos;
  };
  while (!whole_follow_up() && absl::Now() < give_up) {
    char buffer[65536];
    const ssize_t n = ::read(reader, buffer, sizeof buffer);
    if (n > 0) {
      text.append(buffer, n);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::string follow_up;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (follow_up.empty() && line.find("\"delivery\":\"failed\"") != absl::string_view::npos) {
      follow_up = std::string(line);
    }
  }
  ASSERT_FALSE(follow_up.empty()) << server.Stderr();
  EXPECT_NE(follow_up.find("the caller's deadline passed"), std::string::npos) << follow_up;
  const size_t start = follow_up.find("\"decision_ids\":[\"") + 17;
  const std::string id = follow_up.substr(start, 32);
  EXPECT_EQ(delivered.count(id), 0u) << "the undelivered decision is not one the caller got";
  EXPECT_NE(text.find("\"decision_id\":\"" + id + "\""), std::string::npos)
      << "its own record was written before the follow-up";
  EXPECT_LT(text.find("\"decision_id\":\"" + id + "\""), text.find(follow_up));
  ::close(reader);
  std::filesystem::remove(fifo);
}

}  // namespace
}  // namespace trialrules
