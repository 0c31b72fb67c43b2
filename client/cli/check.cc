// `trialrules check PATH...`: load rule files and decision-table files, run
// their test cases, print every problem as file:line:col: rule ID: message.
#include <iostream>

#include "absl/strings/str_join.h"

#include "client/cli/args.h"
#include "client/client.h"
#include "service/catalog/reload.h"
#include "service/util/file.h"

namespace trialrules::cli {

namespace {

// Sends each file to the server's ValidateRuleSet: the same checks, run by
// the engine the service runs. Nothing is activated.
int CheckOnServer(const Args& args) {
  absl::StatusOr<std::unique_ptr<TrialRulesClient>> connected = ServerClient(args);
  if (!connected.ok()) {
    std::cerr << connected.status().message() << "\n";
    return kExitUsage;
  }
  const TrialRulesClient& client = **connected;
  std::vector<Problem> listing;
  std::vector<std::string> files = ListRuleFiles(args.positional, &listing);
  for (std::string& table : ListTableFiles(args.positional)) files.push_back(std::move(table));
  int problems = 0;
  for (const Problem& problem : listing) {
    std::cout << problem.ToString() << "\n";
    ++problems;
  }
  for (const std::string& file : files) {
    const absl::StatusOr<std::string> text = ReadFileBytes(file);
    if (!text.ok()) {
      std::cout << file << ":0:0: " << text.status().message() << "\n";
      ++problems;
      continue;
    }
    absl::StatusOr<v1::ValidateRuleSetResponse> response =
        client.ValidateRuleSet(*text, file);
    if (!response.ok()) {
      std::cerr << "error: " << response.status().message() << "\n";
      return kExitProblems;
    }
    for (const v1::Problem& problem : response->problems()) {
      std::cout << problem.text() << "\n";
      ++problems;
    }
    if (response->valid() && !args.Has("quiet")) {
      std::cerr << file << ": ok: "
                << (response->has_table()
                        ? "decision table " + response->table().table_id() + " version " +
                              response->table().version()
                        : response->rule_set().protocol_id() + " version " +
                              response->rule_set().version())
                << ", " << response->test_cases_size() << " test cases passed\n";
    }
  }
  if (files.empty()) {
    std::cout << "no rule files (*" << kRuleFileExtension << ") found\n";
    return kExitProblems;
  }
  return problems == 0 ? kExitOk : kExitProblems;
}

// Per rule: the outcomes its test cases reach, and the boundaries of its
// comparisons that no test case sits on.
void PrintCoverage(const RuleSet& rule_set, const std::vector<RuleCoverage>& coverage) {
  size_t boundaries = 0, tested = 0;
  for (const RuleCoverage& rule : coverage) {
    const RuleSpec& spec = rule_set.rules()[rule.rule];
    std::vector<std::string> outcomes, untested;
    for (Outcome outcome : {Outcome::kTrue, Outcome::kFalse, Outcome::kUnknown}) {
      if (rule.outcomes.contains(outcome)) outcomes.emplace_back(OutcomeName(outcome));
    }
    for (const BoundaryCoverage& boundary : rule.boundaries) {
      ++boundaries;
      if (boundary.tested) {
        ++tested;
      } else {
        untested.push_back("`" + boundary.comparison + "`");
      }
    }
    std::cerr << "  " << spec.id << " (" << RuleKindName(spec.kind) << "): "
              << (outcomes.empty() ? "no outcome" : absl::StrJoin(outcomes, " ")) << "; "
              << rule.boundaries.size() - untested.size() << " of " << rule.boundaries.size()
              << " boundaries tested"
              << (untested.empty() ? "" : "; untested: " + absl::StrJoin(untested, ", "))
              << "\n";
  }
  std::cerr << "  boundaries: " << tested << " of " << boundaries
            << " tested (a test case with both sides equal)\n";
}

}  // namespace

int RunCheck(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(argv, WithServerOptions({}), {"quiet", "coverage"});
  if (!args.ok() || args->positional.empty()) {
    std::cerr << (args.ok() ? "" : std::string(args.status().message()) + "\n")
              << "usage: trialrules check [--quiet] [--coverage] [--server HOST:PORT [TLS options]] "
                 "PATH...\n"
              << kServerUsage;
    return kExitUsage;
  }
  if (!args->Get("server").empty()) return CheckOnServer(*args);
  const std::vector<FileLoad> loads = LoadRuleFiles(args->positional);
  int problems = 0;
  int loaded = 0;
  std::vector<std::shared_ptr<const RuleSet>> rule_sets;
  for (const FileLoad& load : loads) {
    for (const Problem& problem : load.result.problems) {
      std::cout << problem.ToString() << "\n";
      ++problems;
    }
    if (load.result.rule_set == nullptr) continue;
    ++loaded;
    rule_sets.push_back(load.result.rule_set);
    if (!args->Has("quiet")) {
      const RuleSet& rs = *load.result.rule_set;
      std::cerr << load.path << ": ok: " << rs.protocol_id() << " version "
                << rs.version() << ", " << rs.rules().size() << " rules, "
                << load.result.tests.size() << " test cases passed\n";
      if (args->Has("coverage")) PrintCoverage(rs, load.result.coverage);
    }
  }
  std::vector<std::shared_ptr<const DecisionTableSet>> tables;
  const std::vector<TableFileLoad> table_loads = LoadTableFiles(args->positional);
  for (const TableFileLoad& load : table_loads) {
    for (const Problem& problem : load.result.problems) {
      std::cout << problem.ToString() << "\n";
      ++problems;
    }
    for (const std::string& note : load.result.notes) {
      std::cerr << load.path << ": note: " << note << "\n";
    }
    if (load.result.tables == nullptr) continue;
    ++loaded;
    tables.push_back(load.result.tables);
    if (args->Has("quiet")) continue;
    const DecisionTableSet& set = *load.result.tables;
    size_t rows = 0;
    for (const DecisionTable& table : set.tables()) rows += table.rows.size();
    std::cerr << load.path << ": ok: decision table " << set.table_id() << " version "
              << set.version() << ", " << set.tables().size() << " terms, " << rows
              << " rows, " << load.result.tests.size() << " test cases passed\n";
    if (!args->Has("coverage")) continue;
    for (size_t t = 0; t < set.tables().size(); ++t) {
      const DecisionTable& table = set.tables()[t];
      for (size_t r = 0; r < table.rows.size(); ++r) {
        std::cerr << "  " << table.term << " row " << table.rows[r].id << " (output "
                  << table.rows[r].output << "): holds in "
                  << load.result.row_test_counts[t][r] << " test cases\n";
      }
    }
  }
  std::vector<Problem> references;
  CheckTableReferences(rule_sets, tables, &references);
  for (const Problem& problem : references) {
    std::cout << problem.ToString() << "\n";
    ++problems;
  }
  if (absl::StatusOr<Catalog> catalog = Catalog::Build(rule_sets, {}, {}, tables);
      !catalog.ok()) {
    std::cout << catalog.status().message() << "\n";
    ++problems;
  }
  if (loads.empty() && table_loads.empty()) {
    std::cout << "no rule files (*" << kRuleFileExtension << ") found\n";
    return kExitProblems;
  }
  if (!args->Has("quiet")) {
    std::cerr << loaded << " of " << loads.size() + table_loads.size() << " files loaded, "
              << problems
              << " problems\n";
  }
  return problems == 0 ? kExitOk : kExitProblems;
}

}  // namespace trialrules::cli
