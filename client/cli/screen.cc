// `trialrules screen`: which of several protocols could each patient join?
// Every patient of a patients file is screened for eligibility under each
// protocol named, in one pass, offline; then per protocol the counts and
// the screen-failure funnel.
#include <algorithm>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli/args.h"
#include "client/facts_file.h"
#include "service/catalog/reload.h"
#include "service/util/file.h"
#include "service/util/json.h"

namespace trialrules::cli {
namespace {

constexpr char kUsage[] =
    "usage: trialrules screen --rules PATH --protocols ID[,ID...]\n"
    "         --patients FILE.json [--json]\n"
    "FILE.json is {\"patients\": [{\"subject_ref\": \"...\", \"facts\": {...}}, ...]}; a\n"
    "patient's facts may serve several protocols: each protocol uses the facts it\n"
    "declares and ignores the others\n";

// One protocol's tally over the file.
struct Tally {
  std::map<std::string, int> decisions;  // ELIGIBLE, INELIGIBLE, INDETERMINATE, REFUSED
  std::map<std::string, int> excluded_by;  // rule id → patients it excluded
  std::vector<std::string> rule_order;
};

// One patient under one protocol: the decision word (or REFUSED and why).
struct Screened {
  std::string version;
  std::string decision;
  std::string error;
};

Screened ScreenOne(const Catalog& catalog, const std::string& protocol,
                   const PatientFacts& patient, Tally* tally) {
  Screened screened;
  const std::optional<std::string> date = AssessmentDate(patient.facts);
  absl::StatusOr<std::optional<DayNumber>> as_of =
      ParseAsOfDate("fact \"assessment_date\"", date.value_or(""));
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set =
      as_of.ok() ? catalog.Select({protocol, "", *as_of, ""}, TodayUtc())
                 : absl::StatusOr<std::shared_ptr<const RuleSet>>(as_of.status());
  absl::StatusOr<FactValues> facts = absl::InternalError("");
  std::vector<std::string> ignored;
  if (rule_set.ok()) facts = (*rule_set)->BindFacts(patient.facts, &ignored);
  const absl::Status status = !rule_set.ok() ? rule_set.status() : facts.status();
  if (!status.ok()) {
    screened.decision = "REFUSED";
    screened.error = std::string(status.message());
    ++tally->decisions["REFUSED"];
    return screened;
  }
  const RuleSet& rules = **rule_set;
  const Evaluation evaluation = rules.Evaluate(EvaluationKind::kEligibility, *facts);
  screened.version = rules.version();
  screened.decision = std::string(DecisionName(evaluation.decision));
  ++tally->decisions[screened.decision];
  for (const RuleResult& result : evaluation.rules) {
    const RuleSpec& spec = rules.rules()[result.rule];
    if (std::find(tally->rule_order.begin(), tally->rule_order.end(), spec.id) ==
        tally->rule_order.end()) {
      tally->rule_order.push_back(spec.id);
    }
    const Outcome excluding =
        spec.kind == RuleKind::kInclusion ? Outcome::kFalse : Outcome::kTrue;
    if (!spec.informational && result.outcome == excluding) ++tally->excluded_by[spec.id];
  }
  return screened;
}

}  // namespace

int RunScreen(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(argv, {"rules", "protocols", "patients"}, {"json"});
  const std::vector<std::string> protocols =
      args.ok() ? absl::StrSplit(args->Get("protocols"), ',', absl::SkipEmpty())
                : std::vector<std::string>();
  if (!args.ok() || !args->positional.empty() || args->Get("rules").empty() ||
      protocols.empty() || args->Get("patients").empty()) {
    if (!args.ok()) std::cerr << args.status().message() << "\n";
    std::cerr << kUsage;
    return kExitUsage;
  }
  absl::StatusOr<std::vector<PatientFacts>> patients = ReadPatientsFile(args->Get("patients"));
  if (!patients.ok()) {
    std::cerr << "error: " << patients.status().message() << "\n";
    return kExitProblems;
  }
  const std::shared_ptr<const Catalog> catalog =
      LoadLocalCatalog(args->Get("rules"), /*report_refusals=*/true);
  const bool json = args->Has("json");
  std::map<std::string, Tally> tallies;
  if (!json) {
    std::cout << absl::StrFormat("%-16s", "PATIENT");
    for (const std::string& protocol : protocols) std::cout << absl::StrFormat("  %-22s", protocol);
    std::cout << "\n";
  }
  for (const PatientFacts& patient : *patients) {
    std::vector<std::string> fields;
    if (!json) std::cout << absl::StrFormat("%-16s", patient.subject_ref);
    for (const std::string& protocol : protocols) {
      const Screened screened = ScreenOne(*catalog, protocol, patient, &tallies[protocol]);
      if (json) {
        fields.push_back(absl::StrCat(
            JsonQuote(protocol), ":{\"version\":", JsonQuote(screened.version),
            ",\"decision\":", JsonQuote(screened.decision),
            screened.error.empty() ? "" : ",\"error\":" + JsonQuote(screened.error), "}"));
      } else {
        std::cout << absl::StrFormat(
            "  %-22s", screened.version.empty() ? screened.decision
                                                : screened.decision + " (" + screened.version + ")");
      }
      if (!json && !screened.error.empty()) {
        std::cerr << patient.subject_ref << " under " << protocol << ": " << screened.error << "\n";
      }
    }
    if (json) {
      std::cout << "{\"subject_ref\":" << JsonQuote(patient.subject_ref) << ",\"protocols\":{"
                << absl::StrJoin(fields, ",") << "}}\n";
    } else {
      std::cout << "\n";
    }
  }
  // Per protocol: the counts, and the funnel (patients each criterion
  // excluded), in rule order.
  std::vector<std::string> summaries;
  if (!json) std::cout << "\n";
  for (const std::string& protocol : protocols) {
    const Tally& tally = tallies[protocol];
    auto count = [&](const char* word) {
      const auto it = tally.decisions.find(word);
      return it == tally.decisions.end() ? 0 : it->second;
    };
    std::vector<std::string> funnel;
    for (const std::string& rule : tally.rule_order) {
      const auto it = tally.excluded_by.find(rule);
      if (it == tally.excluded_by.end()) continue;
      funnel.push_back(json ? absl::StrCat(JsonQuote(rule), ":", it->second)
                            : absl::StrCat(rule, " ", it->second));
    }
    if (json) {
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
  if (json) std::cout << "{\"summary\":{" << absl::StrJoin(summaries, ",") << "}}\n";
  return kExitOk;
}

}  // namespace trialrules::cli
