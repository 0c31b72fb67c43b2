#include "service/catalog/catalog.h"

#include "absl/strings/str_cat.h"

namespace trialrules {

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
    std::vector<ProtocolSites> sites) {
  Catalog catalog;
  catalog.refused_ = std::move(refused);
  catalog.sites_ = std::move(sites);
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

}  // namespace trialrules
