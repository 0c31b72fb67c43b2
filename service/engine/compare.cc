#include "service/engine/compare.h"

namespace trialrules {
namespace {

// Rule id → outcome, for one patient under one version, with the kind of
// rule for what its absence means.
std::map<std::string, std::pair<RuleKind, Outcome>> Outcomes(const RuleSet& rule_set,
                                                             const Evaluation& evaluation) {
  std::map<std::string, std::pair<RuleKind, Outcome>> outcomes;
  for (const RuleResult& result : evaluation.rules) {
    const RuleSpec& spec = rule_set.rules()[result.rule];
    outcomes[spec.id] = {spec.kind, result.outcome};
  }
  return outcomes;
}

// A rule a version does not have is as if it held no objection: an
// inclusion criterion met, any other rule not triggered.
Outcome Absent(RuleKind kind) {
  return kind == RuleKind::kInclusion ? Outcome::kTrue : Outcome::kFalse;
}

}  // namespace

VersionComparison CompareVersions(const RuleSet& base, const RuleSet& candidate,
                                  EvaluationKind kind,
                                  absl::Span<const PatientFacts> patients) {
  VersionComparison comparison;
  Evaluation base_evaluation, candidate_evaluation;
  for (const PatientFacts& patient : patients) {
    ++comparison.patients;
    std::vector<std::string> ignored;
    absl::StatusOr<FactValues> base_facts = base.BindFacts(patient.facts, &ignored);
    absl::StatusOr<FactValues> candidate_facts = candidate.BindFacts(patient.facts, &ignored);
    if (!base_facts.ok() || !candidate_facts.ok()) {
      const absl::Status& status =
          !base_facts.ok() ? base_facts.status() : candidate_facts.status();
      comparison.refused.emplace_back(patient.subject_ref, std::string(status.message()));
      continue;
    }
    base.Evaluate(kind, *base_facts, &base_evaluation);
    candidate.Evaluate(kind, *candidate_facts, &candidate_evaluation);
    ++comparison.transitions[{base_evaluation.decision, candidate_evaluation.decision}];
    if (base_evaluation.decision == candidate_evaluation.decision) continue;
    ++comparison.changed;
    PatientChange change{patient.subject_ref, base_evaluation.decision,
                         candidate_evaluation.decision, {}};
    const auto before = Outcomes(base, base_evaluation);
    const auto after = Outcomes(candidate, candidate_evaluation);
    for (const auto& [id, rule] : before) {
      const auto other = after.find(id);
      const Outcome now = other == after.end() ? Absent(rule.first) : other->second.second;
      if (now != rule.second) change.rules.push_back(id);
    }
    for (const auto& [id, rule] : after) {
      if (!before.count(id) && rule.second != Absent(rule.first)) change.rules.push_back(id);
    }
    for (const std::string& id : change.rules) ++comparison.rules_causing_changes[id];
    comparison.changes.push_back(std::move(change));
  }
  return comparison;
}

}  // namespace trialrules
