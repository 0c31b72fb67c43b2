#include "client/render.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "service/util/json.h"

namespace trialrules {

DecisionView ViewOf(const RuleSet& rule_set, const Evaluation& evaluation) {
  DecisionView view;
  view.kind = std::string(EvaluationKindName(evaluation.kind));
  view.decision = std::string(DecisionName(evaluation.decision));
  view.protocol_id = rule_set.protocol_id();
  view.version = rule_set.version();
  view.sha256 = rule_set.sha256();
  for (const RuleResult& result : evaluation.rules) {
    const RuleSpec& spec = rule_set.rules()[result.rule];
    DecisionView::Rule rule{spec.id, std::string(RuleKindName(spec.kind)),
                            spec.text, std::string(OutcomeName(result.outcome)),
                            result.not_finite, {}};
    for (int f : result.missing_facts) {
      rule.missing_facts.push_back(rule_set.facts()[f].name);
    }
    view.rules.push_back(std::move(rule));
  }
  for (int f : evaluation.missing_facts) {
    view.missing_facts.push_back(rule_set.facts()[f].name);
  }
  return view;
}

namespace {

std::string Shorten(absl::string_view text, size_t width) {
  if (text.size() <= width) return std::string(text);
  return absl::StrCat(text.substr(0, width - 3), "...");
}

}  // namespace

namespace {

// "DECISION_ELIGIBLE" → "ELIGIBLE": the proto's prefixes are for C++'s sake.
std::string WithoutPrefix(const std::string& name, absl::string_view prefix) {
  return absl::StartsWith(name, prefix) ? name.substr(prefix.size()) : name;
}

}  // namespace

DecisionView ViewOf(EvaluationKind kind, const v1::EvaluateResponse& response) {
  DecisionView view;
  view.kind = std::string(EvaluationKindName(kind));
  view.decision = WithoutPrefix(v1::Decision_Name(response.decision()), "DECISION_");
  view.protocol_id = response.rule_set().protocol_id();
  view.version = response.rule_set().version();
  view.sha256 = response.rule_set().sha256();
  for (const v1::RuleOutcome& outcome : response.rules()) {
    view.rules.push_back({outcome.id(), outcome.kind(), "",
                          WithoutPrefix(v1::Outcome_Name(outcome.outcome()), "OUTCOME_"),
                          outcome.not_finite(),
                          {outcome.missing_facts().begin(), outcome.missing_facts().end()}});
  }
  view.missing_facts.assign(response.missing_facts().begin(),
                            response.missing_facts().end());
  return view;
}

std::string RenderJson(const DecisionView& view) {
  std::vector<std::string> rules;
  for (const DecisionView::Rule& rule : view.rules) {
    rules.push_back(absl::StrCat(
        "{\"id\":", JsonQuote(rule.id), ",\"kind\":", JsonQuote(rule.kind),
        ",\"outcome\":", JsonQuote(rule.outcome),
        ",\"missing_facts\":", JsonList(rule.missing_facts),
        ",\"not_finite\":", rule.not_finite ? "true" : "false", "}"));
  }
  return absl::StrCat(
      "{\"decision\":", JsonQuote(view.decision),
      ",\"rule_set\":{\"protocol_id\":", JsonQuote(view.protocol_id),
      ",\"version\":", JsonQuote(view.version),
      ",\"sha256\":", JsonQuote(view.sha256), "}",
      ",\"rules\":[", absl::StrJoin(rules, ","), "]",
      ",\"missing_facts\":", JsonList(view.missing_facts), "}\n");
}

std::string RenderTable(const DecisionView& view) {
  size_t id_width = 4;
  size_t missing_width = 13;
  std::vector<std::string> missing;
  for (const DecisionView::Rule& rule : view.rules) {
    id_width = std::max(id_width, rule.id.size());
    std::string text = absl::StrJoin(rule.missing_facts, ", ");
    if (rule.not_finite) text = text.empty() ? "(not finite)" : text + " (not finite)";
    missing_width = std::max(missing_width, std::min<size_t>(text.size(), 48));
    missing.push_back(std::move(text));
  }
  std::string out = absl::StrFormat("%-*s  %-7s  %-*s  %s\n", id_width, "RULE",
                                    "OUTCOME", missing_width, "MISSING FACTS",
                                    "WORDING");
  for (size_t i = 0; i < view.rules.size(); ++i) {
    const DecisionView::Rule& rule = view.rules[i];
    absl::StrAppendFormat(&out, "%-*s  %-7s  %-*s  %s\n", id_width, rule.id,
                          rule.outcome, missing_width, missing[i],
                          Shorten(rule.text, 70));
  }
  absl::StrAppend(&out, "\n", view.kind, " decision: ", view.decision, "\n");
  if (!view.missing_facts.empty()) {
    absl::StrAppend(&out, "missing facts: ", absl::StrJoin(view.missing_facts, ", "),
                    "\n");
  }
  absl::StrAppend(&out, "answered by: ", view.protocol_id, " version ",
                  view.version, " (sha256 ", view.sha256, ")\n");
  return out;
}

}  // namespace trialrules
