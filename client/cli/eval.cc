// `trialrules eval`: evaluate one patient's facts (or a cohort's, or the
// trial's) under a rule file, offline.
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli/args.h"
#include "client/facts_file.h"
#include "client/render.h"
#include "service/catalog/catalog.h"

namespace trialrules::cli {
namespace {

constexpr char kUsage[] =
    "usage: trialrules eval --rules PATH --protocol ID [--version V]\n"
    "         [--kind eligibility|withdrawal|escalation|stopping]\n"
    "         --facts FILE.json [--json]\n";

int Fail(absl::string_view message) {
  std::cerr << "error: " << message << "\n";
  return kExitProblems;
}

DayNumber TodayUtc() {
  const absl::CivilDay today =
      absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  return static_cast<DayNumber>(today - absl::CivilDay(1970, 1, 1));
}

}  // namespace

int RunEval(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args =
      ParseArgs(argv, {"rules", "protocol", "version", "kind", "facts"}, {"json"});
  if (!args.ok() || !args->positional.empty() || args->Get("rules").empty() ||
      args->Get("protocol").empty() || args->Get("facts").empty()) {
    if (!args.ok()) std::cerr << args.status().message() << "\n";
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::optional<EvaluationKind> kind =
      ParseEvaluationKind(args->Get("kind", "eligibility"));
  if (!kind) {
    std::cerr << "--kind \"" << args->Get("kind") << "\" is not one of "
              << "eligibility, withdrawal, escalation, stopping\n" << kUsage;
    return kExitUsage;
  }

  std::ifstream facts_in(args->Get("facts"), std::ios::binary);
  if (!facts_in) return Fail(absl::StrCat("cannot read ", args->Get("facts")));
  std::stringstream facts_text;
  facts_text << facts_in.rdbuf();
  absl::StatusOr<std::vector<FactInput>> inputs = ParseFactsJson(facts_text.str());
  if (!inputs.ok()) return Fail(inputs.status().message());

  std::vector<std::shared_ptr<const RuleSet>> rule_sets;
  for (const FileLoad& load : LoadRuleFiles({args->Get("rules")})) {
    for (const Problem& problem : load.result.problems) {
      std::cerr << problem.ToString() << "\n";
    }
    if (load.result.rule_set != nullptr) rule_sets.push_back(load.result.rule_set);
  }
  absl::StatusOr<Catalog> catalog = Catalog::Build(std::move(rule_sets));
  if (!catalog.ok()) return Fail(catalog.status().message());

  DayNumber as_of = TodayUtc();
  if (std::optional<std::string> date = AssessmentDate(*inputs)) {
    absl::StatusOr<DayNumber> day = ParseIsoDate(*date);
    if (!day.ok()) {
      return Fail(absl::StrCat("fact \"assessment_date\" = \"", *date,
                               "\": ", day.status().message()));
    }
    as_of = *day;
  }
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set =
      catalog->Select(args->Get("protocol"), args->Get("version"), as_of);
  if (!rule_set.ok()) return Fail(rule_set.status().message());

  absl::StatusOr<FactValues> facts = (*rule_set)->BindFacts(*inputs);
  if (!facts.ok()) return Fail(facts.status().message());
  const Evaluation evaluation = (*rule_set)->Evaluate(*kind, *facts);
  const DecisionView view = ViewOf(**rule_set, evaluation);
  std::cout << (args->Has("json") ? RenderJson(view) : RenderTable(view));
  return kExitOk;
}

}  // namespace trialrules::cli
