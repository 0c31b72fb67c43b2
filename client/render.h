// What the CLI prints for a decision, offline or from a server: a readable
// table, or stable JSON for scripts.
#ifndef TRIALRULES_CLIENT_RENDER_H_
#define TRIALRULES_CLIENT_RENDER_H_

#include <string>
#include <vector>

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
};

DecisionView ViewOf(const RuleSet& rule_set, const Evaluation& evaluation);
// The same view of a server's answer.
DecisionView ViewOf(EvaluationKind kind, const v1::EvaluateResponse& response);

// {"decision": WORD, "rule_set": {"protocol_id", "version", "sha256"},
//  "rules": [{"id", "kind", "outcome", "missing_facts", "not_finite"}],
//  "missing_facts": [...]} on one line.
std::string RenderJson(const DecisionView& view);

// Rule, outcome, missing facts and wording as a table, then the decision and
// the version that answered.
std::string RenderTable(const DecisionView& view);

}  // namespace trialrules

#endif  // TRIALRULES_CLIENT_RENDER_H_
