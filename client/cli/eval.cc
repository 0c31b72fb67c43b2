// `trialrules eval`: evaluate one patient's facts (or a cohort's, or the
// trial's) under a rule file, offline.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli/args.h"
#include "client/client.h"
#include "client/facts_file.h"
#include "client/render.h"
#include "service/catalog/reload.h"
#include "service/fhir/bundle_facts.h"
#include "service/util/file.h"

namespace trialrules::cli {
namespace {

constexpr char kUsage[] =
    "usage: trialrules eval (--rules PATH | --server HOST:PORT [TLS options] [--deadline-ms N])\n"
    "         --protocol ID [--version V | --site SITE_ID]\n"
    "         [--kind eligibility|withdrawal|escalation|stopping]\n"
    "         (--facts FILE.json | --fhir BUNDLE.json [--assessment-date YYYY-MM-DD]) [--json]\n"
    "  --fhir (with --rules) reads one patient's FHIR R4 Bundle through the rule file's\n"
    "  bindings, assessed on --assessment-date (default: today, UTC).\n";

int Fail(absl::string_view message) {
  std::cerr << "error: " << message << "\n";
  return kExitProblems;
}

int EvalOnServer(const Args& args, EvaluationKind kind,
                 const std::vector<FactInput>& inputs) {
  absl::StatusOr<std::unique_ptr<TrialRulesClient>> connected = ServerClient(args);
  if (!connected.ok()) return Fail(connected.status().message());
  const TrialRulesClient& client = **connected;
  v1::EvaluateRequest request;
  request.set_protocol_id(args.Get("protocol"));
  request.set_version(args.Get("version"));
  request.set_site_id(args.Get("site"));
  AddFacts(inputs, &request);
  absl::StatusOr<v1::EvaluateResponse> response = client.Evaluate(kind, request);
  if (!response.ok()) return Fail(response.status().message());
  DecisionView view = ViewOf(kind, *response);
  if (args.Has("json")) {
    std::cout << RenderJson(view);
    return kExitOk;
  }
  // The table shows each rule's wording: the server's rule set has it.
  if (absl::StatusOr<v1::RuleSetInfo> info =
          client.GetRuleSet(view.protocol_id, view.version);
      info.ok()) {
    for (DecisionView::Rule& rule : view.rules) {
      for (const v1::RuleInfo& described : info->rules()) {
        if (described.id() == rule.id) rule.text = described.text();
      }
    }
  }
  std::cout << RenderTable(view);
  return kExitOk;
}

}  // namespace

// One patient's FHIR Bundle, read through the bindings of the version in
// force on the assessment date: the flag's, else today.
int EvalBundle(const Args& args, EvaluationKind kind) {
  std::optional<DayNumber> date;
  if (!args.Get("assessment-date").empty()) {
    absl::StatusOr<DayNumber> day = ParseIsoDate(args.Get("assessment-date"));
    if (!day.ok()) {
      std::cerr << "--assessment-date: " << day.status().message() << "\n" << kUsage;
      return kExitUsage;
    }
    date = *day;
  }
  absl::StatusOr<std::string> bundle = ReadFileBytes(args.Get("fhir"));
  if (!bundle.ok()) return Fail(absl::StrCat("cannot read ", args.Get("fhir")));
  const std::shared_ptr<const Catalog> catalog =
      LoadLocalCatalog(args.Get("rules"), /*report_refusals=*/true);
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set = catalog->Select(
      {args.Get("protocol"), args.Get("version"), date, args.Get("site")}, TodayUtc());
  if (!rule_set.ok()) return Fail(rule_set.status().message());
  if (absl::Status s = (*rule_set)->CanDecide(kind); !s.ok()) return Fail(s.message());

  BundleOptions options;
  options.assessment_date = date.value_or(TodayUtc());
  absl::StatusOr<BundleFacts> from_bundle =
      FactsFromBundle(*bundle, **rule_set, options);
  if (!from_bundle.ok()) return Fail(from_bundle.status().message());
  std::vector<FactInput> inputs = from_bundle->facts;
  // The assessment date is the request's, as a typed fact is: a Bundle
  // that gives it too gives it a second time.
  if ((*rule_set)->FindFact("assessment_date") >= 0) {
    for (const auto& [fact, resource] : from_bundle->provenance) {
      if (fact == "assessment_date") {
        return Fail(absl::StrCat("fact \"assessment_date\" is given more than one way: ",
                                 resource, " and the request; a fact has one source"));
      }
    }
    inputs.push_back({"assessment_date", FormatIsoDate(options.assessment_date), ""});
  }
  absl::StatusOr<FactValues> facts = (*rule_set)->BindFacts(inputs);
  if (!facts.ok()) return Fail(facts.status().message());
  const Evaluation evaluation = (*rule_set)->Evaluate(kind, *facts);
  DecisionView view = ViewOf(**rule_set, evaluation);
  view.provenance = from_bundle->provenance;
  std::cout << (args.Has("json") ? RenderJson(view) : RenderTable(view));
  return kExitOk;
}

int RunEval(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(
      argv,
      WithServerOptions(
          {"rules", "protocol", "version", "site", "kind", "facts", "fhir", "assessment-date"}),
      {"json"});
  // A Bundle is read offline only (--rules); --assessment-date goes with it.
  if (!args.ok() || !args->positional.empty() ||
      args->Get("rules").empty() == args->Get("server").empty() ||
      args->Get("protocol").empty() || args->Get("facts").empty() == args->Get("fhir").empty() ||
      (!args->Get("fhir").empty() && args->Get("rules").empty()) ||
      (!args->Get("assessment-date").empty() && args->Get("fhir").empty())) {
    if (!args.ok()) std::cerr << args.status().message() << "\n";
    std::cerr << kUsage << kServerUsage;
    return kExitUsage;
  }
  const std::optional<EvaluationKind> kind =
      ParseEvaluationKind(args->Get("kind", "eligibility"));
  if (!kind) {
    std::cerr << "--kind \"" << args->Get("kind") << "\" is not one of "
              << "eligibility, withdrawal, escalation, stopping\n" << kUsage;
    return kExitUsage;
  }

  if (!args->Get("fhir").empty()) return EvalBundle(*args, *kind);

  absl::StatusOr<std::string> facts_text = ReadFileBytes(args->Get("facts"));
  if (!facts_text.ok()) return Fail(absl::StrCat("cannot read ", args->Get("facts")));
  absl::StatusOr<std::vector<FactInput>> inputs = ParseFactsJson(*facts_text);
  if (!inputs.ok()) return Fail(inputs.status().message());

  if (!args->Get("server").empty()) {
    return EvalOnServer(*args, *kind, *inputs);
  }

  const std::shared_ptr<const Catalog> catalog =
      LoadLocalCatalog(args->Get("rules"), /*report_refusals=*/true);

  absl::StatusOr<std::optional<DayNumber>> as_of =
      ParseAsOfDate("fact \"assessment_date\"", AssessmentDate(*inputs).value_or(""));
  if (!as_of.ok()) return Fail(as_of.status().message());
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set = catalog->Select(
      {args->Get("protocol"), args->Get("version"), *as_of, args->Get("site")}, TodayUtc());
  if (!rule_set.ok()) return Fail(rule_set.status().message());
  if (absl::Status s = (*rule_set)->CanDecide(*kind); !s.ok()) return Fail(s.message());

  absl::StatusOr<FactValues> facts = (*rule_set)->BindFacts(*inputs);
  if (!facts.ok()) return Fail(facts.status().message());
  const Evaluation evaluation = (*rule_set)->Evaluate(*kind, *facts);
  const DecisionView view = ViewOf(**rule_set, evaluation);
  std::cout << (args->Has("json") ? RenderJson(view) : RenderTable(view));
  return kExitOk;
}

}  // namespace trialrules::cli
