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

namespace {

std::string Provenance(const DecisionView& view) {
  if (!view.provenance) return "";
  std::vector<std::string> members;
  for (const auto& [fact, resource] : *view.provenance) {
    members.push_back(absl::StrCat(JsonQuote(fact), ":", JsonQuote(resource)));
  }
  return absl::StrCat(",\"provenance\":{", absl::StrJoin(members, ","), "}");
}

}  // namespace

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
      ",\"missing_facts\":", JsonList(view.missing_facts), Provenance(view), "}\n");
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

GradeView ViewOf(const DecisionTableSet& tables, const DecisionTable& table,
                 const TableResult& result) {
  GradeView view;
  view.table_id = tables.table_id();
  view.version = tables.version();
  view.sha256 = tables.sha256();
  view.term = table.term;
  if (result.output) view.grade = static_cast<int>(*result.output);
  view.grade_min = static_cast<int>(result.min);
  view.grade_max = static_cast<int>(result.max);
  view.domains = result.Domains(table);
  for (int input : result.missing_inputs) view.missing.push_back(table.inputs()[input].name);
  for (const RuleResult& row : result.rows) {
    const TableRowSpec& spec = table.rows[row.rule];
    GradeView::Row out{spec.id, spec.domain, static_cast<int>(spec.output),
                       std::string(OutcomeName(row.outcome)), {}};
    for (int input : row.missing_facts) out.missing.push_back(table.inputs()[input].name);
    view.rows.push_back(std::move(out));
  }
  return view;
}

GradeView ViewOf(const v1::GradeResponse& response, int set) {
  const v1::GradeResult& result = response.results(set);
  GradeView view;
  view.table_id = response.table().table_id();
  view.version = response.table().version();
  view.sha256 = response.table().sha256();
  view.term = response.table().term();
  if (result.known()) view.grade = result.grade();
  view.grade_min = result.grade_min();
  view.grade_max = result.grade_max();
  view.domains.assign(result.domains().begin(), result.domains().end());
  view.missing.assign(result.missing().begin(), result.missing().end());
  for (const v1::RowOutcome& row : result.rows()) {
    view.rows.push_back({row.id(), row.domain(), static_cast<int>(row.output()),
                         WithoutPrefix(v1::Outcome_Name(row.outcome()), "OUTCOME_"),
                         {row.missing().begin(), row.missing().end()}});
  }
  return view;
}

std::string RenderJson(const GradeView& view) {
  return absl::StrCat("{\"table\":", JsonQuote(view.table_id), ",\"term\":", JsonQuote(view.term),
                      ",\"grade\":", view.grade ? absl::StrCat(*view.grade) : "null",
                      ",\"grade_min\":", view.grade_min, ",\"grade_max\":", view.grade_max,
                      ",\"domains\":", JsonList(view.domains),
                      ",\"missing\":", JsonList(view.missing), "}\n");
}

std::string RenderTable(const GradeView& view) {
  size_t id_width = 3;
  size_t domain_width = 6;
  for (const GradeView::Row& row : view.rows) {
    id_width = std::max(id_width, row.id.size());
    domain_width = std::max(domain_width, row.domain.size());
  }
  std::string out = absl::StrFormat("%-*s  %-*s  %5s  %-7s  %s\n", id_width, "ROW", domain_width,
                                    "DOMAIN", "GRADE", "OUTCOME", "MISSING");
  for (const GradeView::Row& row : view.rows) {
    absl::StrAppendFormat(&out, "%-*s  %-*s  %5d  %-7s  %s\n", id_width, row.id, domain_width,
                          row.domain, row.output, row.outcome, absl::StrJoin(row.missing, ", "));
  }
  if (view.grade) {
    absl::StrAppend(&out, "\n", view.term, " grade: ", *view.grade);
    if (!view.domains.empty()) {
      absl::StrAppend(&out, " (", absl::StrJoin(view.domains, ", "), ")");
    }
    out += "\n";
  } else {
    absl::StrAppend(&out, "\n", view.term, " grade: UNKNOWN, between ", view.grade_min, " and ",
                    view.grade_max, "\nwould be decided by: ", absl::StrJoin(view.missing, ", "),
                    "\n");
  }
  absl::StrAppend(&out, "graded by: ", view.table_id, " version ", view.version, " (sha256 ",
                  view.sha256, ")\n");
  return out;
}

}  // namespace trialrules
