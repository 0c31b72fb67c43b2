#include "service/catalog/rules_archive.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "service/util/file.h"
#include "service/util/sha256.h"

namespace trialrules {
namespace {

namespace fs = std::filesystem;

// "cannot WHAT PATH: REASON (errno N)".
absl::Status Failed(absl::string_view what, absl::string_view path, int error) {
  return absl::UnavailableError(absl::StrCat("cannot ", what, " ", path, ": ",
                                             std::strerror(error), " (errno ", error, ")"));
}

bool IsSha256Hex(absl::string_view text) {
  if (text.size() != 64) return false;
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Failed("open the directory", dir, errno);
  const int synced = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  return synced == 0 ? absl::OkStatus() : Failed("sync the directory", dir, error);
}

// Creates `dir` and each missing parent (mode 0750, less the umask), and
// syncs the directory each new one was made in.
absl::Status MakeDirectories(const std::string& dir) {
  fs::path so_far;
  for (const fs::path& part : fs::path(dir)) {
    so_far /= part;
    if (part.empty()) continue;  // a trailing separator
    if (::mkdir(so_far.c_str(), 0750) == 0) {
      const fs::path parent = so_far.parent_path();
      absl::Status synced = SyncDirectory(parent.empty() ? "." : parent.string());
      if (!synced.ok()) return synced;
    } else if (errno != EEXIST) {
      return Failed("create the directory", so_far.string(), errno);
    }
  }
  struct stat status;
  if (::stat(dir.c_str(), &status) != 0) return Failed("open the directory", dir, errno);
  if (!S_ISDIR(status.st_mode)) return Failed("open the directory", dir, ENOTDIR);
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, absl::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return Failed("write", path, written < 0 ? errno : ENOSPC);
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

// Whether `path` holds exactly the bytes whose SHA-256 is `sha256_hex`,
// synced to disk (a copy left by a process that stopped before its own
// sync counts once synced here).
bool InPlace(const std::string& path, absl::string_view sha256_hex, size_t size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string there;
  char buffer[65536];
  ssize_t n = 0;
  while (there.size() <= size && ((n = ::read(fd, buffer, sizeof buffer)) > 0 ||
                                   (n < 0 && errno == EINTR))) {
    if (n > 0) there.append(buffer, static_cast<size_t>(n));
  }
  const bool same = n >= 0 && there.size() == size && Sha256Hex(there) == sha256_hex &&
                    ::fsync(fd) == 0;
  ::close(fd);
  return same;
}

}  // namespace

absl::StatusOr<RulesArchive> RulesArchive::Open(std::string dir) {
  if (dir.empty()) return absl::InvalidArgumentError("no rules archive directory given");
  if (absl::Status made = MakeDirectories(dir); !made.ok()) {
    return absl::Status(made.code(), absl::StrCat("rules archive ", dir, ": ", made.message()));
  }
  // A directory where nothing can be created (read-only, not ours) is
  // refused now rather than at the first reload.
  std::string probe = (fs::path(dir) / ".probe-XXXXXX").string();
  const int fd = ::mkostemp(probe.data(), O_CLOEXEC);
  if (fd < 0) {
    const absl::Status failed = Failed("create a file in", dir, errno);
    return absl::Status(failed.code(), absl::StrCat("rules archive ", dir, ": ", failed.message()));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return RulesArchive(std::move(dir));
}

std::string RulesArchive::PathOf(absl::string_view sha256_hex,
                                 absl::string_view extension) const {
  return (fs::path(dir_) / absl::StrCat(sha256_hex, extension)).string();
}

bool RulesArchive::Kept(absl::string_view sha256_hex, absl::string_view extension) const {
  return kept_.contains(absl::StrCat(sha256_hex, extension));
}

absl::Status RulesArchive::Keep(absl::string_view sha256_hex, absl::string_view bytes,
                                absl::string_view extension) {
  if (!IsSha256Hex(sha256_hex)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", sha256_hex, "\" is not a SHA-256 in lowercase hex"));
  }
  if (extension != kRuleFileExtension && extension != kTableFileExtension) {
    return absl::InvalidArgumentError(absl::StrCat("\"", extension, "\" is not ",
                                                   kRuleFileExtension, " or ",
                                                   kTableFileExtension));
  }
  std::string name = absl::StrCat(sha256_hex, extension);
  if (kept_.contains(name)) return absl::OkStatus();
  if (const std::string actual = Sha256Hex(bytes); actual != sha256_hex) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the bytes' SHA-256 is ", actual, ", not ", sha256_hex, "; nothing is archived"));
  }
  const std::string path = PathOf(sha256_hex, extension);
  if (InPlace(path, sha256_hex, bytes.size())) {
    if (absl::Status synced = SyncDirectory(dir_); !synced.ok()) return synced;
    kept_.insert(std::move(name));
    return absl::OkStatus();
  }
  // Hidden, so that a reader of the directory as a rules directory never
  // sees a file being written.
  std::string temporary = (fs::path(dir_) / absl::StrCat(".", name, ".XXXXXX")).string();
  const int fd = ::mkostemp(temporary.data(), O_CLOEXEC);
  if (fd < 0) return Failed("create a file in", dir_, errno);
  absl::Status status = WriteAll(fd, bytes, temporary);
  if (status.ok() && ::fchmod(fd, 0440) != 0) status = Failed("set the mode of", temporary, errno);
  if (status.ok() && ::fsync(fd) != 0) status = Failed("sync", temporary, errno);
  if (::close(fd) != 0 && status.ok()) status = Failed("close", temporary, errno);
  if (status.ok() && ::rename(temporary.c_str(), path.c_str()) != 0) {
    status = Failed(absl::StrCat("rename ", temporary, " to"), path, errno);
  }
  if (!status.ok()) {
    ::unlink(temporary.c_str());
    return status;
  }
  if (status = SyncDirectory(dir_); !status.ok()) return status;
  kept_.insert(std::move(name));
  return absl::OkStatus();
}

