// `trialrules check PATH...`: load rule files, run their test cases, print
// every problem as file:line:col: rule ID: message.
#include <iostream>

#include "client/cli/args.h"
#include "service/catalog/catalog.h"

namespace trialrules::cli {

int RunCheck(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(argv, {}, {"quiet"});
  if (!args.ok() || args->positional.empty()) {
    std::cerr << (args.ok() ? "" : std::string(args.status().message()) + "\n")
              << "usage: trialrules check [--quiet] PATH...\n";
    return kExitUsage;
  }
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
    }
  }
  if (absl::StatusOr<Catalog> catalog = Catalog::Build(rule_sets); !catalog.ok()) {
    std::cout << catalog.status().message() << "\n";
    ++problems;
  }
  if (loads.empty()) {
    std::cout << "no rule files (*" << kRuleFileExtension << ") found\n";
    return kExitProblems;
  }
  if (!args->Has("quiet")) {
    std::cerr << loaded << " of " << loads.size() << " files loaded, " << problems
              << " problems\n";
  }
  return problems == 0 ? kExitOk : kExitProblems;
}

}  // namespace trialrules::cli
