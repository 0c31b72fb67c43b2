// /metrics of the real server after real calls: the series and values each
// call should leave, a page Prometheus's own promtool accepts, label values
// made safe, and an endpoint that keeps answering while clients misbehave.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "service/util/sha256.h"
#include "tests/command.h"
#include "tests/integration/requests.h"
#include "tests/integration/server_process.h"

namespace trialrules {
namespace {

using testing::EligiblePatient;
using testing::ReadText;
using testing::Sample;
using testing::ServerProcess;
using testing::SetFact;

const std::string kSource = TRIALRULES_SOURCE_DIR;
constexpr int kServing = grpc::health::v1::HealthCheckResponse::SERVING;

// promtool's verdict on a page: "" when it accepts it, else its output.
std::string PromtoolCheck(const std::string& page) {
  char path[] = "/tmp/trialrules-scrape-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return "mkstemp failed";
  EXPECT_EQ(write(fd, page.data(), page.size()), static_cast<ssize_t>(page.size()));
  close(fd);
  const testing::CommandRun run =
      testing::RunCommand(absl::StrCat("promtool check metrics < ", path, " 2>&1"));
  unlink(path);
  return run.exit_code == 0 ? "" : absl::StrCat("promtool exit ", run.exit_code, ": ", run.output);
}

std::string Call(const std::string& method) { return testing::HandledSeries(method, "OK"); }

std::string Decision(const std::string& decision, const std::string& kind,
                     const std::string& version) {
  return absl::StrCat("trialrules_decisions_total{decision=\"", decision, "\",kind=\"", kind,
                      "\",protocol=\"NCT04094766\",version=\"", version, "\"}");
}

std::string Outcome(const std::string& outcome, const std::string& rule,
                    const std::string& rule_kind, const std::string& version) {
  return absl::StrCat("trialrules_rule_outcomes_total{outcome=\"", outcome,
                      "\",protocol=\"NCT04094766\",rule=\"", rule, "\",rule_kind=\"",
                      rule_kind, "\",version=\"", version, "\"}");
}

TEST(MetricsTest, EveryKindOfCallLeavesItsSeriesAndPromtoolAcceptsThePage) {
  ServerProcess server;
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(5));

  // Eligible under 1.0, twice; ineligible (no consent) under 2.0 once.
  ASSERT_TRUE(client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok());
  ASSERT_TRUE(client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok());
  v1::EvaluateRequest no_consent = EligiblePatient();
  no_consent.set_version("2.0");
  for (v1::FactValue& fact : *no_consent.mutable_facts()) {
    if (fact.name() == "informed_consent") fact.set_boolean(false);
  }
  auto answer = client.Evaluate(EvaluationKind::kEligibility, no_consent);
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ(answer->decision(), v1::DECISION_INELIGIBLE);

  ASSERT_TRUE(client.Evaluate(EvaluationKind::kWithdrawal, testing::WithdrawingPatient()).ok());
  ASSERT_TRUE(client.Evaluate(EvaluationKind::kEscalation, testing::ExpandingCohort()).ok());
  ASSERT_TRUE(client.Evaluate(EvaluationKind::kStopping, testing::TrialStoppedByS2()).ok());

