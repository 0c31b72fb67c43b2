// FHIR Bulk Data NDJSON screened by real servers: ScreenPatients reading
// fhir_ndjson, and `trialrules screen --fhir-ndjson --server` spreading one
// export over three servers, answering exactly as the offline screen does.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/command.h"
#include "tests/fhir/ndjson_export.h"
#include "tests/integration/server_process.h"

namespace trialrules {
namespace {

using testing::ServerProcess;

constexpr int kServing = grpc::health::v1::HealthCheckResponse::SERVING;

// `count` synthetic patients; pt3's creatinine is in a unit the fact does
// not take, so that it is refused naming its line.
std::vector<testing::PatientLines> PatientsWithOneRefused(int count) {
  std::vector<testing::PatientLines> patients = testing::SyntheticPatients(count, 11);
  patients[3][1] = absl::StrReplaceAll(patients[3][1], {{R"("code":"mg/dL"})", R"("code":"mmol/L"})"},
                                                        {R"("code":"umol/L"})", R"("code":"mmol/L"})"}});
  return patients;
}

// Occurrences of `needle` in `text`.
int Count(const std::string& text, const std::string& needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

v1::ScreenHeader Header() {
  v1::ScreenHeader header;
  header.set_protocol_id("NCT04094766");
  header.set_as_of_date("2020-01-15");
  return header;
}

class FhirScreenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.WaitForPort()) << server_.Stderr();
    ASSERT_TRUE(server_.WaitForHealth(kServing)) << server_.Stderr();
    client_ = std::make_unique<TrialRulesClient>(absl::StrCat("127.0.0.1:", server_.port()),
                                                 absl::Seconds(10));
  }

  // Sends `requests` on one stream (the first with the header): the
  // answers, and the status the stream ended with.
  grpc::Status Screen(std::vector<v1::ScreenRequest> requests,
                      std::vector<v1::ScreenResponse>* responses) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = client_->stub()->ScreenPatients(&context);
    *requests[0].mutable_header() = Header();
    for (const v1::ScreenRequest& request : requests) {
      if (!stream->Write(request)) break;
      v1::ScreenResponse response;
      if (!stream->Read(&response)) break;
      responses->push_back(response);
    }
    stream->WritesDone();
    return stream->Finish();
  }

  ServerProcess server_;
  std::unique_ptr<TrialRulesClient> client_;
};

TEST_F(FhirScreenTest, ScreenPatientsReadsBulkNdjsonPatientByPatient) {
  const std::vector<testing::PatientLines> patients = PatientsWithOneRefused(5);
  v1::ScreenRequest request;
  request.set_fhir_ndjson(absl::StrCat(testing::ExportText(patients), "not json\n",
                                       R"({"resourceType":"Observation","id":"lost"})", "\n",
                                       R"({"resourceType":"Condition","id":"c1"})", "\n"));
  std::vector<v1::ScreenResponse> responses;
  const grpc::Status status = Screen({request}, &responses);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(responses.size(), 1u);
  const v1::ScreenResponse& response = responses[0];
  EXPECT_EQ(response.rule_set().version(), "1.0");
  ASSERT_EQ(response.results_size(), 5);
  for (int p = 0; p < 5; ++p) {
    const v1::ScreenResult& result = response.results(p);
    EXPECT_EQ(result.subject_ref(), absl::StrCat("Patient/pt", p));
    if (p == 3) {
      EXPECT_EQ(result.error(),
                "line 63 (Observation/pt3-o1): valueQuantity.code \"mmol/L\" is not a unit "
                "creatinine_mg_dl takes (\"mg/dL\", \"umol/L\")");
      EXPECT_EQ(result.decision_id(), "");
    } else {
      EXPECT_EQ(result.error(), "") << p;
      EXPECT_NE(result.decision(), v1::DECISION_UNSPECIFIED) << p;
      EXPECT_EQ(result.outcomes_size(), response.rule_ids_size()) << p;
    }
  }
  // Lines of no patient are named; resources of other types are skipped.
  ASSERT_EQ(response.fhir_line_errors_size(), 2) << response.DebugString();
  EXPECT_EQ(response.fhir_line_errors(0).rfind("line 101: not JSON", 0), 0u)
      << response.fhir_line_errors(0);
  EXPECT_EQ(response.fhir_line_errors(1).rfind("line 102 (Observation/lost): subject.reference", 0),
            0u)
      << response.fhir_line_errors(1);
  // The audit log has the four decisions, each under its patient.
  const std::string audit = server_.AuditLog();
  EXPECT_EQ(Count(audit, "\"subject_ref\":\"Patient/pt"), 4) << audit;
  EXPECT_EQ(Count(audit, "\"subject_ref\":\"Patient/pt3\""), 0) << audit;
}

