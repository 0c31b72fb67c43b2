// What the CLI prints for a decision, offline or from a server: a readable
// table, or stable JSON for scripts.
#ifndef TRIALRULES_CLIENT_RENDER_H_
#define TRIALRULES_CLIENT_RENDER_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "service/engine/decision_table.h"
#include "service/engine/rule_set.h"
#include "trialrules/v1/service.pb.h"

namespace trialrules {

// A decision in plain strings, whichever way it was obtained.
struct DecisionView {
  std::string kind;  // "eligibility", ...
  std::string decision;
  std::string protocol_id;
  std::string version;
  std::string sha256;
  struct Rule {
    std::string id;
    std::string kind;  // "inclusion", ...
    std::string text;
    std::string outcome;  // "TRUE", "FALSE", "UNKNOWN"
    bool not_finite = false;
    std::vector<std::string> missing_facts;
  };
  std::vector<Rule> rules;
  std::vector<std::string> missing_facts;
  // Facts read from a FHIR Bundle: per fact, the resource it came from
  // ("Observation/ID"), sorted by fact; shown in JSON when set.
  std::optional<std::vector<std::pair<std::string, std::string>>> provenance;
};

DecisionView ViewOf(const RuleSet& rule_set, const Evaluation& evaluation);
// The same view of a server's answer.
DecisionView ViewOf(EvaluationKind kind, const v1::EvaluateResponse& response);

// {"decision": WORD, "rule_set": {"protocol_id", "version", "sha256"},
//  "rules": [{"id", "kind", "outcome", "missing_facts", "not_finite"}],
//  "missing_facts": [...], "provenance": {FACT: "Observation/ID"} (facts from
//  a FHIR Bundle only)} on one line.
std::string RenderJson(const DecisionView& view);

// Rule, outcome, missing facts and wording as a table, then the decision and
// the version that answered.
std::string RenderTable(const DecisionView& view);

// One graded observation set in plain strings, offline or from a server.
struct GradeView {
  std::string table_id;
  std::string version;
  std::string sha256;
  std::string term;
  std::optional<int> grade;  // none: UNKNOWN
  int grade_min = 0;
  int grade_max = 0;
  std::vector<std::string> domains;
  std::vector<std::string> missing;
  struct Row {
    std::string id;
    std::string domain;
    int output = 0;
    std::string outcome;
    std::vector<std::string> missing;
  };
  std::vector<Row> rows;
};

GradeView ViewOf(const DecisionTableSet& tables, const DecisionTable& table,
                 const TableResult& result);
GradeView ViewOf(const v1::GradeResponse& response, int set);

// {"table", "term", "grade" (null when unknown), "grade_min", "grade_max",
//  "domains", "missing"} on one line.
std::string RenderJson(const GradeView& view);
// Each row's outcome, then the grade (or its range and what would decide
// it) and the table version that graded.
std::string RenderTable(const GradeView& view);

}  // namespace trialrules

#endif  // TRIALRULES_CLIENT_RENDER_H_
