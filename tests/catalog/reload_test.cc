// Reading a rules directory again: real files on disk, every bad-file case.
#include <filesystem>
#include <fstream>

#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "service/catalog/reload.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::SourcePath;

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("trialrules-reload-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    v1_ = ReadFile(SourcePath("rules/NCT04094766-v1.0.textproto"));
    v2_ = ReadFile(SourcePath("rules/NCT04094766-v2.0.textproto"));
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary | std::ios::trunc) << text;
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  CatalogReload Reload() {
    CatalogReload reload = ReloadCatalog(dir_.string(), current_.get());
    current_ = reload.catalog;
    return reload;
  }
  std::vector<std::string> Versions() const {
    std::vector<std::string> versions;
    for (const auto& rule_set : current_->rule_sets()) versions.push_back(rule_set->version());
    return versions;
  }
  // v2's text as another version.
  std::string V2As(const std::string& version) const {
    return absl::StrReplaceAll(v2_, {{"version: \"2.0\"", "version: \"" + version + "\""}});
  }

  fs::path dir_;
  std::string v1_, v2_;
  std::shared_ptr<const Catalog> current_;
};

TEST_F(ReloadTest, LoadsEveryFileAtStart) {
  Write("a.textproto", v1_);
  Write("b.textproto", v2_);
  const CatalogReload reload = Reload();
  EXPECT_TRUE(reload.changed);
  EXPECT_EQ(Versions(), (std::vector<std::string>{"1.0", "2.0"}));
  EXPECT_EQ(reload.added.size(), 2u);
}

TEST_F(ReloadTest, UnchangedFilesKeepTheirCompiledRuleSets) {
  Write("a.textproto", v1_);
  Reload();
  const RuleSet* before = current_->rule_sets()[0].get();
  const CatalogReload again = Reload();
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(current_->rule_sets()[0].get(), before);
}

TEST_F(ReloadTest, BadFileNeverReplacesAGoodVersion) {
  Write("a.textproto", v1_);
  Reload();
  const RuleSet* good = current_->rule_sets()[0].get();
  Write("a.textproto", v1_ + "\nnot_a_field: 1\n");
  const CatalogReload reload = Reload();
  EXPECT_TRUE(reload.changed);
  ASSERT_EQ(current_->rule_sets().size(), 1u);
  EXPECT_EQ(current_->rule_sets()[0].get(), good);
  ASSERT_EQ(current_->refused().size(), 1u);
  EXPECT_EQ(current_->refused()[0].file, Path("a.textproto"));
  EXPECT_GT(current_->refused()[0].line, 0);
  EXPECT_NE(current_->refused()[0].message.find("no field named \"not_a_field\""),
            std::string::npos);
}

TEST_F(ReloadTest, HalfWrittenFileIsRefusedUntilComplete) {
  Write("a.textproto", v1_);
  Write("b.textproto", v2_.substr(0, v2_.size() / 2));
  Reload();
  EXPECT_EQ(Versions(), std::vector<std::string>{"1.0"});
  EXPECT_FALSE(current_->refused().empty());
  Write("b.textproto", v2_);
  Reload();
  EXPECT_EQ(Versions(), (std::vector<std::string>{"1.0", "2.0"}));
  EXPECT_TRUE(current_->refused().empty());
}

TEST_F(ReloadTest, ChangedContentUnderAServedVersionIsRefused) {
  Write("a.textproto", v1_);
  Reload();
  const RuleSet* good = current_->rule_sets()[0].get();
  good->MarkServed();
  Write("a.textproto", v1_ + "# edited in place\n");
  Reload();
  ASSERT_EQ(current_->rule_sets().size(), 1u);
  EXPECT_EQ(current_->rule_sets()[0].get(), good);
  ASSERT_FALSE(current_->refused().empty());
  const std::string message = current_->refused().back().ToString();
  EXPECT_NE(message.find("a loaded version never changes: give the change a new version"),
            std::string::npos)
      << message;
}

// A version loaded from a file that was then completed or corrected, before
// any decision was answered under it: the file's new content replaces it.
TEST_F(ReloadTest, ChangedContentOfAVersionNeverServedReplacesIt) {
  Write("a.textproto", v1_);
  Reload();
  const std::string first = current_->rule_sets()[0]->sha256();
  Write("a.textproto", v1_ + "# completed\n");
  const CatalogReload reload = Reload();
  ASSERT_EQ(current_->rule_sets().size(), 1u);
  EXPECT_NE(current_->rule_sets()[0]->sha256(), first);
  EXPECT_TRUE(current_->refused().empty());
  ASSERT_EQ(reload.replaced.size(), 1u);
  EXPECT_TRUE(reload.retired.empty());
}