TEST_F(FhirScreenTest, ALongPatientIdIsRefusedInValidUtf8) {
  // 100 two-byte characters: the refusal quotes its start, which must end
  // on a character boundary for the answer to be a valid message.
  std::string id;
  for (int i = 0; i < 100; ++i) id += "\u00e9";
  v1::ScreenRequest request;
  request.set_fhir_ndjson(absl::StrCat(R"({"resourceType":"Patient","id":")", id, R"("})", "\n"));
  std::vector<v1::ScreenResponse> responses;
  const grpc::Status status = Screen({request}, &responses);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(responses.size(), 1u);
  ASSERT_EQ(responses[0].results_size(), 1);
  EXPECT_EQ(responses[0].results(0).error().rfind("Patient.id \"" + id.substr(0, 32) + "...\" is 200 ", 0),
            0u)
      << responses[0].results(0).error();
}

TEST_F(FhirScreenTest, RefusalsNameTheLinesTheCallerNumbered) {
  const std::vector<testing::PatientLines> patients = PatientsWithOneRefused(4);
  v1::ScreenRequest request;
  // pt3's Patient and creatinine only, numbered as lines 7 and 4711 of an
  // export.
  request.set_fhir_ndjson(absl::StrCat(patients[3][0], "\n", patients[3][1], "\n"));
  request.add_fhir_line_numbers(7);
  request.add_fhir_line_numbers(4711);
  std::vector<v1::ScreenResponse> responses;
  ASSERT_TRUE(Screen({request}, &responses).ok());
  ASSERT_EQ(responses[0].results_size(), 1);
  EXPECT_EQ(responses[0].results(0).error().rfind("line 4711 (Observation/pt3-o1): ", 0), 0u)
      << responses[0].results(0).error();
}

TEST_F(FhirScreenTest, MalformedFhirMessagesAreRefusedNamingTheField) {
  const std::vector<testing::PatientLines> patients = testing::SyntheticPatients(1, 3);
  const std::string text = absl::StrCat(absl::StrJoin(patients[0], "\n"), "\n");
  struct Case {
    std::string name;
    v1::ScreenRequest request;
    std::string message;
  };
  std::vector<Case> cases(4);
  cases[0].name = "rows and NDJSON";
  cases[0].request.set_fhir_ndjson(text);
  cases[0].request.add_patients()->set_subject_ref("p1");
  cases[0].message = "patients and fhir_ndjson are both set";
  cases[1].name = "too few line numbers";
  cases[1].request.set_fhir_ndjson(text);
  cases[1].request.add_fhir_line_numbers(1);
  cases[1].message = "fhir_line_numbers: 1 numbers for 20 lines of fhir_ndjson";
  cases[2].name = "line number 0";
  cases[2].request.set_fhir_ndjson("{}\n{}");
  cases[2].request.add_fhir_line_numbers(1);
  cases[2].request.add_fhir_line_numbers(0);
  cases[2].message = "fhir_line_numbers[1] = 0";
  cases[3].name = "line numbers without NDJSON";
  cases[3].request.add_fhir_line_numbers(1);
  cases[3].message = "fhir_line_numbers: 1 numbers for 0 lines";
  for (Case& c : cases) {
    std::vector<v1::ScreenResponse> responses;
    // A first message with the header alone, so that the refusal is of the
    // FHIR message itself.
    const grpc::Status status = Screen({v1::ScreenRequest(), c.request}, &responses);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_NE(status.error_message().find(c.message), std::string::npos)
        << c.name << ": " << status.error_message();
  }
  // Nothing was decided.
  EXPECT_EQ(Count(server_.AuditLog(), "\"subject_ref\""), 0);
}