absl::Status ArchiveCatalogFiles(const CatalogReload& reload, RulesArchive* archive) {
  if (reload.catalog == nullptr) return absl::OkStatus();
  auto keep = [&](const std::string& sha256, const std::string& file,
                  bool table) -> absl::Status {
    const absl::string_view extension = table ? kTableFileExtension : kRuleFileExtension;
    if (archive->Kept(sha256, extension)) return absl::OkStatus();
    const std::string* bytes = nullptr;
    for (const CatalogReload::LoadedFile& loaded : reload.loaded) {
      if (loaded.sha256 == sha256 && loaded.table == table) {
        bytes = &loaded.bytes;
        break;
      }
    }
    absl::StatusOr<std::string> read_again;
    if (bytes == nullptr) {
      read_again = ReadFileBytes(file);
      if (!read_again.ok()) {
        return absl::Status(read_again.status().code(),
                            absl::StrCat("cannot archive ", file, ": reading it again: ",
                                         read_again.status().message()));
      }
      if (Sha256Hex(*read_again) != sha256) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot archive ", file, ": its bytes changed since it was loaded "
                         "with SHA-256 ", sha256));
      }
      bytes = &*read_again;
    }
    absl::Status kept = archive->Keep(sha256, *bytes, extension);
    if (!kept.ok()) {
      return absl::Status(kept.code(), absl::StrCat("cannot archive ", file, " (SHA-256 ",
                                                    sha256, "): ", kept.message()));
    }
    return absl::OkStatus();
  };
  for (const auto& rule_set : reload.catalog->rule_sets()) {
    absl::Status kept = keep(rule_set->sha256(), rule_set->definition().file_name, false);
    if (!kept.ok()) return kept;
  }
  for (const auto& tables : reload.catalog->tables()) {
    absl::Status kept = keep(tables->sha256(), tables->header().file_name, true);
    if (!kept.ok()) return kept;
  }
  return absl::OkStatus();
}

}  // namespace trialrules
