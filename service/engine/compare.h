// Amendment impact: the same patients under two versions of a protocol —
// whose decision changes, and which rules make it change.
#ifndef TRIALRULES_SERVICE_ENGINE_COMPARE_H_
#define TRIALRULES_SERVICE_ENGINE_COMPARE_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "service/engine/rule_set.h"

namespace trialrules {

struct PatientFacts {
  std::string subject_ref;
  std::vector<FactInput> facts;
};

struct PatientChange {
  std::string subject_ref;
  Decision base = Decision::kIndeterminate;
  Decision candidate = Decision::kIndeterminate;
  // Rules whose outcome differs (a rule in one version only counts too).
  std::vector<std::string> rules;
};

struct VersionComparison {
  int patients = 0;
  int changed = 0;
  // Patients whose facts one of the versions refused (message per patient).
  std::vector<std::pair<std::string, std::string>> refused;
  // (base decision, candidate decision) → patients, for every pair seen.
  std::map<std::pair<Decision, Decision>, int> transitions;
  // Rule id → patients whose decision changed and whose outcome of this
  // rule differs between the versions: the rules that cause the changes.
  std::map<std::string, int> rules_causing_changes;
  std::vector<PatientChange> changes;
};

// Facts unknown to one version (a fact an amendment added) are ignored by
// that version, as a caller sending the union of both would ask.
VersionComparison CompareVersions(const RuleSet& base, const RuleSet& candidate,
                                  EvaluationKind kind,
                                  absl::Span<const PatientFacts> patients);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_COMPARE_H_