  v1::EvaluateRequest unknown_fact = EligiblePatient();
  SetFact(&unknown_fact, "shoe_size", 42);
  EXPECT_EQ(client.Evaluate(EvaluationKind::kEligibility, unknown_fact).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::EvaluateRequest unknown_protocol = EligiblePatient();
  unknown_protocol.set_protocol_id("NCT00000000");
  EXPECT_EQ(client.Evaluate(EvaluationKind::kEligibility, unknown_protocol).status().code(),
            absl::StatusCode::kNotFound);

  // Three patients screened in one message under 1.0: two eligible by
  // consent alone are not (other facts missing), so all three count.
  {
    grpc::ClientContext context;
    auto stream = client.stub()->ScreenPatients(&context);
    v1::ScreenRequest request;
    request.mutable_header()->set_protocol_id("NCT04094766");
    request.mutable_header()->set_version("1.0");
    request.mutable_header()->add_fact_names("informed_consent");
    for (bool consent : {false, false, true}) {
      request.add_patients()->add_values()->set_boolean(consent);
    }
    ASSERT_TRUE(stream->Write(request));
    v1::ScreenResponse response;
    ASSERT_TRUE(stream->Read(&response));
    stream->WritesDone();
    ASSERT_TRUE(stream->Finish().ok());
  }
  ASSERT_TRUE(client.ListRuleSets().ok());
  ASSERT_TRUE(client.GetRuleSet("NCT04094766", "1.0").ok());
  ASSERT_TRUE(client.ValidateRuleSet(ReadText(kSource + "/rules/NCT04094766-v1.0.textproto"),
                                     "v1.textproto")
                  .ok());
  ASSERT_EQ(server.Health(), kServing);

  const std::string page = server.Scrape();
  ASSERT_FALSE(page.empty()) << server.Stderr();
  EXPECT_EQ(PromtoolCheck(page), "") << page;

  EXPECT_EQ(Sample(page, Call("CheckEligibility")), 3);
  EXPECT_EQ(Sample(page, Call("CheckWithdrawal")), 1);
  EXPECT_EQ(Sample(page, Call("EvaluateEscalation")), 1);
  EXPECT_EQ(Sample(page, Call("EvaluateStopping")), 1);
  EXPECT_EQ(Sample(page, Call("ScreenPatients")), 1);
  EXPECT_EQ(Sample(page, Call("ListRuleSets")), 1);
  EXPECT_EQ(Sample(page, Call("GetRuleSet")), 1);
  EXPECT_EQ(Sample(page, Call("ValidateRuleSet")), 1);
  EXPECT_EQ(Sample(page, "trialrules_grpc_server_handled_total{grpc_code=\"INVALID_ARGUMENT\","
                         "grpc_method=\"CheckEligibility\",grpc_service=\"trialrules.v1."
                         "TrialRules\"}"),
            1);
  EXPECT_EQ(Sample(page, "trialrules_grpc_server_handled_total{grpc_code=\"NOT_FOUND\","
                         "grpc_method=\"CheckEligibility\",grpc_service=\"trialrules.v1."
                         "TrialRules\"}"),
            1);
  EXPECT_EQ(Sample(page, "trialrules_grpc_server_handling_seconds_count{grpc_method="
                         "\"CheckEligibility\",grpc_service=\"trialrules.v1.TrialRules\"}"),
            5);
  EXPECT_EQ(Sample(page, "trialrules_grpc_server_handling_seconds_bucket{grpc_method="
                         "\"CheckEligibility\",grpc_service=\"trialrules.v1.TrialRules\","
                         "le=\"+Inf\"}"),
            5);
  EXPECT_EQ(Sample(page, "trialrules_grpc_server_calls_in_flight{grpc_method="
                         "\"CheckEligibility\",grpc_service=\"trialrules.v1.TrialRules\"}"),
            0);

  EXPECT_EQ(Sample(page, Decision("ELIGIBLE", "eligibility", "1.0")), 2);
  EXPECT_EQ(Sample(page, Decision("INELIGIBLE", "eligibility", "2.0")), 1);
  EXPECT_EQ(Sample(page, Decision("INELIGIBLE", "eligibility", "1.0")), 2);  // screened
  EXPECT_EQ(Sample(page, Decision("INDETERMINATE", "eligibility", "1.0")), 1);
  EXPECT_EQ(Sample(page, Decision("WITHDRAW", "withdrawal", "1.0")), 1);
  EXPECT_EQ(Sample(page, Decision("EXPAND", "escalation", "1.0")), 1);
  EXPECT_EQ(Sample(page, Decision("TRIGGERED", "stopping", "1.0")), 1);

  // The funnel: I1 (consent) failed for one unary and two screened patients.
  EXPECT_EQ(Sample(page, Outcome("TRUE", "I1", "inclusion", "1.0")), 3);
  EXPECT_EQ(Sample(page, Outcome("FALSE", "I1", "inclusion", "1.0")), 2);
  EXPECT_EQ(Sample(page, Outcome("FALSE", "I1", "inclusion", "2.0")), 1);
  EXPECT_EQ(Sample(page, Outcome("UNKNOWN", "I6", "inclusion", "1.0")), 3);
  EXPECT_EQ(Sample(page, Outcome("TRUE", "S2", "stopping", "1.0")), 1);

  for (const std::string version : {"1.0", "2.0"}) {
    const std::string sha = Sha256Hex(
        ReadText(kSource + "/rules/NCT04094766-v" + version + ".textproto"));
    EXPECT_EQ(Sample(page, "trialrules_rule_set_info{protocol=\"NCT04094766\",sha256=\"" + sha +
                               "\",version=\"" + version + "\"}"),
              1);
  }
  EXPECT_EQ(Sample(page, "trialrules_rule_sets_loaded"), 3);  // both protocols
  EXPECT_GE(Sample(page, "trialrules_reloads_total{result=\"success\"}"), 1);
  EXPECT_EQ(Sample(page, "trialrules_reloads_total{result=\"rejected\"}"), 0);
  EXPECT_GT(Sample(page, "trialrules_last_successful_reload_timestamp_seconds"), 1.7e9);
  EXPECT_EQ(Sample(page, "trialrules_audit_write_failures_total"), 0);
  // Every answer above has its record; this log is not signed.
  EXPECT_GE(Sample(page, "trialrules_audit_tree_size"), 5);
  EXPECT_EQ(Sample(page, "trialrules_audit_checkpoint_tree_size"), 0);
  EXPECT_EQ(page.find("trialrules_rule_file_rejected{"), std::string::npos);

  EXPECT_GT(Sample(page, "process_cpu_seconds_total"), 0);
  EXPECT_GT(Sample(page, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(Sample(page, "process_open_fds"), 3);
  const double started = Sample(page, "process_start_time_seconds");
  EXPECT_NEAR(started, static_cast<double>(::time(nullptr)), 120);
}

TEST(MetricsTest, RefusedFileIsCountedAndAnInvalidUtf8NameCannotBreakThePage) {
  const std::filesystem::path rules = std::filesystem::temp_directory_path() /
                                      ("trialrules-metrics-rules-" + std::to_string(getpid()));
  std::filesystem::remove_all(rules);
  std::filesystem::create_directories(rules);
  std::filesystem::copy_file(kSource + "/rules/NCT04094766-v1.0.textproto",
                             rules / "NCT04094766-v1.0.textproto");
  std::ofstream(rules / "broken-\xff\xfe.textproto") << "protocol_id: \"NCT0\" nonsense\n";

  ServerProcess server({}, rules.string());
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  const std::string page = server.Scrape();
  std::filesystem::remove_all(rules);
  ASSERT_FALSE(page.empty()) << server.Stderr();
  EXPECT_EQ(PromtoolCheck(page), "") << page;
  const std::string file = (rules / "broken-\xEF\xBF\xBD\xEF\xBF\xBD.textproto").string();
  EXPECT_EQ(Sample(page, "trialrules_rule_file_rejected{file=\"" + file + "\"}"), 1) << page;
  EXPECT_GE(Sample(page, "trialrules_reloads_total{result=\"rejected\"}"), 1);
  EXPECT_EQ(Sample(page, "trialrules_reloads_total{result=\"success\"}"), 0);
  EXPECT_EQ(Sample(page, "trialrules_rule_sets_loaded"), 1);
}

// A call is counted with the code its caller got: a stream the client
// cancelled is CANCELLED, one whose deadline passed is DEADLINE_EXCEEDED,
// whatever the server would have finished it with.
TEST(MetricsTest, CallsTheCallerGaveUpOnAreCountedAsWhatTheCallerGot) {
  ServerProcess server;
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  auto stub = v1::TrialRules::NewStub(server.Channel());
  v1::ScreenRequest header;
  header.mutable_header()->set_protocol_id("NCT04094766");
  header.mutable_header()->add_fact_names("informed_consent");
  for (const bool cancel : {true, false}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(cancel ? 30 : 1));
    auto stream = stub->ScreenPatients(&context);
    ASSERT_TRUE(stream->Write(header));
    v1::ScreenResponse response;
    ASSERT_TRUE(stream->Read(&response));
    if (cancel) context.TryCancel();
    EXPECT_FALSE(stream->Read(&response));
    EXPECT_EQ(stream->Finish().error_code(),
              cancel ? grpc::StatusCode::CANCELLED : grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  EXPECT_EQ(testing::WaitForSample(server, testing::HandledSeries("ScreenPatients", "CANCELLED"),
                                    1),
            1);
  EXPECT_EQ(testing::WaitForSample(
                server, testing::HandledSeries("ScreenPatients", "DEADLINE_EXCEEDED"), 1),
            1);
  EXPECT_EQ(Sample(server.Scrape(), Call("ScreenPatients")), -1);
}

TEST(MetricsTest, TakenMetricsPortIsAClearErrorAndNonZeroExit) {
  ServerProcess first;
  ASSERT_TRUE(first.WaitForPort()) << first.Stderr();
  ServerProcess second(
      {"--metrics-address=127.0.0.1:" + std::to_string(first.metrics_port())});
  EXPECT_EQ(second.WaitForExit(), 1);
  EXPECT_NE(second.Stderr().find("cannot serve metrics on 127.0.0.1:" +
                                 std::to_string(first.metrics_port())),
            std::string::npos)
      << second.Stderr();
}

TEST(MetricsTest, NoMetricsAddressMeansNoMetricsEndpoint) {
  ServerProcess server({"--metrics-address="});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  EXPECT_EQ(server.metrics_port(), 0);
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
}

TEST(MetricsTest, IdleAndStalledClientsDoNotStopScrapesOrCalls) {
  ServerProcess server;
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  // More misbehaving connections than the endpoint has threads: some idle,
  // some stalled halfway through a request line.
  std::vector<int> connections;
  for (int i = 0; i < 24; ++i) {
    const int fd = testing::ConnectLoopback(server.metrics_port());
    ASSERT_GE(fd, 0);
    if (i % 2 == 0) {
      ASSERT_GT(::send(fd, "GET /metr", 9, MSG_NOSIGNAL), 0);
    }
    connections.push_back(fd);
  }
  // gRPC keeps answering meanwhile, and a scrape gets through once the
  // stalled connections time out (1 s), well within its own 30 s timeout.
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  EXPECT_TRUE(client.Evaluate(EvaluationKind::kEligibility, EligiblePatient()).ok());
  const std::string response = testing::HttpGet(server.metrics_port(), "/metrics", 30);
  EXPECT_NE(response.find("trialrules_decisions_total"), std::string::npos) << response;
  for (int fd : connections) ::close(fd);
}

}  // namespace
}  // namespace trialrules
