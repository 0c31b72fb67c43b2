// Client-side balancing as callers use it against the headless Service: one
// channel over three real server processes spreads its calls across all
// three (each server's audit log counts what it answered).
#include <string>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/integration/requests.h"
#include "tests/integration/server_process.h"

namespace trialrules {
namespace {

using testing::EligiblePatient;
using testing::ServerProcess;

constexpr int kServing = grpc::health::v1::HealthCheckResponse::SERVING;

int AuditLines(const ServerProcess& server) {
  const std::string audit = server.AuditLog();
  return static_cast<int>(std::count(audit.begin(), audit.end(), '\n'));
}

TEST(RoundRobinTest, OneChannelSpreadsItsCallsOverThreeServers) {
  ServerProcess servers[3];
  std::string addresses;
  for (ServerProcess& server : servers) {
    ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
    ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
    absl::StrAppend(&addresses, addresses.empty() ? "" : ",", "127.0.0.1:", server.port());
  }
  // The resolver gives the channel three addresses, as DNS does for a
  // headless Service with three ready pods.
  const auto channel = NewChannel("ipv4:" + addresses);
  ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() +
                                        std::chrono::seconds(10)));
  TrialRulesClient client(channel, absl::Seconds(5));
  constexpr int kCalls = 90;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok());
  }
  int total = 0;
  for (const ServerProcess& server : servers) {
    const int answered = AuditLines(server);
    total += answered;
    EXPECT_GE(answered, kCalls / 6) << "a server answered too few calls";
  }
  EXPECT_EQ(total, kCalls);
}

TEST(RoundRobinTest, DnsTargetsWork) {
  ServerProcess server;
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  TrialRulesClient client(absl::StrCat("dns:///localhost:", server.port()), absl::Seconds(5));
  EXPECT_TRUE(client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok());
  EXPECT_EQ(AuditLines(server), 1);
}

}  // namespace
}  // namespace trialrules