// A file still being written is not loaded until its bytes have read the
// same for the settle period; the version in force keeps serving meanwhile.
TEST_F(ReloadTest, AChangedFileWaitsToSettle) {
  ReloadMemory memory;
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  auto reload_at = [&](absl::Duration since_start) {
    CatalogReload reload = ReloadCatalog(dir_.string(), current_.get(), &memory,
                                         {start + since_start, absl::Seconds(1)});
    current_ = reload.catalog;
    return reload;
  };
  Write("a.textproto", v1_);
  reload_at(absl::ZeroDuration());  // the first read loads what is there
  EXPECT_EQ(Versions(), std::vector<std::string>{"1.0"});

  Write("b.textproto", v2_.substr(0, v2_.size() / 2));
  EXPECT_EQ(reload_at(absl::Seconds(2)).unsettled, std::vector<std::string>{Path("b.textproto")});
  Write("b.textproto", v2_);  // still being written: the clock starts again
  EXPECT_EQ(reload_at(absl::Seconds(2.5)).unsettled.size(), 1u);
  EXPECT_EQ(Versions(), std::vector<std::string>{"1.0"});
  EXPECT_TRUE(current_->refused().empty());
  EXPECT_TRUE(reload_at(absl::Seconds(3.5)).unsettled.empty());
  EXPECT_EQ(Versions(), (std::vector<std::string>{"1.0", "2.0"}));
}

// A refused file is compiled once; reading it again unchanged reuses why it
// was refused, and a change is compiled again.
TEST_F(ReloadTest, ARefusedFileIsNotCompiledAgainUntilItChanges) {
  ReloadMemory memory;
  Write("a.textproto", v1_ + "\nnot_a_field: 1\n");
  CatalogReload first = ReloadCatalog(dir_.string(), nullptr, &memory);
  ASSERT_EQ(memory.refused.size(), 1u);
  memory.refused.begin()->second.problems[0].message = "remembered";
  CatalogReload again = ReloadCatalog(dir_.string(), first.catalog.get(), &memory);
  ASSERT_EQ(again.catalog->refused().size(), 1u);
  EXPECT_EQ(again.catalog->refused()[0].message, "remembered");
  Write("a.textproto", v1_);
  CatalogReload fixed = ReloadCatalog(dir_.string(), again.catalog.get(), &memory);
  EXPECT_EQ(fixed.catalog->rule_sets().size(), 1u);
  EXPECT_TRUE(memory.refused.empty());
}

TEST_F(ReloadTest, SecondFileClaimingALoadedVersionIsRefused) {
  Write("a.textproto", v1_);
  Reload();
  Write("b.textproto", v1_ + "# a copy\n");
  Reload();
  ASSERT_EQ(current_->rule_sets().size(), 1u);
  EXPECT_EQ(current_->rule_sets()[0]->definition().file_name, Path("a.textproto"));
  ASSERT_EQ(current_->refused().size(), 1u);
  EXPECT_EQ(current_->refused()[0].file, Path("b.textproto"));
}

TEST_F(ReloadTest, NewcomerWithTheSameContentUnderAnotherNameIsRefused) {
  Write("a.textproto", v1_);
  Reload();
  Write("b.textproto", v1_);
  Reload();
  ASSERT_EQ(current_->rule_sets().size(), 1u);
  EXPECT_EQ(current_->refused()[0].message,
            "protocol NCT04094766 version 1.0 is already loaded from " + Path("a.textproto") +
                "; this file is refused");
}

TEST_F(ReloadTest, BadFileDoesNotHoldBackOthers) {
  Write("a.textproto", v1_);
  Reload();
  Write("bad.textproto", "protocol_id: ");
  Write("c.textproto", V2As("3.0"));
  const CatalogReload reload = Reload();
  EXPECT_EQ(Versions(), (std::vector<std::string>{"1.0", "3.0"}));
  EXPECT_EQ(reload.added.size(), 1u);
  EXPECT_EQ(current_->refused().size(), 1u);
}

