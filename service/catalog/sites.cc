#include "service/catalog/sites.h"

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "service/util/sha256.h"
#include "trialrules/v1/rule_file.pb.h"

namespace trialrules {

absl::StatusOr<ProtocolSites> LoadSiteActivations(absl::string_view text,
                                                  absl::string_view file_name,
                                                  std::vector<Problem>* problems) {
  ProblemCollector errors(std::string(file_name), problems);
  v1::SiteActivations file;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  const size_t before = problems->size();
  auto refuse = [&](std::string message) {
    problems->push_back({std::string(file_name), 0, 0, "", std::move(message)});
  };
  if (!parser.ParseFromString(std::string(text), &file)) {
    if (problems->size() == before) refuse("not a valid site-activation file");
    return absl::InvalidArgumentError("site-activation file refused");
  }
  ProtocolSites sites{file.protocol_id(), std::string(file_name), Sha256Hex(text), {}};
  if (file.protocol_id().empty()) refuse("protocol_id is required");
  std::set<std::string> seen;
  for (const v1::SiteActivation& site : file.sites()) {
    if (site.site_id().empty() || !seen.insert(site.site_id()).second) {
      refuse(absl::StrCat("site_id \"", site.site_id(), "\" is empty or repeated"));
      continue;
    }
    SiteSchedule schedule{site.site_id(), {}};
    for (const v1::VersionActivation& activation : site.activations()) {
      absl::StatusOr<DayNumber> day = ParseIsoDate(activation.activated_on());
      if (!day.ok() || activation.version().empty()) {
        refuse(absl::StrCat("site ", site.site_id(), ": activation of version \"",
                            activation.version(), "\" on \"", activation.activated_on(),
                            "\" needs a version and a date YYYY-MM-DD"));
        continue;
      }
      schedule.activations.emplace_back(*day, activation.version());
    }
    std::sort(schedule.activations.begin(), schedule.activations.end());
    sites.sites.push_back(std::move(schedule));
  }
  if (problems->size() != before) {
    return absl::InvalidArgumentError("site-activation file refused");
  }
  return sites;
}

}  // namespace trialrules
