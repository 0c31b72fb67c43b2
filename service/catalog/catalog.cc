#include "service/catalog/catalog.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace trialrules {

bool VersionLess(absl::string_view a, absl::string_view b) {
  const std::vector<absl::string_view> pa = absl::StrSplit(a, absl::ByAnyChar(".-_"));
  const std::vector<absl::string_view> pb = absl::StrSplit(b, absl::ByAnyChar(".-_"));
  for (size_t i = 0; i < std::min(pa.size(), pb.size()); ++i) {
    uint64_t na = 0, nb = 0;
    if (absl::SimpleAtoi(pa[i], &na) && absl::SimpleAtoi(pb[i], &nb)) {
      if (na != nb) return na < nb;
    } else if (pa[i] != pb[i]) {
      return pa[i] < pb[i];
    }
  }
  return pa.size() < pb.size();
}

absl::StatusOr<std::optional<DayNumber>> ParseAsOfDate(absl::string_view field,
                                                       absl::string_view text) {
  if (text.empty()) return std::nullopt;
  absl::StatusOr<DayNumber> day = ParseIsoDate(text);
  if (!day.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " = \"", text, "\": ", day.status().message()));
  }
  return *day;
}

absl::StatusOr<Catalog> Catalog::Build(
    std::vector<std::shared_ptr<const RuleSet>> rule_sets, std::vector<Problem> refused,
    std::vector<ProtocolSites> sites,
    std::vector<std::shared_ptr<const DecisionTableSet>> tables) {
  Catalog catalog;
  catalog.refused_ = std::move(refused);
  catalog.sites_ = std::move(sites);
  for (auto& table : tables) {
    for (const auto& loaded : catalog.tables_) {
      if (loaded->table_id() == table->table_id() && loaded->version() == table->version()) {
        return absl::AlreadyExistsError(absl::StrCat(
            table->header().file_name, ": decision table ", table->table_id(), " version ",
            table->version(), " is already loaded from ", loaded->header().file_name));
      }
    }
    catalog.tables_.push_back(std::move(table));
  }
  for (auto& rule_set : rule_sets) {
    for (const auto& loaded : catalog.rule_sets_) {
      if (loaded->protocol_id() == rule_set->protocol_id() &&
          loaded->version() == rule_set->version()) {
        return absl::AlreadyExistsError(absl::StrCat(
            rule_set->definition().file_name, ": protocol ",
            rule_set->protocol_id(), " version ", rule_set->version(),
            " is already loaded from ", loaded->definition().file_name));
      }
    }
    catalog.rule_sets_.push_back(std::move(rule_set));
  }
  return catalog;
}

absl::StatusOr<std::shared_ptr<const DecisionTableSet>> Catalog::SelectTable(
    absl::string_view table_id, absl::string_view version) const {
  std::shared_ptr<const DecisionTableSet> latest;
  bool known = false;
  for (const auto& table : tables_) {
    if (table->table_id() != table_id) continue;
    known = true;
    if (version.empty()) {
      if (latest == nullptr || VersionLess(latest->version(), table->version())) latest = table;
    } else if (table->version() == version) {
      return table;
    }
  }
  if (latest != nullptr) return latest;
  std::vector<std::string> ids;
  for (const auto& table : tables_) ids.push_back(table->table_id());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return absl::NotFoundError(
      known ? absl::StrCat("decision table ", table_id, " has no version \"", version, "\"")
            : absl::StrCat("unknown decision table \"", table_id, "\" (loaded: ",
                           ids.empty() ? "none" : absl::StrJoin(ids, ", "), ")"));
}

absl::StatusOr<std::shared_ptr<const RuleSet>> Catalog::Select(const VersionQuery& query,
                                                               DayNumber today) const {
  const absl::string_view protocol_id = query.protocol_id;
  const absl::string_view version = query.version;
  const absl::string_view site_id = query.site_id;
  const DayNumber as_of = query.as_of.value_or(today);
  if (version.empty() && !site_id.empty()) {
    for (const ProtocolSites& protocol : sites_) {
      if (protocol.protocol_id != protocol_id) continue;
      for (const SiteSchedule& site : protocol.sites) {
        if (site.site_id != site_id) continue;
        const std::string* activated = nullptr;
        for (const auto& [day, activated_version] : site.activations) {
          if (day <= as_of) activated = &activated_version;
        }
        if (activated == nullptr) {
          return absl::FailedPreconditionError(absl::StrCat(
              "site_id \"", site_id, "\": no version of ", protocol_id,
              " was activated at this site on or before ", FormatIsoDate(as_of)));
        }
        return Select({protocol_id, *activated, std::nullopt, ""}, as_of);
      }
    }
  }
  std::shared_ptr<const RuleSet> in_force;
  bool protocol_known = false;
  for (const auto& rule_set : rule_sets_) {
    if (rule_set->protocol_id() != protocol_id) continue;
    protocol_known = true;
    const RuleSetDefinition& def = rule_set->definition();
    if (!version.empty()) {
      if (def.version == version) return rule_set;
      continue;
    }
    if (def.effective_from > as_of ||
        (def.effective_until && *def.effective_until < as_of)) {
      continue;
    }
    if (in_force == nullptr ||
        def.effective_from > in_force->definition().effective_from) {
      in_force = rule_set;
    }
  }
  if (!protocol_known) {
    return absl::NotFoundError(
        absl::StrCat("protocol_id \"", protocol_id, "\": no such protocol is loaded"));
  }
  if (!version.empty()) {
    return absl::NotFoundError(absl::StrCat("version \"", version,
                                            "\": protocol ", protocol_id,
                                            " has no such version loaded"));
  }
  if (in_force == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("protocol ", protocol_id, ": no version is in force on ",
                     FormatIsoDate(as_of)));
  }
  return in_force;
}

std::vector<std::shared_ptr<const DecisionTableSet>> Catalog::TablesOf(
    const RuleSet& rule_set) const {
  std::vector<std::shared_ptr<const DecisionTableSet>> tables;
  for (const auto& [table_id, version] : rule_set.definition().decision_tables) {
    absl::StatusOr<std::shared_ptr<const DecisionTableSet>> table = SelectTable(table_id, version);
    if (table.ok()) tables.push_back(*std::move(table));
  }
  return tables;
}

}  // namespace trialrules