// The screen's lines, without its summary (the last line).
std::vector<std::string> PatientLinesOf(const std::string& output) {
  std::vector<std::string> lines = absl::StrSplit(output, '\n', absl::SkipEmpty());
  lines.erase(std::remove_if(lines.begin(), lines.end(),
                             [](const std::string& line) { return line.rfind("{", 0) != 0; }),
              lines.end());
  if (!lines.empty()) lines.pop_back();
  return lines;
}

TEST(FhirScreenServersTest, ThreeServersShareOneExportAndAnswerAsOffline) {
  ServerProcess servers[3];
  std::string targets;
  for (ServerProcess& server : servers) {
    ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
    ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
    absl::StrAppend(&targets, targets.empty() ? "" : ",", "127.0.0.1:", server.port());
  }
  constexpr int kPatients = 300;
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "three_servers_export";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::vector<testing::PatientLines> patients = PatientsWithOneRefused(kPatients);
  {
    // As a Bulk Data server writes it: one file per resource type.
    std::ofstream patient_file(dir / "Patient.ndjson"), observation_file(dir / "Observation.ndjson");
    for (const testing::PatientLines& lines : patients) {
      patient_file << lines[0] << "\n";
      for (size_t i = 1; i < lines.size(); ++i) observation_file << lines[i] << "\n";
    }
  }
  // Two protocols: each takes the facts it declares, as offline.
  const std::string common =
      absl::StrCat("--protocols NCT04094766,NCT03671460 --fhir-ndjson ", dir.string(),
                   " --assessment-date 2020-01-15 --json");
  // The resolver gives the client three addresses, as DNS does for a
  // headless Service with three ready pods.
  const testing::CommandRun on_servers = testing::RunCommand(
      absl::StrCat("cd ", TRIALRULES_SOURCE_DIR, " && ", TRIALRULES_CLI, " screen ", common,
                   " --server ipv4:", targets, " --batch 5"));
  ASSERT_EQ(on_servers.exit_code, 0) << on_servers.output;
  const testing::CommandRun offline = testing::RunCli("screen --rules rules/ " + common);
  ASSERT_EQ(offline.exit_code, 0) << offline.output;

  // Patient by patient, in the export's order, as offline; lines are
  // numbered through the files in name order (Observation.ndjson first).
  const std::vector<std::string> answered = PatientLinesOf(on_servers.output);
  ASSERT_EQ(answered.size(), static_cast<size_t>(kPatients)) << on_servers.output;
  EXPECT_EQ(answered, PatientLinesOf(offline.output));
  EXPECT_NE(answered[3].find("\"error\":\"line 58 (Observation/pt3-o1): valueQuantity.code"),
            std::string::npos)
      << answered[3];
  // The same counts and funnel.
  const std::string summary_start = "{\"summary\":";
  const size_t at = on_servers.output.find(summary_start);
  const size_t offline_at = offline.output.find(summary_start);
  ASSERT_NE(at, std::string::npos) << on_servers.output;
  ASSERT_NE(offline_at, std::string::npos) << offline.output;
  const std::string summary = on_servers.output.substr(at, on_servers.output.find('\n', at) - at);
  const std::string offline_summary =
      offline.output.substr(offline_at, offline.output.find('\n', offline_at) - offline_at);
  EXPECT_EQ(summary.substr(0, summary.find(",\"replicas\":")),
            offline_summary.substr(0, offline_summary.size() - 1));

  // Every server screened a share, and its audit log holds exactly that
  // share's decisions.
  int decided = 0, shared = 0;
  for (const ServerProcess& server : servers) {
    const std::string target = absl::StrCat("ipv4:127.0.0.1:", server.port());
    const size_t entry = summary.find(absl::StrCat("\"", target, "\":"));
    ASSERT_NE(entry, std::string::npos) << summary;
    const int share = std::stoi(summary.substr(entry + target.size() + 3));
    EXPECT_GT(share, 0) << target << " screened no patient: " << summary;
    // Its share under both protocols; the refused patient has no decision
    // under NCT04094766, on whichever server screened it.
    const int audited = Count(server.AuditLog(), "\"subject_ref\":\"Patient/pt");
    const int refused = Count(server.AuditLog(), "\"subject_ref\":\"Patient/pt3\"") == 1;
    EXPECT_EQ(audited, 2 * share - refused) << target << ": share " << share;
    decided += audited;
    shared += share;
  }
  EXPECT_EQ(shared, kPatients);
  // Each patient is decided under each protocol but the refused one,
  // which NCT03671460 (no creatinine) screens.
  EXPECT_EQ(decided, 2 * kPatients - 1);
}

