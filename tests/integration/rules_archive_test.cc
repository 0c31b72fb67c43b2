// The rules archive (--rules-archive) with the real server binary: every rule
// file and decision table loaded is there, by SHA-256, before a decision can
// be answered under it; it only grows; and when it cannot be written, the
// new rules are not published.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "service/util/sha256.h"
#include "tests/integration/requests.h"
#include "tests/integration/server_process.h"

namespace trialrules {
namespace {

namespace fs = std::filesystem;
using testing::EligiblePatient;
using testing::ReadText;
using testing::ServerProcess;

const std::string kSource = TRIALRULES_SOURCE_DIR;

bool WaitFor(const std::function<bool()>& condition) {
  for (int i = 0; i < 1000; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

class RulesArchiveServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("trialrules-archive-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    rules_ = root_ / "rules";
    archive_ = root_ / "state" / "archive";  // not there yet: the server creates it
    fs::create_directories(rules_);
    for (const auto& entry : fs::directory_iterator(kSource + "/rules")) {
      fs::copy_file(entry.path(), rules_ / entry.path().filename());
    }
    v2_ = ReadText(rules_ / "NCT04094766-v2.0.textproto");
  }
  void TearDown() override { fs::remove_all(root_); }

  // v2.0 as `version`, in force from `from`.
  std::string Amendment(const std::string& version, const std::string& from) const {
    return absl::StrReplaceAll(v2_, {{"version: \"2.0\"", "version: \"" + version + "\""},
                                     {"effective_from: \"2020-06-01\"",
                                      "effective_from: \"" + from + "\""}});
  }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(rules_ / (name + ".tmp"), std::ios::binary) << text;
    fs::rename(rules_ / (name + ".tmp"), rules_ / name);  // whole, as a deployment does
  }
  // The archive's copy of `bytes` ("" when there is none).
  std::string Archived(const std::string& bytes, const std::string& extension) const {
    const fs::path path = archive_ / (Sha256Hex(bytes) + extension);
    return fs::exists(path) ? ReadText(path) : "";
  }
  static std::set<std::string> Names(const fs::path& dir) {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }
  // The version answering an eligibility check on 2022-01-01 (no site), or
  // the call's error.
  static absl::StatusOr<v1::RuleSetRef> Answering(const TrialRulesClient& client) {
    v1::EvaluateRequest request = EligiblePatient();
    request.clear_site_id();
    for (auto& fact : *request.mutable_facts()) {
      if (fact.name() == "assessment_date") fact.set_date("2022-01-01");
    }
    absl::StatusOr<v1::EvaluateResponse> response =
        client.Evaluate(EvaluationKind::kEligibility, request);
    if (!response.ok()) return response.status();
    return response->rule_set();
  }
  static bool Listed(const TrialRulesClient& client, const std::string& version) {
    const auto list = client.ListRuleSets("NCT04094766");
    if (!list.ok()) return false;
    for (const auto& info : list->rule_sets()) {
      if (info.rule_set().version() == version) return true;
    }
    return false;
  }

  fs::path root_, rules_, archive_;
  std::string v2_;
};

TEST_F(RulesArchiveServerTest, EveryFileLoadedIsArchivedBeforeItAnswersAndStaysThere) {
  ServerProcess server({"--rules-archive=" + archive_.string(), "--reload-interval-ms=50",
                        "--rules-settle-ms=0"},
                       rules_.string());
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(grpc::health::v1::HealthCheckResponse::SERVING))
      << server.Stderr();
  EXPECT_NE(server.Stderr().find("archived in " + archive_.string()), std::string::npos)
      << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(5));

