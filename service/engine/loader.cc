#include "service/engine/loader.h"

#include "service/engine/check.h"
#include "service/engine/parse.h"

namespace trialrules {

LoadResult LoadRuleSet(absl::string_view text, absl::string_view file_name,
                       KeepGoing keep_going) {
  LoadResult result;
  // Every phase asks through this, so the first refusal is kept whichever
  // phase met it.
  auto check_in = [&] {
    if (result.stopped.ok()) result.stopped = keep_going();
    return result.stopped;
  };
  std::unique_ptr<ParsedRuleFile> parsed = ParseRuleFile(text, file_name, &result.problems);
  if (parsed == nullptr || !check_in().ok()) return result;

  RuleSetDefinition definition;
  if (!CheckRuleFile(*parsed, &definition, &result.problems, check_in) ||
      !result.stopped.ok()) {
    return result;
  }
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set =
      RuleSet::Create(std::move(definition), check_in);
  if (!result.stopped.ok()) return result;
  if (!rule_set.ok()) {
    result.problems.push_back({parsed->file_name, 0, 0, "",
                               std::string(rule_set.status().message())});
    return result;
  }
  // A stop is already in result.stopped (check_in).
  RunSelfTests(*parsed, **rule_set, check_in, &result.tests, &result.problems,
               &result.coverage)
      .IgnoreError();
  if (result.stopped.ok() && result.problems.empty()) result.rule_set = *std::move(rule_set);
  return result;
}

}  // namespace trialrules
