// The catalog: every loaded version of every protocol, and the choice of the
// one that answers (named version, else the one in force on a date).
#ifndef TRIALRULES_SERVICE_CATALOG_CATALOG_H_
#define TRIALRULES_SERVICE_CATALOG_CATALOG_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "service/engine/loader.h"

namespace trialrules {

// The file extension of rule files in a rules directory.
inline constexpr absl::string_view kRuleFileExtension = ".textproto";
// Site-activation files (one per protocol) end so; they are not rule files.
inline constexpr absl::string_view kSiteFileExtension = ".sites.textproto";

// Versions a site activated, by date: the site answers with the latest
// activation on or before the date asked about.
struct SiteSchedule {
  std::string site_id;
  std::vector<std::pair<DayNumber, std::string>> activations;  // sorted by day
};

// The activations of one protocol, as read from its .sites.textproto file.
struct ProtocolSites {
  std::string protocol_id;
  std::string file_name;
  std::string sha256;
  std::vector<SiteSchedule> sites;
};

// Parses a site-activation file; problems (file:line:col) as for rule files.
absl::StatusOr<ProtocolSites> LoadSiteActivations(absl::string_view text,
                                                  absl::string_view file_name,
                                                  std::vector<Problem>* problems);

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

// An immutable set of rule sets. Thread-safe.
class Catalog {
 public:
  // Refuses two rule sets with the same protocol and version. `refused`
  // lists the files (or versions) that were not loaded, and why.
  static absl::StatusOr<Catalog> Build(
      std::vector<std::shared_ptr<const RuleSet>> rule_sets,
      std::vector<Problem> refused = {}, std::vector<ProtocolSites> sites = {});

  const std::vector<std::shared_ptr<const RuleSet>>& rule_sets() const {
    return rule_sets_;
  }
  const std::vector<Problem>& refused() const { return refused_; }
  const std::vector<ProtocolSites>& sites() const { return sites_; }

  // The version named, or else the one in force on `as_of`: the latest
  // effective_from on or before it whose effective_until (if any) is not
  // before it. NotFound for an unknown protocol or version;
  // FailedPrecondition when no version is in force on that date.
  //
  // With a `site_id` listed in the protocol's site activations (and no
  // version named), the version that site activated most recently on or
  // before `as_of` answers; FailedPrecondition if it had activated none yet.
  absl::StatusOr<std::shared_ptr<const RuleSet>> Select(
      absl::string_view protocol_id, absl::string_view version,
      DayNumber as_of, absl::string_view site_id = "") const;

 private:
  std::vector<std::shared_ptr<const RuleSet>> rule_sets_;
  std::vector<Problem> refused_;
  std::vector<ProtocolSites> sites_;
};

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

// The catalog in force. Readers pin a snapshot for a whole request, so a
// request finishes on the version it started with while a new catalog is
// published. Thread-safe.
class CatalogHolder {
 public:
  // Null until the first Publish().
  std::shared_ptr<const Catalog> Snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return current_;
  }
  void Publish(std::shared_ptr<const Catalog> catalog) {
    std::lock_guard<std::mutex> lock(mutex_);
    current_ = std::move(catalog);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Catalog> current_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_CATALOG_CATALOG_H_
