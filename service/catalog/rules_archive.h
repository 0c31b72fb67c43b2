// The rules archive: every rule file and decision-table file the server has
// loaded, kept by the SHA-256 of its bytes, so that an audited decision can
// be replayed under the exact file its record names (`trialrules replay`).
// Files only: the engine knows nothing of it.
#ifndef TRIALRULES_SERVICE_CATALOG_RULES_ARCHIVE_H_
#define TRIALRULES_SERVICE_CATALOG_RULES_ARCHIVE_H_

#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/catalog/reload.h"

namespace trialrules {

// A directory of files named `<sha256><extension>`: `<sha256>.textproto`
// for rule files and `<sha256>.table.textproto` for decision tables, so
// that the directory is itself a rules directory the loader can read. It
// only grows: a file is written once, whole and durably, and never
// removed. Thread-compatible.
class RulesArchive {
 public:
  // Opens `dir`, creating it (and its missing parents, mode 0750) if need
  // be, and checks that a file can be created in it. Unavailable, naming
  // the directory and the errno, when it cannot.
  static absl::StatusOr<RulesArchive> Open(std::string dir);

  // Keeps `bytes` as PathOf(sha256_hex, extension) unless it is there
  // already with those bytes: written to a temporary file (hidden, in the
  // same directory), fsync'ed, renamed into place, and the directory
  // fsync'ed. A copy there already is read and its hash checked once per
  // process (a wrong one is replaced); afterwards Kept() answers from
  // memory, without touching the disk. InvalidArgument when `sha256_hex`
  // is not 64 lowercase hex digits, when `extension` is not `.textproto`
  // or `.table.textproto`, or when the bytes' SHA-256 is not `sha256_hex`
  // (nothing is written then); Unavailable naming the path and the errno
  // when the disk refuses.
  absl::Status Keep(absl::string_view sha256_hex, absl::string_view bytes,
                    absl::string_view extension);

  // Whether Keep() kept that file in this process.
  bool Kept(absl::string_view sha256_hex, absl::string_view extension) const;

  // `<dir>/<sha256_hex><extension>`.
  std::string PathOf(absl::string_view sha256_hex, absl::string_view extension) const;

  const std::string& dir() const { return dir_; }

 private:
  explicit RulesArchive(std::string dir) : dir_(std::move(dir)) {}

  std::string dir_;
  std::set<std::string, std::less<>> kept_;  // file names known to be in place
};

// Keeps every rule set's and decision-table set's file of `reload.catalog`
// in `archive` that is not kept already, with the bytes `reload.loaded`
// holds for it. A file the reload did not read (none, when every catalog
// published went through here) is read again, and refused if its bytes no
// longer have the hash it was loaded with. The first failure is returned,
// naming the file and why: then `reload.catalog` must not be published.
absl::Status ArchiveCatalogFiles(const CatalogReload& reload, RulesArchive* archive);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_CATALOG_RULES_ARCHIVE_H_
