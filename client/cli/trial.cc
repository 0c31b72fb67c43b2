// `trialrules trial`: one trial's adverse-event records → each patient's
// DLTs, per-dose counts, the escalation and stopping decisions, offline or
// on a server.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/cli/args.h"
#include "client/client.h"
#include "client/records_file.h"
#include "client/trial_render.h"
#include "service/catalog/reload.h"
#include "service/engine/trial.h"
#include "service/util/file.h"

namespace trialrules::cli {
namespace {

constexpr char kUsage[] =
    "usage: trialrules trial (--rules PATH | --server HOST:PORT [TLS options] [--deadline-ms N])\n"
    "         --records FILE.json [--version V] [--site SITE] [--json]\n"
    "FILE.json: {\"protocol_id\", \"as_of_date\", \"current_dose_level\", \"patients\": [...]}\n"
    "(docs/trial-records.md)\n";

int Fail(absl::string_view message) {
  std::cerr << "error: " << message << "\n";
  return kExitProblems;
}

int Print(const Args& args, const v1::TrialEvaluation& evaluation) {
  std::cout << (args.Has("json") ? RenderTrialJson(evaluation) : RenderTrialText(evaluation));
  return kExitOk;
}

absl::StatusOr<v1::TrialEvaluation> EvaluateOffline(const Args& args,
                                                    const v1::TrialRecords& records) {
  const std::shared_ptr<const Catalog> catalog =
      LoadLocalCatalog(args.Get("rules"), /*report_refusals=*/true);
  absl::StatusOr<std::optional<DayNumber>> as_of =
      ParseAsOfDate("as_of_date", records.as_of_date());
  if (!as_of.ok()) return as_of.status();
  if (!*as_of) return absl::InvalidArgumentError("as_of_date is required");
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set = catalog->Select(
      {records.protocol_id(), args.Get("version"), *as_of, args.Get("site")}, TodayUtc());
  if (!rule_set.ok()) return rule_set.status();
  return EvaluateTrial(**rule_set, catalog->TablesOf(**rule_set), records);
}

absl::StatusOr<v1::TrialEvaluation> EvaluateOnServer(const Args& args,
                                                     const v1::TrialRecords& records) {
  absl::StatusOr<std::unique_ptr<TrialRulesClient>> connected = ServerClient(args);
  if (!connected.ok()) return connected.status();
  v1::EvaluateTrialRequest request;
  *request.mutable_records() = records;
  request.set_version(args.Get("version"));
  request.set_site_id(args.Get("site"));
  absl::StatusOr<v1::EvaluateTrialResponse> response = (*connected)->EvaluateTrial(request);
  if (!response.ok()) return response.status();
  return response->evaluation();
}

}  // namespace

int RunTrial(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args =
      ParseArgs(argv, WithServerOptions({"rules", "records", "version", "site"}), {"json"});
  if (!args.ok() || !args->positional.empty() ||
      args->Get("rules").empty() == args->Get("server").empty() ||
      args->Get("records").empty()) {
    if (!args.ok()) std::cerr << args.status().message() << "\n";
    std::cerr << kUsage << kServerUsage;
    return kExitUsage;
  }
  absl::StatusOr<std::string> text = ReadFileBytes(args->Get("records"));
  if (!text.ok()) return Fail(absl::StrCat("cannot read ", args->Get("records")));
  absl::StatusOr<v1::TrialRecords> records = ParseTrialRecordsJson(*text);
  if (!records.ok()) return Fail(records.status().message());
  absl::StatusOr<v1::TrialEvaluation> evaluation = args->Get("server").empty()
                                                       ? EvaluateOffline(*args, *records)
                                                       : EvaluateOnServer(*args, *records);
  if (!evaluation.ok()) return Fail(evaluation.status().message());
  return Print(*args, *evaluation);
}

}  // namespace trialrules::cli
