// `trialrules grade`: grade one assessment's observations with a decision
// table (a grading table), offline or on a server.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/cli/args.h"
#include "client/client.h"
#include "client/facts_file.h"
#include "client/render.h"
#include "service/catalog/reload.h"
#include "service/util/file.h"

namespace trialrules::cli {
namespace {

constexpr char kUsage[] =
    "usage: trialrules grade (--rules PATH | --server HOST:PORT [TLS options] [--deadline-ms N])\n"
    "         --table ID [--version V] [--term TERM] --observations FILE.json [--json]\n"
    "FILE.json is {\"observations\": {NAME: VALUE, ...}}; VALUE a number, true/false,\n"
    "a word (TEXT observations) or {\"value\": NUMBER, \"unit\": \"UCUM code\"}\n";

int Fail(absl::string_view message) {
  std::cerr << "error: " << message << "\n";
  return kExitProblems;
}

int Print(const Args& args, const GradeView& view) {
  std::cout << (args.Has("json") ? RenderJson(view) : RenderTable(view));
  return kExitOk;
}

int GradeOnServer(const Args& args, const std::vector<FactInput>& observations) {
  absl::StatusOr<std::unique_ptr<TrialRulesClient>> connected = ServerClient(args);
  if (!connected.ok()) return Fail(connected.status().message());
  v1::GradeRequest request;
  request.set_table_id(args.Get("table"));
  request.set_version(args.Get("version"));
  request.set_term(args.Get("term"));
  AddObservations(observations, request.add_observation_sets());
  absl::StatusOr<v1::GradeResponse> response = (*connected)->GradeEvents(request);
  if (!response.ok()) return Fail(response.status().message());
  return Print(args, ViewOf(*response, 0));
}

}  // namespace

int RunGrade(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(
      argv, WithServerOptions({"rules", "table", "version", "term", "observations"}), {"json"});
  if (!args.ok() || !args->positional.empty() ||
      args->Get("rules").empty() == args->Get("server").empty() ||
      args->Get("table").empty() || args->Get("observations").empty()) {
    if (!args.ok()) std::cerr << args.status().message() << "\n";
    std::cerr << kUsage << kServerUsage;
    return kExitUsage;
  }
  absl::StatusOr<std::string> text = ReadFileBytes(args->Get("observations"));
  if (!text.ok()) return Fail(absl::StrCat("cannot read ", args->Get("observations")));
  absl::StatusOr<std::vector<FactInput>> observations = ParseObservationsJson(*text);
  if (!observations.ok()) return Fail(observations.status().message());
  if (!args->Get("server").empty()) return GradeOnServer(*args, *observations);

  const std::shared_ptr<const Catalog> catalog =
      LoadLocalCatalog(args->Get("rules"), /*report_refusals=*/true);
  absl::StatusOr<std::shared_ptr<const DecisionTableSet>> tables =
      catalog->SelectTable(args->Get("table"), args->Get("version"));
  if (!tables.ok()) return Fail(tables.status().message());
  absl::StatusOr<const DecisionTable*> table = (*tables)->Find(args->Get("term"));
  if (!table.ok()) return Fail(table.status().message());
  absl::StatusOr<TableResult> result = (*tables)->Evaluate(**table, *observations);
  if (!result.ok()) return Fail(result.status().message());
  return Print(*args, ViewOf(**tables, **table, *result));
}

}  // namespace trialrules::cli
