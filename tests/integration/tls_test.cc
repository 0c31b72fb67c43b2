// TLS and mutual TLS on the real server: certificates made fresh by
// make_certs.sh, real handshakes over loopback, a rotated certificate picked
// up without a restart, and the plaintext health-only port for probes.
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/command.h"
#include "tests/integration/requests.h"
#include "tests/integration/server_process.h"

namespace trialrules {
namespace {

using testing::EligiblePatient;
using testing::ReadText;
using testing::ServerProcess;

constexpr int kServing = grpc::health::v1::HealthCheckResponse::SERVING;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                       ("trialrules-certs-" + std::to_string(getpid())));
    const std::string command = absl::StrCat(
        "bash ", TRIALRULES_SOURCE_DIR, "/tests/integration/make_certs.sh ", certs_->string());
    ASSERT_EQ(std::system(command.c_str()), 0);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*certs_);
    delete certs_;
  }
  static std::string Cert(const std::string& name) { return (*certs_ / name).string(); }

  // Serves `name` (".crt"/".key") from `dir` as tls.crt and tls.key, renamed
  // into place as a Secret update does, key first.
  static void Serve(const std::filesystem::path& dir, const std::string& name) {
    std::filesystem::create_directories(dir);
    for (const char* ext : {".key", ".crt"}) {
      const std::filesystem::path target = dir / (std::string("tls") + ext);
      std::filesystem::copy_file(Cert(name + ext), target.string() + ".new");
      std::filesystem::rename(target.string() + ".new", target);
    }
  }

  // A client of `server` trusting `ca`, presenting `client` (".crt"/".key")
  // unless empty.
  static TrialRulesClient Client(const ServerProcess& server, const std::string& ca,
                                 const std::string& client) {
    ChannelSecurity security;
    security.ca_path = Cert(ca + ".crt");
    if (!client.empty()) {
      security.cert_path = Cert(client + ".crt");
      security.key_path = Cert(client + ".key");
    }
    auto credentials = ChannelCredentials(security);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return TrialRulesClient(
        NewChannel("localhost:" + std::to_string(server.port()), true, *credentials),
        absl::Seconds(5));
  }

  static std::vector<std::string> MutualTlsFlags(const std::filesystem::path& dir) {
    return {"--tls-cert=" + (dir / "tls.crt").string(), "--tls-key=" + (dir / "tls.key").string(),
            "--tls-client-ca=" + Cert("ca1.crt"), "--tls-reload-seconds=1",
            "--health-listen=127.0.0.1:0"};
  }

  // A plaintext channel to the server's health-only port.
  static std::shared_ptr<grpc::Channel> HealthPort(const ServerProcess& server) {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(server.health_port()),
                               grpc::InsecureChannelCredentials());
  }

  static std::filesystem::path* certs_;
};
std::filesystem::path* TlsTest::certs_ = nullptr;

absl::StatusCode Code(const absl::StatusOr<v1::EvaluateResponse>& response) {
  return response.status().code();
}

TEST_F(TlsTest, PlaintextMustBeAskedFor) {
  ServerProcess server({}, std::string(TRIALRULES_SOURCE_DIR) + "/rules", /*plaintext=*/false);
  EXPECT_EQ(server.WaitForExit(), 2);
  EXPECT_NE(server.Stderr().find("serving without TLS must be asked for with --plaintext"),
            std::string::npos)
      << server.Stderr();
}

TEST_F(TlsTest, UnreadableCertificateStopsTheStartNamingIt) {
  ServerProcess server({"--tls-cert=/nonexistent/tls.crt", "--tls-key=" + Cert("server1.key")},
                       std::string(TRIALRULES_SOURCE_DIR) + "/rules", /*plaintext=*/false);
  EXPECT_EQ(server.WaitForExit(), 2);
  EXPECT_NE(server.Stderr().find("--tls-cert \"/nonexistent/tls.crt\""), std::string::npos)
      << server.Stderr();
}

