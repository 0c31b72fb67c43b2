// The catalog: every loaded version of every protocol, and the choice of the
// one that answers (named version, else the one in force on a date).
#ifndef TRIALRULES_SERVICE_CATALOG_CATALOG_H_
#define TRIALRULES_SERVICE_CATALOG_CATALOG_H_

#include <memory>
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

struct FileLoad {
  std::string path;
  LoadResult result;
};

// Loads each path: a file, or a directory's `*.textproto` files (not
// hidden, sorted by name). A file that cannot be read is a problem too.
std::vector<FileLoad> LoadRuleFiles(absl::Span<const std::string> paths);

// An immutable set of rule sets. Thread-safe.
class Catalog {
 public:
  // Refuses two rule sets with the same protocol and version.
  static absl::StatusOr<Catalog> Build(
      std::vector<std::shared_ptr<const RuleSet>> rule_sets);

  const std::vector<std::shared_ptr<const RuleSet>>& rule_sets() const {
    return rule_sets_;
  }

  // The version named, or else the one in force on `as_of`: the latest
  // effective_from on or before it whose effective_until (if any) is not
  // before it. NotFound for an unknown protocol or version;
  // FailedPrecondition when no version is in force on that date.
  absl::StatusOr<std::shared_ptr<const RuleSet>> Select(
      absl::string_view protocol_id, absl::string_view version,
      DayNumber as_of) const;

 private:
  std::vector<std::shared_ptr<const RuleSet>> rule_sets_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_CATALOG_CATALOG_H_
