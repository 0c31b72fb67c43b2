#include "service/engine/loader.h"

#include "service/engine/check.h"
#include "service/engine/parse.h"

namespace trialrules {

LoadResult LoadRuleSet(absl::string_view text, absl::string_view file_name) {
  LoadResult result;
  std::unique_ptr<ParsedRuleFile> parsed = ParseRuleFile(text, file_name, &result.problems);
  if (parsed == nullptr) return result;

  RuleSetDefinition definition;
  if (!CheckRuleFile(*parsed, &definition, &result.problems)) return result;

  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set =
      RuleSet::Create(std::move(definition));
  if (!rule_set.ok()) {
    result.problems.push_back({parsed->file_name, 0, 0, "",
                               std::string(rule_set.status().message())});
    return result;
  }
  result.tests = RunSelfTests(*parsed, **rule_set, &result.problems);
  if (result.problems.empty()) result.rule_set = *std::move(rule_set);
  return result;
}

}  // namespace trialrules