TEST(FhirScreenServersTest, ADnsNameScreensOnEveryAddressThatAnswers) {
  ServerProcess server;
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(kServing)) << server.Stderr();
  const std::string path = ::testing::TempDir() + "/dns_export.ndjson";
  std::ofstream(path) << testing::ExportText(testing::SyntheticPatients(30, 5));
  // localhost may resolve to ::1 as well, where nothing listens: that
  // address is skipped and 127.0.0.1 screens every patient.
  const testing::CommandRun run = testing::RunCli(
      absl::StrCat("screen --protocols NCT04094766 --fhir-ndjson ", path,
                   " --assessment-date 2020-01-15 --json --server dns:///localhost:",
                   server.port()));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(PatientLinesOf(run.output).size(), 30u) << run.output;
  EXPECT_NE(run.output.find(absl::StrCat("\"ipv4:127.0.0.1:", server.port(), "\":30")),
            std::string::npos)
      << run.output;
  EXPECT_EQ(Count(server.AuditLog(), "\"subject_ref\":\"Patient/pt"), 30);
}

TEST(FhirScreenServersTest, ReplicasUnderDifferentRuleFilesScreenNoPatient) {
  // The second server's v1.0 differs by a comment: another SHA-256.
  const std::filesystem::path rules =
      std::filesystem::path(::testing::TempDir()) / "rules_amended_comment";
  std::filesystem::remove_all(rules);
  std::filesystem::copy(std::string(TRIALRULES_SOURCE_DIR) + "/rules", rules);
  std::ofstream(rules / "NCT04094766-v1.0.textproto", std::ios::app) << "# amended\n";
  ServerProcess same;
  ServerProcess other({}, rules.string());
  std::string targets;
  for (ServerProcess* server : {&same, &other}) {
    ASSERT_TRUE(server->WaitForPort()) << server->Stderr();
    ASSERT_TRUE(server->WaitForHealth(kServing)) << server->Stderr();
    absl::StrAppend(&targets, targets.empty() ? "" : ",", "127.0.0.1:", server->port());
  }
  const std::string path = ::testing::TempDir() + "/mixed_rules_export.ndjson";
  std::ofstream(path) << testing::ExportText(testing::SyntheticPatients(40, 5));
  const testing::CommandRun run = testing::RunCli(
      absl::StrCat("screen --protocols NCT04094766 --fhir-ndjson ", path,
                   " --assessment-date 2020-01-15 --json --batch 5 --server ipv4:", targets));
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("screen when every replica serves the same rules"),
            std::string::npos)
      << run.output;
  EXPECT_TRUE(PatientLinesOf(run.output).empty()) << run.output;
  EXPECT_EQ(Count(same.AuditLog() + other.AuditLog(), "\"subject_ref\""), 0);
}

TEST(FhirScreenServersTest, AnUnreachableTargetIsAnErrorNamingIt) {
  const std::string path = ::testing::TempDir() + "/unreachable_export.ndjson";
  std::ofstream(path) << testing::ExportText(testing::SyntheticPatients(2, 5));
  const testing::CommandRun run = testing::RunCli(
      absl::StrCat("screen --protocols NCT04094766 --fhir-ndjson ", path,
                   " --deadline-ms 2000 --server ipv4:127.0.0.1:1"));
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("127.0.0.1:1"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace trialrules
