// Reading a rules directory into a catalog, off the request path: which
// files are rule files, loading each, and merging a new read with the
// catalog in force so that a bad or changed file never replaces a good
// version.
#ifndef TRIALRULES_SERVICE_CATALOG_RELOAD_H_
#define TRIALRULES_SERVICE_CATALOG_RELOAD_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "service/catalog/catalog.h"
#include "service/engine/keep_going.h"
#include "service/engine/decision_table.h"
#include "service/engine/loader.h"

namespace trialrules {

// The file extension of rule files in a rules directory.
inline constexpr absl::string_view kRuleFileExtension = ".textproto";
// Site-activation files (one per protocol) end so; they are not rule files.
inline constexpr absl::string_view kSiteFileExtension = ".sites.textproto";
// Decision-table files end so; they are not rule files either.
inline constexpr absl::string_view kTableFileExtension = ".table.textproto";

struct FileLoad {
  std::string path;
  LoadResult result;
};

// Expands each path: a file stays as it is; a directory gives its
// `*.textproto` files (not hidden, sorted by name), site-activation and
// decision-table files aside. A directory that cannot be listed is
// reported in `problems`.
std::vector<std::string> ListRuleFiles(absl::Span<const std::string> paths,
                                       std::vector<Problem>* problems);
// The same for decision-table files (`*.table.textproto`).
std::vector<std::string> ListTableFiles(absl::Span<const std::string> paths);

struct TableFileLoad {
  std::string path;
  TableLoadResult result;
};
// Loads each file ListTableFiles() gives.
std::vector<TableFileLoad> LoadTableFiles(absl::Span<const std::string> paths);

// Loads each file ListRuleFiles() gives. A file that cannot be read is a
// problem too.
std::vector<FileLoad> LoadRuleFiles(absl::Span<const std::string> paths);

// What the reader of a rules directory remembers from one read to the next.
struct ReloadMemory {
  // New or changed files not loaded yet: their bytes and when they were
  // first read so. Thread-compatible, like the reload that uses it.
  struct Unsettled {
    std::string sha256;
    absl::Time first_read;
  };
  std::map<std::string, Unsettled> unsettled;  // by path
  // Refused files by path: their bytes' SHA-256 and why. A refused file is
  // not compiled again until its bytes change.
  struct Refused {
    std::string sha256;
    std::vector<Problem> problems;
  };
  std::map<std::string, Refused> refused;
};

struct ReloadOptions {
  absl::Time now = absl::Now();
  // A new or changed file is loaded only once its bytes have read the same
  // for this long (with a ReloadMemory, and not at the first read): a file
  // still being copied or saved is never loaded half-written.
  absl::Duration settle = absl::ZeroDuration();
  // Asked while files load: a status other than OK stops the reload (a
  // server shutting down does not wait for a rule file's self-test). The
  // catalog of a stopped reload must not be published.
  KeepGoing keep_going = AlwaysKeepGoing;
};

// What reading a rules directory again did to the catalog in force.
struct CatalogReload {
  std::shared_ptr<const Catalog> catalog;  // to publish
  std::vector<std::string> added;          // "NCT04094766 version 3.0 from FILE"
  std::vector<std::string> retired;
  // Versions whose file changed before any decision was answered under
  // them: the new content replaces them ("NCT04094766 version 3.1 from FILE").
  std::vector<std::string> replaced;
  // Files waiting for their bytes to settle.
  std::vector<std::string> unsettled;
  // Versions naming a decision table that is not loaded (CheckTableReferences).
  std::vector<Problem> missing_tables;
  // The file of each rule set and decision-table set this read loaded into
  // `catalog` (new or changed content; not those kept from `previous`):
  // exactly the bytes its sha256() is of, for a rules archive to keep
  // before `catalog` is published.
  struct LoadedFile {
    std::string path;
    std::string sha256;  // hex
    std::string bytes;
    bool table = false;  // a decision-table file
  };
  std::vector<LoadedFile> loaded;
  // True when the rule sets or the refusals differ from the previous ones.
  bool changed = false;
};

// Adds a problem for each version's reference to a decision table not in
// `tables`: the version still serves (its rules do not depend on the
// table), and the problem says what it cannot grade.
void CheckTableReferences(const std::vector<std::shared_ptr<const RuleSet>>& rule_sets,
                          const std::vector<std::shared_ptr<const DecisionTableSet>>& tables,
                          std::vector<Problem>* problems);

// Reads every rule file and decision-table file of `dir` and merges it with
// `previous` (null at start), so that a bad or changed file never replaces a
// good version:
//  - a file unchanged since `previous` keeps its compiled rule set;
//  - a file that does not load (syntax, test cases, half-written, vanished
//    while read) is refused, and the version it gave before keeps serving;
//  - a new or changed file waits until its bytes have stayed the same for
//    `options.settle` (with `memory`; every file loads at the first read);
//  - a loaded version is immutable once a decision was answered under it:
//    other content under the same protocol and version is then refused
//    ("give the change a new version"); before that, the file's new
//    content replaces it (a file completed after a partial copy);
//  - of two files claiming one version, the newcomer is refused;
//  - a refused file is not compiled again until its bytes change (with
//    `memory`);
//  - the versions of files no longer there are retired;
//  - a version naming a decision table that is not loaded still serves,
//    and `missing_tables` says so.
CatalogReload ReloadCatalog(const std::string& dir, const Catalog* previous,
                            ReloadMemory* memory = nullptr,
                            const ReloadOptions& options = {});

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_CATALOG_RELOAD_H_
