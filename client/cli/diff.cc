// `trialrules diff`: amendment impact. The same patients under two versions:
// how many change decision, from what to what, and which rules cause it.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/args.h"
#include "client/facts_file.h"
#include "service/catalog/reload.h"
#include "service/engine/compare.h"
#include "service/util/file.h"
#include "service/util/json.h"

namespace trialrules::cli {
namespace {

constexpr char kUsage[] =
    "usage: trialrules diff (--rules PATH | --server HOST:PORT [TLS options])\n"
    "         --protocol ID --from VERSION --to VERSION --patients FILE.json\n"
    "         [--kind eligibility|withdrawal|escalation|stopping] [--json]\n"
    "  FILE.json: {\"patients\": [{\"subject_ref\": \"...\", \"facts\": {...}}, ...]}\n"
    "  With --server the server's CompareVersions compares (eligibility only),\n"
    "  under the versions it has loaded.\n";

// Patients per CompareVersions message.
constexpr int kPatientsPerMessage = 1000;

Decision DecisionFromProto(v1::Decision decision) {
  const std::string name = v1::Decision_Name(decision);
  for (int d = 0; d <= static_cast<int>(Decision::kNotTriggered); ++d) {
    if (absl::StrCat("DECISION_", DecisionName(static_cast<Decision>(d))) == name) {
      return static_cast<Decision>(d);
    }
  }
  return Decision::kIndeterminate;
}

// The two versions from the local rule files at --rules.
absl::StatusOr<VersionComparison> CompareLocally(const Args& args, EvaluationKind kind,
                                                 const std::vector<PatientFacts>& patients) {
  const std::shared_ptr<const Catalog> catalog =
      LoadLocalCatalog(args.Get("rules"), /*report_refusals=*/true);
  auto base =
      catalog->Select({args.Get("protocol"), args.Get("from"), std::nullopt, ""}, TodayUtc());
  if (!base.ok()) return base.status();
  auto candidate =
      catalog->Select({args.Get("protocol"), args.Get("to"), std::nullopt, ""}, TodayUtc());
  if (!candidate.ok()) return candidate.status();
  return CompareVersions(**base, **candidate, kind, patients);
}

// The server's CompareVersions over the same patients, as the engine's
// comparison, so that both paths print alike.
absl::StatusOr<VersionComparison> CompareOnServer(const Args& args,
                                                  const std::vector<PatientFacts>& patients) {
  absl::StatusOr<std::unique_ptr<TrialRulesClient>> client = ServerClient(args);
  if (!client.ok()) return client.status();
  std::unique_ptr<grpc::ClientContext> context = (*client)->NewContext();
  v1::CompareResponse response;
  auto stream = (*client)->stub()->CompareVersions(context.get(), &response);
  for (size_t first = 0; first == 0 || first < patients.size(); first += kPatientsPerMessage) {
    v1::CompareRequest request;
    if (first == 0) {
      request.set_protocol_id(args.Get("protocol"));
      request.set_base_version(args.Get("from"));
      request.set_candidate_version(args.Get("to"));
    }
    for (size_t p = first; p < std::min(patients.size(), first + kPatientsPerMessage); ++p) {
      v1::ComparePatient* patient = request.add_patients();
      patient->set_subject_ref(patients[p].subject_ref);
      v1::EvaluateRequest facts;
      AddFacts(patients[p].facts, &facts);
      patient->mutable_facts()->Swap(facts.mutable_facts());
    }
    if (!stream->Write(request)) break;  // the server ended the call: Finish says why
  }
  stream->WritesDone();
  if (const grpc::Status status = stream->Finish(); !status.ok()) {
    return FromGrpcStatus(status);
  }
  VersionComparison comparison;
  comparison.patients = response.patients();
  comparison.changed = response.changed();
  for (const auto& transition : response.transitions()) {
    comparison.transitions[{DecisionFromProto(transition.base()),
                            DecisionFromProto(transition.candidate())}] = transition.patients();
  }
  for (const auto& rule : response.rules_causing_changes()) {
    comparison.rules_causing_changes[rule.rule()] = rule.patients();
  }
  for (const auto& change : response.changes()) {
    comparison.changes.push_back({change.subject_ref(), DecisionFromProto(change.base()),
                                  DecisionFromProto(change.candidate()),
                                  {change.rules().begin(), change.rules().end()}});
  }
  for (const auto& refusal : response.refused()) {
    comparison.refused.emplace_back(refusal.subject_ref(), refusal.error());
  }
  return comparison;
}

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
  absl::StatusOr<Args> args = ParseArgs(
      argv, WithServerOptions({"rules", "protocol", "from", "to", "patients", "kind"}),
      {"json"});
  if (!args.ok() || args->Get("rules").empty() == args->Get("server").empty() ||
      args->Get("protocol").empty() ||
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
  absl::StatusOr<std::vector<PatientFacts>> patients = ReadPatientsFile(args->Get("patients"));
  if (!patients.ok()) {
    std::cerr << "error: " << patients.status().message() << "\n";
    return kExitProblems;
  }
  if (!args->Get("server").empty() && *kind != EvaluationKind::kEligibility) {
    std::cerr << "error: --server compares eligibility only\n";
    return kExitUsage;
  }
  const absl::StatusOr<VersionComparison> comparison =
      args->Get("server").empty() ? CompareLocally(*args, *kind, *patients)
                                  : CompareOnServer(*args, *patients);
  if (!comparison.ok()) {
    std::cerr << "error: " << comparison.status().message() << "\n";
    return kExitProblems;
  }
  std::cout << (args->Has("json") ? RenderJson(*comparison)
                                  : RenderText(*comparison, args->Get("from"), args->Get("to")));
  return kExitOk;
}

}  // namespace trialrules::cli
