// The rules archive: real files in a temporary directory.
#include <sys/stat.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "service/catalog/reload.h"
#include "service/catalog/rules_archive.h"
#include "service/util/sha256.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::SourcePath;

class RulesArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("trialrules-archive-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // The names in `dir`, hidden ones too.
  static std::set<std::string> Names(const fs::path& dir) {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

  fs::path root_;
};

TEST_F(RulesArchiveTest, OpenCreatesTheDirectoryAndItsParents) {
  const fs::path dir = root_ / "a" / "b" / "archive";
  const absl::StatusOr<RulesArchive> archive = RulesArchive::Open(dir.string());
  ASSERT_TRUE(archive.ok()) << archive.status();
  ASSERT_TRUE(fs::is_directory(dir));
  struct stat status;
  ASSERT_EQ(::stat(dir.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0027, 0u);  // 0750 (less the umask)
  EXPECT_TRUE(Names(dir).empty());  // the probe file is gone
  EXPECT_TRUE(RulesArchive::Open(dir.string()).ok());  // already there
}

TEST_F(RulesArchiveTest, OpenRefusesAPathUnderARegularFileNamingItAndTheErrno) {
  std::ofstream(root_ / "file") << "x";
  const absl::StatusOr<RulesArchive> archive = RulesArchive::Open((root_ / "file/archive").string());
  ASSERT_FALSE(archive.ok());
  EXPECT_EQ(archive.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(archive.status().message().find((root_ / "file/archive").string()), std::string::npos)
      << archive.status();
  EXPECT_NE(archive.status().message().find("(errno 20)"), std::string::npos) << archive.status();

  const absl::StatusOr<RulesArchive> a_file = RulesArchive::Open((root_ / "file").string());
  EXPECT_FALSE(a_file.ok());
}

TEST_F(RulesArchiveTest, KeepWritesTheBytesUnderTheirHashReadOnlyAndLeavesNothingElse) {
  absl::StatusOr<RulesArchive> archive = RulesArchive::Open(root_.string());
  ASSERT_TRUE(archive.ok()) << archive.status();
  const std::string rules = ReadFile(SourcePath("rules/NCT04094766-v1.0.textproto"));
  const std::string table = ReadFile(SourcePath("rules/ctcae-5.0-1.0.table.textproto"));
  const std::string rules_sha = Sha256Hex(rules), table_sha = Sha256Hex(table);
  ASSERT_TRUE(archive->Keep(rules_sha, rules, ".textproto").ok());
  ASSERT_TRUE(archive->Keep(table_sha, table, ".table.textproto").ok());

  EXPECT_EQ(archive->PathOf(rules_sha, ".textproto"), (root_ / (rules_sha + ".textproto")).string());
  EXPECT_EQ(ReadFile(archive->PathOf(rules_sha, ".textproto")), rules);
  EXPECT_EQ(ReadFile(archive->PathOf(table_sha, ".table.textproto")), table);
  EXPECT_EQ(Names(root_), (std::set<std::string>{rules_sha + ".textproto",
                                                  table_sha + ".table.textproto"}));
  EXPECT_TRUE(archive->Kept(rules_sha, ".textproto"));
  EXPECT_FALSE(archive->Kept(rules_sha, ".table.textproto"));
  struct stat status;
  ASSERT_EQ(::stat(archive->PathOf(rules_sha, ".textproto").c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0440u);
}

TEST_F(RulesArchiveTest, KeepRefusesBytesWhoseHashIsNotTheNameAndWritesNothing) {
  absl::StatusOr<RulesArchive> archive = RulesArchive::Open(root_.string());
  ASSERT_TRUE(archive.ok());
  const std::string sha = Sha256Hex("the real bytes");
  const absl::Status refused = archive->Keep(sha, "other bytes", ".textproto");
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("not " + sha), std::string::npos) << refused;
  EXPECT_FALSE(archive->Kept(sha, ".textproto"));
  EXPECT_TRUE(Names(root_).empty());
}

TEST_F(RulesArchiveTest, KeepRefusesANameThatIsNotASha256OrAnExtensionOfRules) {
  absl::StatusOr<RulesArchive> archive = RulesArchive::Open(root_.string());
  ASSERT_TRUE(archive.ok());
  const std::string bytes = "x";
  const std::string sha = Sha256Hex(bytes);
  EXPECT_EQ(archive->Keep("../" + sha.substr(3), bytes, ".textproto").code(),
            absl::StatusCode::kInvalidArgument);
  std::string upper = sha;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_EQ(archive->Keep(upper, bytes, ".textproto").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(archive->Keep(sha, bytes, ".sites.textproto").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(archive->Keep(sha, bytes, "/../../x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Names(root_).empty());
}

TEST_F(RulesArchiveTest, AFileAlreadyArchivedIsNotWrittenAgain) {
  const std::string bytes = ReadFile(SourcePath("rules/NCT04094766-v2.0.textproto"));
  const std::string sha = Sha256Hex(bytes);
  {
    absl::StatusOr<RulesArchive> first = RulesArchive::Open(root_.string());
    ASSERT_TRUE(first->Keep(sha, bytes, ".textproto").ok());
  }
  struct stat before;
  ASSERT_EQ(::stat((root_ / (sha + ".textproto")).c_str(), &before), 0);
  // Another process (a restart, another replica) keeps the same file.
  absl::StatusOr<RulesArchive> second = RulesArchive::Open(root_.string());
  ASSERT_TRUE(second->Keep(sha, bytes, ".textproto").ok());
  EXPECT_TRUE(second->Kept(sha, ".textproto"));
  struct stat after;
  ASSERT_EQ(::stat((root_ / (sha + ".textproto")).c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(Names(root_).size(), 1u);
}

TEST_F(RulesArchiveTest, AWrongCopyUnderTheNameIsReplaced) {
  const std::string bytes = ReadFile(SourcePath("rules/NCT04094766-v2.0.textproto"));
  const std::string sha = Sha256Hex(bytes);
  std::ofstream(root_ / (sha + ".textproto")) << bytes.substr(0, bytes.size() / 2);  // cut short
  absl::StatusOr<RulesArchive> archive = RulesArchive::Open(root_.string());
  ASSERT_TRUE(archive->Keep(sha, bytes, ".textproto").ok());
  EXPECT_EQ(ReadFile(archive->PathOf(sha, ".textproto")), bytes);
  EXPECT_EQ(Names(root_).size(), 1u);
}

TEST_F(RulesArchiveTest, ADirectoryThatCannotBeWrittenFailsNamingItAndTheErrno) {
  const fs::path dir = root_ / "archive";
  absl::StatusOr<RulesArchive> archive = RulesArchive::Open(dir.string());
  ASSERT_TRUE(archive.ok());
  // The directory replaced by a regular file (root ignores permissions).
  fs::remove_all(dir);
  std::ofstream(dir) << "not a directory";
  const std::string bytes = "rules";
  const absl::Status failed = archive->Keep(Sha256Hex(bytes), bytes, ".textproto");
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(failed.message(), "cannot create a file in " + dir.string() +
                                  ": Not a directory (errno 20)");
  EXPECT_FALSE(archive->Kept(Sha256Hex(bytes), ".textproto"));
}

// A rules directory read into a catalog, and that catalog's files archived.
class ArchiveCatalogFilesTest : public RulesArchiveTest {
 protected:
  void SetUp() override {
    RulesArchiveTest::SetUp();
    rules_ = root_ / "rules";
    fs::create_directories(rules_);
    for (const char* name :
         {"NCT04094766-v1.0.textproto", "NCT04094766-v2.0.textproto",
          "NCT04094766.sites.textproto", "ctcae-5.0-1.0.table.textproto"}) {
      Write(name, ReadFile(SourcePath(std::string("rules/") + name)));
    }
    absl::StatusOr<RulesArchive> archive = RulesArchive::Open((root_ / "archive").string());
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_.emplace(*std::move(archive));
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(rules_ / name, std::ios::binary | std::ios::trunc) << text;
  }
  CatalogReload Reload() {
    CatalogReload reload = ReloadCatalog(rules_.string(), current_.get());
    current_ = reload.catalog;
    return reload;
  }

  fs::path rules_;
  std::optional<RulesArchive> archive_;
  std::shared_ptr<const Catalog> current_;
};

TEST_F(ArchiveCatalogFilesTest, EveryRuleFileAndTableIsKeptAndTheArchiveLoadsAsRules) {
  const CatalogReload reload = Reload();
  ASSERT_EQ(reload.catalog->rule_sets().size(), 2u);
  ASSERT_EQ(reload.catalog->tables().size(), 1u);
  ASSERT_EQ(reload.loaded.size(), 3u);
  ASSERT_TRUE(ArchiveCatalogFiles(reload, &*archive_).ok());
  std::set<std::string> expected;
  for (const char* name : {"NCT04094766-v1.0.textproto", "NCT04094766-v2.0.textproto"}) {
    const std::string bytes = ReadFile((rules_ / name).string());
    expected.insert(Sha256Hex(bytes) + ".textproto");
    EXPECT_EQ(ReadFile(archive_->PathOf(Sha256Hex(bytes), ".textproto")), bytes) << name;
  }
  const std::string table = ReadFile((rules_ / "ctcae-5.0-1.0.table.textproto").string());
  expected.insert(Sha256Hex(table) + ".table.textproto");
  EXPECT_EQ(Names(archive_->dir()), expected);  // no site files, nothing half-written

  // The archive read as a rules directory gives the same versions.
  const CatalogReload archived = ReloadCatalog(archive_->dir(), nullptr);
  EXPECT_TRUE(archived.catalog->refused().empty());
  std::set<std::string> served, read_back;
  for (const auto& rule_set : reload.catalog->rule_sets()) served.insert(rule_set->sha256());
  for (const auto& table : reload.catalog->tables()) served.insert(table->sha256());
  for (const auto& rule_set : archived.catalog->rule_sets()) read_back.insert(rule_set->sha256());
  for (const auto& table : archived.catalog->tables()) read_back.insert(table->sha256());
  EXPECT_EQ(read_back, served);
}

TEST_F(ArchiveCatalogFilesTest, ANewVersionIsKeptAndAFileRemovedFromTheRulesStays) {
  ASSERT_TRUE(ArchiveCatalogFiles(Reload(), &*archive_).ok());
  const std::string v1 = ReadFile((rules_ / "NCT04094766-v1.0.textproto").string());
  const std::string v3 = absl::StrReplaceAll(
      ReadFile((rules_ / "NCT04094766-v2.0.textproto").string()),
      {{"version: \"2.0\"", "version: \"3.0\""},
       {"effective_from: \"2020-06-01\"", "effective_from: \"2021-01-01\""}});
  Write("NCT04094766-v3.0.textproto", v3);
  fs::remove(rules_ / "NCT04094766-v1.0.textproto");
  const CatalogReload reload = Reload();
  ASSERT_EQ(reload.added.size(), 1u);
  ASSERT_EQ(reload.retired.size(), 1u);
  ASSERT_EQ(reload.loaded.size(), 1u);  // only the new file was read into the catalog
  ASSERT_TRUE(ArchiveCatalogFiles(reload, &*archive_).ok());
  EXPECT_EQ(ReadFile(archive_->PathOf(Sha256Hex(v3), ".textproto")), v3);
  EXPECT_EQ(ReadFile(archive_->PathOf(Sha256Hex(v1), ".textproto")), v1);
  EXPECT_EQ(Names(archive_->dir()).size(), 4u);
}

TEST_F(ArchiveCatalogFilesTest, AFailureNamesTheFileAndTheErrno) {
  CatalogReload reload = Reload();
  fs::remove_all(archive_->dir());
  std::ofstream(archive_->dir()) << "not a directory";
  const absl::Status failed = ArchiveCatalogFiles(reload, &*archive_);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("cannot archive " + (rules_ / "NCT04094766-v1.0.textproto").string() +
                                  " (SHA-256 "),
            std::string::npos)
      << failed;
  EXPECT_NE(failed.message().find("Not a directory (errno 20)"), std::string::npos) << failed;
}

// A file the reload did not read is read again, and refused when its bytes
// are no longer the ones loaded (changed under the reload).
TEST_F(ArchiveCatalogFilesTest, AFileNotReadByTheReloadIsReadAgainAndRefusedIfItChanged) {
  CatalogReload reload = Reload();
  reload.loaded.clear();
  Write("NCT04094766-v2.0.textproto", "changed");
  const absl::Status refused = ArchiveCatalogFiles(reload, &*archive_);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("NCT04094766-v2.0.textproto: its bytes changed since it was "
                                   "loaded"),
            std::string::npos)
      << refused;
  // The files not changed were read again and kept (v1 comes first).
  const std::string v1 = ReadFile((rules_ / "NCT04094766-v1.0.textproto").string());
  EXPECT_EQ(ReadFile(archive_->PathOf(Sha256Hex(v1), ".textproto")), v1);
}

}  // namespace
}  // namespace trialrules
