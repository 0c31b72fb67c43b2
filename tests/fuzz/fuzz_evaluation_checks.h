// Checks that one evaluation's answer is well formed, shared by the fuzz
// targets that evaluate rule sets.
#ifndef TRIALRULES_TESTS_FUZZ_FUZZ_EVALUATION_CHECKS_H_
#define TRIALRULES_TESTS_FUZZ_FUZZ_EVALUATION_CHECKS_H_

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/engine/rule_set.h"
#include "tests/fuzz/fuzz_check.h"

namespace trialrules::fuzz {

inline bool DecisionFitsKind(EvaluationKind kind, Decision decision) {
  if (decision == Decision::kIndeterminate) return true;
  switch (kind) {
    case EvaluationKind::kEligibility:
      return decision == Decision::kEligible || decision == Decision::kIneligible;
    case EvaluationKind::kWithdrawal:
      return decision == Decision::kWithdraw || decision == Decision::kContinue;
    case EvaluationKind::kEscalation:
      return decision == Decision::kEscalate || decision == Decision::kExpand ||
             decision == Decision::kDeEscalate || decision == Decision::kContinue;
    case EvaluationKind::kStopping:
      return decision == Decision::kTriggered || decision == Decision::kNotTriggered;
  }
  return false;
}

// The decision the README defines, recomputed from the rule outcomes.
inline Decision ExpectedDecision(const RuleSet& rule_set, EvaluationKind kind,
                                 const Evaluation& evaluation) {
  const std::vector<RuleSpec>& specs = rule_set.rules();
  bool unknown = false;
  switch (kind) {
    case EvaluationKind::kEligibility:
      for (const RuleResult& r : evaluation.rules) {
        const RuleSpec& spec = specs[r.rule];
        if (spec.informational) continue;
        const Outcome against =
            spec.kind == RuleKind::kInclusion ? Outcome::kFalse : Outcome::kTrue;
        if (r.outcome == against) return Decision::kIneligible;
        unknown |= r.outcome == Outcome::kUnknown;
      }
      return unknown ? Decision::kIndeterminate : Decision::kEligible;
    case EvaluationKind::kWithdrawal:
    case EvaluationKind::kStopping:
      for (const RuleResult& r : evaluation.rules) {
        if (specs[r.rule].informational) continue;
        if (r.outcome == Outcome::kTrue) {
          return kind == EvaluationKind::kWithdrawal ? Decision::kWithdraw
                                                     : Decision::kTriggered;
        }
        unknown |= r.outcome == Outcome::kUnknown;
      }
      if (unknown) return Decision::kIndeterminate;
      return kind == EvaluationKind::kWithdrawal ? Decision::kContinue
                                                 : Decision::kNotTriggered;
    case EvaluationKind::kEscalation: {
      int holding = 0;
      Decision action = Decision::kIndeterminate;
      for (const RuleResult& r : evaluation.rules) {
        if (r.outcome == Outcome::kTrue) {
          ++holding;
          action = specs[r.rule].action;
        }
      }
      return holding == 1 ? action : Decision::kIndeterminate;
    }
  }
  return Decision::kIndeterminate;
}

inline bool SameEvaluation(const Evaluation& a, const Evaluation& b) {
  if (a.kind != b.kind || a.decision != b.decision ||
      a.missing_facts != b.missing_facts || a.rules.size() != b.rules.size()) {
    return false;
  }
  for (size_t i = 0; i < a.rules.size(); ++i) {
    const RuleResult& x = a.rules[i];
    const RuleResult& y = b.rules[i];
    if (x.rule != y.rule || x.outcome != y.outcome || x.not_finite != y.not_finite ||
        x.missing_facts != y.missing_facts) {
      return false;
    }
  }
  return true;
}

// Evaluates `facts` for `kind` and checks the answer. With
// `unknown_is_explained`, every UNKNOWN rule must name a missing fact or be
// marked not_finite (true when no given fact is infinite).
inline Evaluation CheckEvaluation(const RuleSet& rule_set, EvaluationKind kind,
                                  const FactValues& facts,
                                  bool unknown_is_explained = true) {
  const Evaluation evaluation = rule_set.Evaluate(kind, facts);
  const std::vector<int>& plan = rule_set.RulesFor(kind);
  const int fact_count = static_cast<int>(rule_set.facts().size());
  FUZZ_CHECK(evaluation.kind == kind, "kind");
  FUZZ_CHECK(evaluation.rules.size() == plan.size(),
             absl::StrCat(evaluation.rules.size(), " results for ", plan.size(), " rules"));
  std::vector<int> union_of_missing;
  for (size_t i = 0; i < evaluation.rules.size(); ++i) {
    const RuleResult& r = evaluation.rules[i];
    FUZZ_CHECK(r.rule == plan[i], "results out of rule order");
    const std::string& id = rule_set.rules()[r.rule].id;
    FUZZ_CHECK(r.outcome == Outcome::kTrue || r.outcome == Outcome::kFalse ||
                   r.outcome == Outcome::kUnknown,
               absl::StrCat("rule ", id, ": outcome ", static_cast<int>(r.outcome)));
    if (r.outcome != Outcome::kUnknown) {
      FUZZ_CHECK(r.missing_facts.empty(), "rule " + id + ": decided, with missing facts");
      FUZZ_CHECK(!r.not_finite, "rule " + id + ": decided, yet not finite");
    } else if (unknown_is_explained) {
      FUZZ_CHECK(!r.missing_facts.empty() || r.not_finite,
                 "rule " + id + ": UNKNOWN with no missing fact and not marked not_finite");
    }
    for (int f : r.missing_facts) {
      FUZZ_CHECK(f >= 0 && f < fact_count, absl::StrCat("rule ", id, ": missing fact ", f));
      FUZZ_CHECK(!facts.present[f], "rule " + id + ": given fact " +
                                        rule_set.facts()[f].name + " listed as missing");
      union_of_missing.push_back(f);
    }
  }
  std::sort(union_of_missing.begin(), union_of_missing.end());
  union_of_missing.erase(std::unique(union_of_missing.begin(), union_of_missing.end()),
                         union_of_missing.end());
  FUZZ_CHECK(evaluation.missing_facts == union_of_missing,
             "missing facts are not the union of the rules' missing facts");
  FUZZ_CHECK(DecisionFitsKind(kind, evaluation.decision),
             absl::StrCat(DecisionName(evaluation.decision), " for ",
                          EvaluationKindName(kind)));
  const Decision expected = ExpectedDecision(rule_set, kind, evaluation);
  FUZZ_CHECK(evaluation.decision == expected,
             absl::StrCat(DecisionName(evaluation.decision), ", expected ",
                          DecisionName(expected)));
  // Evaluating again (a pooled state, storage reused) gives the same answer.
  Evaluation again;
  again.rules.resize(3);
  rule_set.Evaluate(kind, facts, &again);
  FUZZ_CHECK(SameEvaluation(evaluation, again), "a second evaluation differs");
  return evaluation;
}

}  // namespace trialrules::fuzz

#endif  // TRIALRULES_TESTS_FUZZ_FUZZ_EVALUATION_CHECKS_H_