  // At start: each bundled rule file and table, byte for byte; no site file,
  // nothing half-written.
  std::set<std::string> expected;
  for (const auto& entry : fs::directory_iterator(rules_)) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".sites.textproto")) continue;
    const std::string extension =
        absl::EndsWith(name, ".table.textproto") ? ".table.textproto" : ".textproto";
    const std::string bytes = ReadText(entry.path());
    EXPECT_EQ(Archived(bytes, extension), bytes) << name;
    expected.insert(Sha256Hex(bytes) + extension);
  }
  EXPECT_EQ(expected.size(), 6u);
  EXPECT_EQ(Names(archive_), expected);
  // An answer's sha256 names its archived file.
  absl::StatusOr<v1::RuleSetRef> answered = Answering(client);
  ASSERT_TRUE(answered.ok()) << answered.status();
  EXPECT_EQ(answered->version(), "2.0");
  const fs::path replayable = archive_ / (answered->sha256() + ".textproto");
  EXPECT_EQ(Sha256Hex(ReadText(replayable)), answered->sha256());

  // A new version: archived by the time any answer comes from it.
  const std::string v3 = Amendment("3.0", "2021-01-01");
  Write("NCT04094766-v3.0.textproto", v3);
  ASSERT_TRUE(WaitFor([&] {
    answered = Answering(client);
    return answered.ok() && answered->version() == "3.0";
  })) << server.Stderr();
  EXPECT_EQ(Archived(v3, ".textproto"), v3);
  EXPECT_EQ(answered->sha256(), Sha256Hex(v3));

  // A file removed from the rules directory: retired, and still archived.
  const std::string v1 = ReadText(rules_ / "NCT04094766-v1.0.textproto");
  fs::remove(rules_ / "NCT04094766-v1.0.textproto");
  ASSERT_TRUE(WaitFor([&] { return !Listed(client, "1.0"); })) << server.Stderr();
  EXPECT_EQ(Archived(v1, ".textproto"), v1);
  EXPECT_EQ(Names(archive_).size(), 7u);
}

TEST_F(RulesArchiveServerTest, WhenTheArchiveCannotBeWrittenTheNewRulesAreNotPublished) {
  ServerProcess server({"--rules-archive=" + archive_.string(), "--reload-interval-ms=50",
                        "--rules-settle-ms=0"},
                       rules_.string());
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(grpc::health::v1::HealthCheckResponse::SERVING))
      << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(5));

  // The archive's path now under a regular file (root ignores permissions).
  const fs::path moved = root_ / "archive.moved";
  fs::rename(archive_, moved);
  std::ofstream(archive_) << "not a directory";
  const std::string v3 = Amendment("3.0", "2021-01-01");
  const fs::path v3_path = rules_ / "NCT04094766-v3.0.textproto";
  Write(v3_path.filename().string(), v3);
  const std::string logged = "rules: cannot archive " + v3_path.string() + " (SHA-256 " +
                             Sha256Hex(v3) + "): cannot create a file in " +
                             archive_.string() +
                             ": Not a directory (errno 20); the new rules are not published, "
                             "those in force keep serving\n";
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(server.Stderr(), logged); }))
      << server.Stderr();
  EXPECT_GE(testing::WaitForSample(server, "trialrules_reloads_total{result=\"rejected\"}", 1),
            1);
  // Reloads go on failing; the catalog in force keeps answering, and the
  // failure is logged once.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  absl::StatusOr<v1::RuleSetRef> answered = Answering(client);
  ASSERT_TRUE(answered.ok()) << answered.status();
  EXPECT_EQ(answered->version(), "2.0");
  EXPECT_FALSE(Listed(client, "3.0"));
  EXPECT_EQ(server.Health(), grpc::health::v1::HealthCheckResponse::SERVING);
  const std::string log = server.Stderr();
  EXPECT_EQ(log.find(logged), log.rfind(logged)) << log;

  // The archive back: the new version is archived, then published.
  fs::remove(archive_);
  fs::rename(moved, archive_);
  ASSERT_TRUE(WaitFor([&] {
    answered = Answering(client);
    return answered.ok() && answered->version() == "3.0";
  })) << server.Stderr();
  EXPECT_EQ(Archived(v3, ".textproto"), v3);
  EXPECT_NE(server.Stderr().find("rules: archiving in " + archive_.string() + " works again"),
            std::string::npos)
      << server.Stderr();
}

TEST_F(RulesArchiveServerTest, AnArchiveThatCannotBeCreatedStopsTheStartNamingIt) {
  std::ofstream(root_ / "file") << "x";
  const fs::path under_a_file = root_ / "file" / "archive";
  ServerProcess server({"--rules-archive=" + under_a_file.string()}, rules_.string());
  EXPECT_EQ(server.WaitForExit(), 1) << server.Stderr();
  EXPECT_NE(server.Stderr().find("trialrules-server: rules archive " + under_a_file.string() +
                                 ": cannot create the directory " + under_a_file.string() +
                                 ": Not a directory (errno 20)"),
            std::string::npos)
      << server.Stderr();
}

}  // namespace
}  // namespace trialrules
