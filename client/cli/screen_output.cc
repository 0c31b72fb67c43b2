#include "client/cli/screen_output.h"

#include <algorithm>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "service/util/json.h"

namespace trialrules::cli {

void Tally::CountRule(const std::string& rule_id, bool excluded) {
  if (std::find(rule_order.begin(), rule_order.end(), rule_id) == rule_order.end()) {
    rule_order.push_back(rule_id);
  }
  if (excluded) ++excluded_by[rule_id];
}

ScreenPrinter::ScreenPrinter(std::vector<std::string> protocols, bool json)
    : protocols_(std::move(protocols)), json_(json) {
  if (json_) return;
  std::cout << absl::StrFormat("%-16s", "PATIENT");
  for (const std::string& protocol : protocols_) std::cout << absl::StrFormat("  %-22s", protocol);
  std::cout << "\n";
}

void ScreenPrinter::Patient(const std::string& subject_ref,
                            const std::vector<Screened>& screened) {
  std::vector<std::string> fields;
  if (!json_) std::cout << absl::StrFormat("%-16s", subject_ref);
  for (size_t i = 0; i < protocols_.size(); ++i) {
    const std::string& protocol = protocols_[i];
    const Screened& one = screened[i];
    ++tallies_[protocol].decisions[one.decision];
    if (json_) {
      fields.push_back(absl::StrCat(
          JsonQuote(protocol), ":{\"version\":", JsonQuote(one.version),
          ",\"decision\":", JsonQuote(one.decision),
          one.error.empty() ? "" : ",\"error\":" + JsonQuote(one.error), "}"));
      continue;
    }
    std::cout << absl::StrFormat(
        "  %-22s", one.version.empty() ? one.decision : one.decision + " (" + one.version + ")");
    if (!one.error.empty()) {
      std::cerr << subject_ref << " under " << protocol << ": " << one.error << "\n";
    }
  }
  if (json_) {
    std::cout << "{\"subject_ref\":" << JsonQuote(subject_ref) << ",\"protocols\":{"
              << absl::StrJoin(fields, ",") << "}}\n";
  } else {
    std::cout << "\n";
  }
}

void ScreenPrinter::Summary(const std::string& extra_json) {
  // Per protocol: the counts, and the funnel (patients each criterion
  // excluded), in rule order.
  std::vector<std::string> summaries;
  if (!json_) std::cout << "\n";
  for (const std::string& protocol : protocols_) {
    const Tally& tally = tallies_[protocol];
    auto count = [&](const char* word) {
      const auto it = tally.decisions.find(word);
      return it == tally.decisions.end() ? 0 : it->second;
    };
    std::vector<std::string> funnel;
    for (const std::string& rule : tally.rule_order) {
      const auto it = tally.excluded_by.find(rule);
      if (it == tally.excluded_by.end()) continue;
      funnel.push_back(json_ ? absl::StrCat(JsonQuote(rule), ":", it->second)
                             : absl::StrCat(rule, " ", it->second));
    }
    if (json_) {
      summaries.push_back(absl::StrCat(
          JsonQuote(protocol), ":{\"eligible\":", count("ELIGIBLE"),
          ",\"ineligible\":", count("INELIGIBLE"), ",\"indeterminate\":", count("INDETERMINATE"),
          ",\"refused\":", count("REFUSED"), ",\"excluded_by\":{", absl::StrJoin(funnel, ","),
          "}}"));
    } else {
      std::cout << protocol << ": " << count("ELIGIBLE") << " eligible, "
                << count("INELIGIBLE") << " ineligible, " << count("INDETERMINATE")
                << " indeterminate, " << count("REFUSED") << " refused"
                << (funnel.empty() ? "" : "; excluded by " + absl::StrJoin(funnel, ", "))
                << "\n";
    }
  }
  if (json_) {
    std::cout << "{\"summary\":{" << absl::StrJoin(summaries, ",") << "}"
              << (extra_json.empty() ? "" : ",") << extra_json << "}\n";
  }
}

}  // namespace trialrules::cli