TEST_F(ReloadTest, RemovedFileRetiresItsVersion) {
  Write("a.textproto", v1_);
  Write("b.textproto", v2_);
  Reload();
  fs::remove(dir_ / "b.textproto");
  const CatalogReload reload = Reload();
  EXPECT_EQ(Versions(), std::vector<std::string>{"1.0"});
  ASSERT_EQ(reload.retired.size(), 1u);
  EXPECT_EQ(reload.retired[0], "NCT04094766 version 2.0 from " + Path("b.textproto"));
}

TEST_F(ReloadTest, UnreadableFileKeepsItsVersion) {
  Write("a.textproto", v1_);
  Reload();
  // A dangling symlink: the file vanished while the directory still names it.
  fs::remove(dir_ / "a.textproto");
  fs::create_symlink(dir_ / "gone" / "a.textproto", dir_ / "a.textproto");
  Reload();
  EXPECT_EQ(Versions(), std::vector<std::string>{"1.0"});
}

}  // namespace
}  // namespace trialrules

namespace trialrules {
namespace {

class SiteActivationTest : public ReloadTest {
 protected:
  void SetUp() override {
    ReloadTest::SetUp();
    Write("v1.textproto", v1_);
    Write("v2.textproto", v2_);
    Write("NCT04094766.sites.textproto",
          ReadFile(SourcePath("rules/NCT04094766.sites.textproto")));
    Reload();
  }
  std::string Version(const std::string& site, const std::string& date) {
    auto rule_set = current_->Select({"NCT04094766", "", *ParseIsoDate(date), site}, TodayUtc());
    return rule_set.ok() ? (*rule_set)->version() : std::string(rule_set.status().message());
  }
};

TEST_F(SiteActivationTest, SiteAnswersWithTheVersionItActivated) {
  EXPECT_EQ(Version("XIAN-01", "2020-07-01"), "2.0");
  EXPECT_EQ(Version("XIAN-02", "2020-07-01"), "1.0");  // not approved there yet
  EXPECT_EQ(Version("XIAN-02", "2020-08-31"), "1.0");
  EXPECT_EQ(Version("XIAN-02", "2020-09-01"), "2.0");
}

TEST_F(SiteActivationTest, UnlistedSiteFollowsEffectiveDates) {
  EXPECT_EQ(Version("ELSEWHERE", "2020-07-01"), "2.0");
  EXPECT_EQ(Version("", "2020-05-31"), "1.0");
}

TEST_F(SiteActivationTest, BeforeAnyActivationIsFailedPrecondition) {
  auto none = current_->Select({"NCT04094766", "", *ParseIsoDate("2019-10-01"), "XIAN-02"}, TodayUtc());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(none.status().message(),
            "site_id \"XIAN-02\": no version of NCT04094766 was activated at this site on "
            "or before 2019-10-01");
}

TEST_F(SiteActivationTest, ExplicitVersionWinsOverTheSite) {
  auto named = current_->Select({"NCT04094766", "2.0", *ParseIsoDate("2020-07-01"), "XIAN-02"}, TodayUtc());
  ASSERT_TRUE(named.ok());
  EXPECT_EQ((*named)->version(), "2.0");
}

TEST_F(SiteActivationTest, BadSiteFileKeepsThePreviousActivations) {
  Write("NCT04094766.sites.textproto", "protocol_id: \"NCT04094766\" sites { site_id: ");
  Reload();
  EXPECT_EQ(Version("XIAN-02", "2020-07-01"), "1.0");
  ASSERT_FALSE(current_->refused().empty());
  EXPECT_EQ(current_->refused()[0].file, Path("NCT04094766.sites.textproto"));
}

// Each protocol has its own site file; the same site id in both means two
// independent schedules, and a bad file of one leaves the other's in force.
TEST_F(SiteActivationTest, EachProtocolHasItsOwnSiteActivations) {
  Write("other.textproto", ReadFile(SourcePath("rules/NCT03671460-v1.0.textproto")));
  Write("NCT03671460.sites.textproto",
        "protocol_id: \"NCT03671460\"\n"
        "sites { site_id: \"XIAN-02\" activations { version: \"1.0\" activated_on: \"2019-01-01\" } }\n");
  Reload();
  auto other = [&](const std::string& date) {
    auto rule_set = current_->Select({"NCT03671460", "", *ParseIsoDate(date), "XIAN-02"}, TodayUtc());
    return rule_set.ok() ? (*rule_set)->version() : std::string(rule_set.status().message());
  };
  EXPECT_EQ(other("2019-02-01"), "1.0");
  EXPECT_EQ(other("2018-12-01"),
            "site_id \"XIAN-02\": no version of NCT03671460 was activated at this site on or "
            "before 2018-12-01");
  EXPECT_EQ(Version("XIAN-02", "2020-07-01"), "1.0");  // NCT04094766's own schedule
  Write("NCT03671460.sites.textproto", "protocol_id: \"NCT03671460\" sites { site_id: ");
  Reload();
  EXPECT_EQ(other("2019-02-01"), "1.0");  // the previous activations stay
  EXPECT_EQ(Version("XIAN-02", "2020-09-01"), "2.0");
}

TEST_F(ReloadTest, DecisionTablesLoadBesideRuleFilesAndKeepTheirLastGoodVersion) {
  const std::string crs = ReadFile(SourcePath("rules/astct-crs-2019-1.0.table.textproto"));
  Write("a.textproto", v1_);
  Write("crs.table.textproto", crs);
  CatalogReload reload = Reload();
  ASSERT_EQ(current_->tables().size(), 1u);
  EXPECT_EQ(current_->tables()[0]->table_id(), "astct-crs-2019");
  EXPECT_TRUE(current_->refused().empty());
  // v1 names three tables; the two not in the directory are reported, and
  // v1 serves all the same.
  ASSERT_EQ(reload.missing_tables.size(), 2u);
  EXPECT_NE(reload.missing_tables[0].message.find(
                "uses decision table astct-icans-2019 version 1.0, which is not loaded"),
            std::string::npos);
  EXPECT_EQ(Versions(), (std::vector<std::string>{"1.0"}));

  const DecisionTableSet* good = current_->tables()[0].get();
  Write("crs.table.textproto", crs + "\nnot_a_field: 1\n");
  reload = Reload();
  ASSERT_EQ(current_->tables().size(), 1u);
  EXPECT_EQ(current_->tables()[0].get(), good);
  ASSERT_FALSE(current_->refused().empty());
  EXPECT_EQ(current_->refused()[0].file, Path("crs.table.textproto"));

  // Other content under a version that graded an answer is refused.
  good->MarkServed();
  Write("crs.table.textproto", absl::StrReplaceAll(crs, {{"title: \"", "title: \"Changed "}}));
  reload = Reload();
  EXPECT_EQ(current_->tables()[0].get(), good);
  ASSERT_FALSE(current_->refused().empty());
  EXPECT_NE(current_->refused()[0].message.find(
                "decision table astct-crs-2019 version 1.0 is already loaded"),
            std::string::npos)
      << current_->refused()[0].message;

  fs::remove(dir_ / "crs.table.textproto");
  reload = Reload();
  EXPECT_TRUE(current_->tables().empty());
  ASSERT_EQ(reload.retired.size(), 1u);
  EXPECT_NE(reload.retired[0].find("table astct-crs-2019 version 1.0"), std::string::npos);
}

TEST_F(ReloadTest, OneProtocolsBrokenOrRemovedFileNeverDisturbsTheOther) {
  const std::string second = ReadFile(SourcePath("rules/NCT03671460-v1.0.textproto"));
  Write("a.textproto", v1_);
  Write("b.textproto", second);
  Reload();
  ASSERT_EQ(current_->rule_sets().size(), 2u);
  const RuleSet* first = current_->rule_sets()[1].get();   // NCT04094766 sorts second
  const RuleSet* other = current_->rule_sets()[0].get();
  ASSERT_EQ(other->protocol_id(), "NCT03671460");
  Write("b.textproto", second.substr(0, second.size() / 2));  // cut short
  CatalogReload reload = Reload();
  ASSERT_EQ(current_->rule_sets().size(), 2u);
  EXPECT_EQ(current_->rule_sets()[0].get(), other);  // its last good version
  EXPECT_EQ(current_->rule_sets()[1].get(), first);  // untouched
  ASSERT_FALSE(current_->refused().empty());
  EXPECT_EQ(current_->refused()[0].file, Path("b.textproto"));
  fs::remove(dir_ / "b.textproto");
  reload = Reload();
  ASSERT_EQ(current_->rule_sets().size(), 1u);
  EXPECT_EQ(current_->rule_sets()[0].get(), first);
  EXPECT_EQ(reload.retired,
            std::vector<std::string>{"NCT03671460 version 1.0 from " + Path("b.textproto")});
}

}  // namespace
}  // namespace trialrules
