// The canonical facts of a decision: one JSON object, names sorted, values
// in canonical units (numbers as RFC 8785 writes them), dates as YYYY-MM-DD,
// missing facts left out. Equal facts give equal text, whatever units or
// order they were sent in: its SHA-256 in the audit log identifies a
// decision's inputs without writing patient data.
#ifndef TRIALRULES_SERVICE_AUDIT_CANONICAL_FACTS_H_
#define TRIALRULES_SERVICE_AUDIT_CANONICAL_FACTS_H_

#include <string>

#include "service/engine/facts.h"
#include "service/engine/rule_set.h"
#include "trialrules/v1/trial.pb.h"

namespace trialrules {

// Appends the canonical facts of `facts` (bound by `rule_set`) to `out`.
void AppendCanonicalFacts(const RuleSet& rule_set, const FactValues& facts,
                          std::string* out);
std::string CanonicalFacts(const RuleSet& rule_set, const FactValues& facts);

// A trial's records as one canonical JSON (RFC 8785) text: protobuf's JSON
// form with the field names of the API, members sorted, each event's
// observations by name, patients and events in the caller's order, so that
// the same records give the same text.
std::string CanonicalRecords(const v1::TrialRecords& records);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_AUDIT_CANONICAL_FACTS_H_
