// The catalog: every loaded version of every protocol, and the one rule for
// which version answers a request.
#ifndef TRIALRULES_SERVICE_CATALOG_CATALOG_H_
#define TRIALRULES_SERVICE_CATALOG_CATALOG_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/catalog/sites.h"
#include "service/engine/decision_table.h"
#include "service/engine/problem.h"
#include "service/engine/rule_set.h"
#include "service/util/dates.h"

namespace trialrules {

// The as-of date of a request is the date it is about: the
// `assessment_date` fact of a one-patient request, the header's
// `as_of_date` of a screening stream. `text` is that value ("" when the
// request has none: then today, UTC, answers); a bad date is refused as
// `field = "text": why`.
absl::StatusOr<std::optional<DayNumber>> ParseAsOfDate(absl::string_view field,
                                                       absl::string_view text);

// Whether version `a` comes before `b`: dot-, dash- or underscore-separated
// parts compared as numbers where both are numbers ("1.10" after "1.9"),
// else as text.
bool VersionLess(absl::string_view a, absl::string_view b);

// What a request asks of the catalog.
struct VersionQuery {
  absl::string_view protocol_id;
  absl::string_view version;       // "" unless the caller names one
  std::optional<DayNumber> as_of;  // none: today
  absl::string_view site_id;       // may be ""
};

// An immutable set of rule sets. Thread-safe.
class Catalog {
 public:
  // Refuses two rule sets with the same protocol and version. `refused`
  // lists the files (or versions) that were not loaded, and why.
  static absl::StatusOr<Catalog> Build(
      std::vector<std::shared_ptr<const RuleSet>> rule_sets,
      std::vector<Problem> refused = {}, std::vector<ProtocolSites> sites = {},
      std::vector<std::shared_ptr<const DecisionTableSet>> tables = {});

  const std::vector<std::shared_ptr<const RuleSet>>& rule_sets() const {
    return rule_sets_;
  }
  const std::vector<Problem>& refused() const { return refused_; }
  const std::vector<ProtocolSites>& sites() const { return sites_; }
  const std::vector<std::shared_ptr<const DecisionTableSet>>& tables() const {
    return tables_;
  }

  // The decision tables `table_id` at `version`; with no version, the
  // highest loaded (VersionLess). NotFound names what is loaded.
  absl::StatusOr<std::shared_ptr<const DecisionTableSet>> SelectTable(
      absl::string_view table_id, absl::string_view version) const;

  // Those of the decision tables `rule_set` names that are loaded (the
  // engine refuses to answer without one it needs).
  std::vector<std::shared_ptr<const DecisionTableSet>> TablesOf(const RuleSet& rule_set) const;

  // The version that answers `query`, on the as-of date (else `today`):
  //  1. the version named;
  //  2. else, for a site listed in the protocol's site activations, the
  //     version that site activated most recently on or before the date
  //     (FailedPrecondition if it had activated none yet);
  //  3. else the version in force on the date: the latest effective_from on
  //     or before it whose effective_until (if any) is not before it
  //     (FailedPrecondition if none).
  // NotFound for an unknown protocol or version.
  absl::StatusOr<std::shared_ptr<const RuleSet>> Select(const VersionQuery& query,
                                                        DayNumber today) const;

 private:
  std::vector<std::shared_ptr<const RuleSet>> rule_sets_;
  std::vector<Problem> refused_;
  std::vector<ProtocolSites> sites_;
  std::vector<std::shared_ptr<const DecisionTableSet>> tables_;
};

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
