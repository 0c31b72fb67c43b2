// Site activation: per site of a protocol, the date each version was
// activated there (after that site's ethics approval), read from the
// protocol's PROTOCOL.sites.textproto.
#ifndef TRIALRULES_SERVICE_CATALOG_SITES_H_
#define TRIALRULES_SERVICE_CATALOG_SITES_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/engine/problem.h"
#include "service/util/dates.h"

namespace trialrules {

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

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_CATALOG_SITES_H_
