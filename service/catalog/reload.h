// Reading a rules directory into a catalog, off the request path: which
// files are rule files, loading each, and merging a new read with the
// catalog in force so that a bad or changed file never replaces a good
// version.
#ifndef TRIALRULES_SERVICE_CATALOG_RELOAD_H_
#define TRIALRULES_SERVICE_CATALOG_RELOAD_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/catalog/catalog.h"
#include "service/engine/loader.h"

namespace trialrules {

// The file extension of rule files in a rules directory.
inline constexpr absl::string_view kRuleFileExtension = ".textproto";
// Site-activation files (one per protocol) end so; they are not rule files.
inline constexpr absl::string_view kSiteFileExtension = ".sites.textproto";

struct FileLoad {
  std::string path;
  LoadResult result;
};

// Expands each path: a file stays as it is; a directory gives its
// `*.textproto` files (not hidden, sorted by name). A directory that cannot
// be listed is reported in `problems`.
std::vector<std::string> ListRuleFiles(absl::Span<const std::string> paths,
                                       std::vector<Problem>* problems);

// Loads each file ListRuleFiles() gives. A file that cannot be read is a
// problem too.
std::vector<FileLoad> LoadRuleFiles(absl::Span<const std::string> paths);

// What reading a rules directory again did to the catalog in force.
struct CatalogReload {
  std::shared_ptr<const Catalog> catalog;  // to publish
  std::vector<std::string> added;          // "NCT04094766 version 3.0 from FILE"
  std::vector<std::string> retired;
  // True when the rule sets or the refusals differ from the previous ones.
  bool changed = false;
};

// Reads every rule file of `dir` and merges it with `previous` (null at
// start), so that a bad or changed file never replaces a good version:
//  - a file unchanged since `previous` keeps its compiled rule set;
//  - a file that does not load (syntax, test cases, half-written, vanished
//    while read) is refused, and the version it gave before keeps serving;
//  - a loaded version is immutable: other content under the same protocol
//    and version is refused ("give the change a new version");
//  - of two files claiming one version, the newcomer is refused;
//  - the versions of files no longer there are retired.
CatalogReload ReloadCatalog(const std::string& dir, const Catalog* previous);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_CATALOG_RELOAD_H_
