// Faults and misbehaving clients against the real server: overload, a
// stream left open without a deadline, a cancelled stream, idle and stalled
// connections on the gRPC port, and a full audit-log disk that comes back.
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/integration/requests.h"
#include "tests/integration/server_process.h"

namespace trialrules {
namespace {

using testing::EligiblePatient;
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

}  // namespace
}  // namespace trialrules