TEST_F(TlsTest, MutualTlsAdmitsOnlyClientsWithATrustedCertificate) {
  const std::filesystem::path served = *certs_ / "served-mtls";
  Serve(served, "server1");
  ServerProcess server(MutualTlsFlags(served), std::string(TRIALRULES_SOURCE_DIR) + "/rules",
                       /*plaintext=*/false);
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_GT(server.health_port(), 0);
  const auto health = HealthPort(server);
  ASSERT_TRUE(server.WaitForHealth(kServing, health)) << server.Stderr();
  EXPECT_EQ(server.Health("liveness", health), kServing);
  EXPECT_EQ(server.Health("trialrules.v1.TrialRules", health), kServing);

  // The health port serves nothing else.
  TrialRulesClient on_health_port(health, absl::Seconds(5));
  EXPECT_EQ(Code(on_health_port.Evaluate(EvaluationKind::kEligibility, EligiblePatient())),
            absl::StatusCode::kUnimplemented);

  EXPECT_EQ(Code(Client(server, "ca1", "client1")
                     .Evaluate(EvaluationKind::kEligibility, EligiblePatient())),
            absl::StatusCode::kOk);
  // Plaintext, no client certificate, a certificate from an untrusted CA,
  // or a server it does not trust: no call gets through.
  EXPECT_EQ(Code(TrialRulesClient(NewChannel(server.Target(), true), absl::Seconds(5))
                     .Evaluate(EvaluationKind::kEligibility, EligiblePatient())),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Code(Client(server, "ca1", "").Evaluate(EvaluationKind::kEligibility,
                                                     EligiblePatient())),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Code(Client(server, "ca1", "client2")
                     .Evaluate(EvaluationKind::kEligibility, EligiblePatient())),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Code(Client(server, "ca2", "client1")
                     .Evaluate(EvaluationKind::kEligibility, EligiblePatient())),
            absl::StatusCode::kUnavailable);
  // Refused handshakes are not decisions: exactly one audit line.
  const std::string audit = server.AuditLog();
  EXPECT_EQ(std::count(audit.begin(), audit.end(), '\n'), 1);

  // The CLI with the same options.
  const testing::CommandRun cli = testing::RunCli(absl::StrCat(
      "eval --server localhost:", server.port(), " --tls-ca ", Cert("ca1.crt"), " --tls-cert ",
      Cert("client1.crt"), " --tls-key ", Cert("client1.key"),
      " --protocol NCT04094766 --facts tests/data/facts/eligible_patient.json --json"));
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  const std::string& output = cli.output;
  EXPECT_NE(output.find("\"decision\":\"ELIGIBLE\""), std::string::npos) << output;
}

TEST_F(TlsTest, RotatedServerCertificateIsServedWithoutARestart) {
  const std::filesystem::path served = *certs_ / "served-rotation";
  Serve(served, "server1");
  ServerProcess server(MutualTlsFlags(served), std::string(TRIALRULES_SOURCE_DIR) + "/rules",
                       /*plaintext=*/false);
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  // The port is written before the rules are loaded (UNAVAILABLE until then):
  // wait for SERVING on the plaintext health port.
  const auto health = HealthPort(server);
  ASSERT_TRUE(server.WaitForHealth(kServing, health)) << server.Stderr();
  ASSERT_EQ(Code(Client(server, "ca1", "client1")
                     .Evaluate(EvaluationKind::kEligibility, EligiblePatient())),
            absl::StatusCode::kOk)
      << server.Stderr();

  Serve(served, "server2");  // rotated

  // New connections get the new certificate (issued by ca2) once the
  // server has read the files again (every second here).
  absl::StatusCode code = absl::StatusCode::kUnknown;
  for (int i = 0; i < 100 && code != absl::StatusCode::kOk; ++i) {
    code = Code(Client(server, "ca2", "client1")
                    .Evaluate(EvaluationKind::kEligibility, EligiblePatient()));
    if (code != absl::StatusCode::kOk) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(code, absl::StatusCode::kOk) << server.Stderr();
  EXPECT_EQ(Code(Client(server, "ca1", "client1")
                     .Evaluate(EvaluationKind::kEligibility, EligiblePatient())),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(server.pid() > 0, true);  // the same process throughout
}

// An expired certificate does not stop the start (a rotation may be on its
// way) but is warned about, and its expiry is a metric to alert on; the
// metric follows a rotation.
TEST_F(TlsTest, ExpiredCertificateIsWarnedAboutAndItsExpiryIsAMetric) {
  const std::filesystem::path served = *certs_ / "served-expired";
  Serve(served, "expired");
  ServerProcess server({"--tls-cert=" + (served / "tls.crt").string(),
                        "--tls-key=" + (served / "tls.key").string(), "--tls-reload-seconds=1"},
                       std::string(TRIALRULES_SOURCE_DIR) + "/rules", /*plaintext=*/false);
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  const std::string series = "trialrules_tls_certificate_expiry_timestamp_seconds";
  const double now = absl::ToUnixSeconds(absl::Now());
  const double expired_at = testing::Sample(server.Scrape(), series);
  EXPECT_LT(expired_at, now);
  EXPECT_GT(expired_at, now - 3 * 86400);
  EXPECT_NE(server.Stderr().find("tls: WARNING: the certificate " + (served / "tls.crt").string() +
                                 " expired at "),
            std::string::npos)
      << server.Stderr();

  Serve(served, "server1");
  double valid_until = expired_at;
  for (int i = 0; i < 100 && valid_until <= now; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    valid_until = testing::Sample(server.Scrape(), series);
  }
  EXPECT_GT(valid_until, now);
  // The test certificates are valid for two days: warned about as near.
  EXPECT_NE(server.Stderr().find("tls.crt expires at "), std::string::npos) << server.Stderr();
}

}  // namespace
}  // namespace trialrules
