// `trialrules diff`: amendment impact. The same patients under two versions:
// how many change decision, from what to what, and which rules cause it.
#include <iostream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/args.h"
#include "client/facts_file.h"
#include "service/catalog/catalog.h"
#include "service/engine/compare.h"
#include "service/util/file.h"
#include "service/util/json.h"

namespace trialrules::cli {
namespace {

constexpr char kUsage[] =
    "usage: trialrules diff --rules PATH --protocol ID --from VERSION --to VERSION\n"
    "         --patients FILE.json [--kind eligibility|withdrawal|escalation|stopping]\n"
    "         [--json]\n"
    "  FILE.json: {\"patients\": [{\"subject_ref\": \"...\", \"facts\": {...}}, ...]}\n";

std::string RenderJson(const VersionComparison& comparison) {
  std::vector<std::string> transitions, rules, changes, refused;
  for (const auto& [pair, count] : comparison.transitions) {
    transitions.push_back(absl::StrFormat("{\"from\":\"%s\",\"to\":\"%s\",\"patients\":%d}",
                                          DecisionName(pair.first),
                                          DecisionName(pair.second), count));
  }
  for (const auto& [id, count] : comparison.rules_causing_changes) {
    rules.push_back(absl::StrFormat("{\"rule\":%s,\"patients\":%d}", JsonQuote(id), count));
  }
  for (const PatientChange& change : comparison.changes) {
    changes.push_back(absl::StrFormat(
        "{\"subject_ref\":%s,\"from\":\"%s\",\"to\":\"%s\",\"rules\":%s}",
        JsonQuote(change.subject_ref), DecisionName(change.base),
        DecisionName(change.candidate), JsonList(change.rules)));
  }
  for (const auto& [subject, message] : comparison.refused) {
    refused.push_back(absl::StrFormat("{\"subject_ref\":%s,\"error\":%s}", JsonQuote(subject),
                                      JsonQuote(message)));
  }
  return absl::StrFormat(
      "{\"patients\":%d,\"changed\":%d,\"transitions\":[%s],\"rules_causing_changes\":[%s],"
      "\"changes\":[%s],\"refused\":[%s]}\n",
      comparison.patients, comparison.changed, absl::StrJoin(transitions, ","),
      absl::StrJoin(rules, ","), absl::StrJoin(changes, ","), absl::StrJoin(refused, ","));
}

std::string RenderText(const VersionComparison& comparison, const std::string& from,
                       const std::string& to) {
  std::string out = absl::StrFormat("%d patients, %d change decision from %s to %s\n",
                                    comparison.patients, comparison.changed, from, to);
  for (const auto& [pair, count] : comparison.transitions) {
    if (pair.first == pair.second) continue;
    absl::StrAppendFormat(&out, "  %-14s -> %-14s %d\n", DecisionName(pair.first),
                          DecisionName(pair.second), count);
  }
  if (!comparison.rules_causing_changes.empty()) out += "rules behind the changes:\n";
  for (const auto& [id, count] : comparison.rules_causing_changes) {
    absl::StrAppendFormat(&out, "  %-6s %d patients\n", id, count);
  }
  for (const PatientChange& change : comparison.changes) {
    absl::StrAppendFormat(&out, "%s: %s -> %s (%s)\n", change.subject_ref,
                          DecisionName(change.base), DecisionName(change.candidate),
                          absl::StrJoin(change.rules, ", "));
  }
  for (const auto& [subject, message] : comparison.refused) {
    absl::StrAppendFormat(&out, "%s: refused: %s\n", subject, message);
  }
  return out;
}

}  // namespace

int RunDiff(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args =
      ParseArgs(argv, {"rules", "protocol", "from", "to", "patients", "kind"}, {"json"});
  if (!args.ok() || args->Get("rules").empty() || args->Get("protocol").empty() ||
      args->Get("from").empty() || args->Get("to").empty() ||
      args->Get("patients").empty()) {
    if (!args.ok()) std::cerr << args.status().message() << "\n";
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::optional<EvaluationKind> kind =
      ParseEvaluationKind(args->Get("kind", "eligibility"));
  if (!kind) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const absl::StatusOr<std::string> text = ReadFileBytes(args->Get("patients"));
  if (!text.ok()) {
    std::cerr << "error: cannot read " << args->Get("patients") << "\n";
    return kExitProblems;
  }
  absl::StatusOr<std::vector<PatientFacts>> patients = ParsePatientsJson(*text);
  if (!patients.ok()) {
    std::cerr << "error: " << patients.status().message() << "\n";
    return kExitProblems;
  }
  const std::shared_ptr<const Catalog> catalog =
      LoadLocalCatalog(args->Get("rules"), /*report_refusals=*/true);
  auto base = catalog->Select(args->Get("protocol"), args->Get("from"), 0);
  auto candidate = catalog->Select(args->Get("protocol"), args->Get("to"), 0);
  if (!base.ok() || !candidate.ok()) {
    std::cerr << "error: " << (!base.ok() ? base.status() : candidate.status()).message()
              << "\n";
    return kExitProblems;
  }
  const VersionComparison comparison =
      CompareVersions(**base, **candidate, *kind, *patients);
  std::cout << (args->Has("json") ? RenderJson(comparison)
                                  : RenderText(comparison, args->Get("from"), args->Get("to")));
  return kExitOk;
}

}  // namespace trialrules::cli
