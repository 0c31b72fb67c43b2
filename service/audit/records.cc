#include "service/audit/records.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "service/audit/canonical_facts.h"
#include "service/audit/jcs.h"
#include "service/util/json.h"
#include "service/util/sha256.h"

namespace trialrules {

namespace {

// Members of a canonical (RFC 8785) object come sorted by name: rule
// outcomes are written in rule id order, not the file's. Per thread,
// capacity kept: a record is written per decision.
const std::vector<int>& ByRuleId(const RuleSet& rule_set, const std::vector<RuleResult>& rules) {
  thread_local std::vector<int> slot, order;
  slot.assign(rule_set.rules().size(), -1);
  for (size_t i = 0; i < rules.size(); ++i) slot[rules[i].rule] = static_cast<int>(i);
  order.clear();
  for (int rule : rule_set.rules_by_id()) {
    if (slot[rule] >= 0) order.push_back(slot[rule]);
  }
  return order;
}

absl::string_view TruthLetter(v1::Truth truth) {
  return truth == v1::TRUTH_TRUE ? "T" : truth == v1::TRUTH_FALSE ? "F" : "U";
}

// "facts":{…}, (with include_facts) and "facts_sha256":"…".
void AppendFactsFields(const RuleSet& rule_set, const FactValues& facts, bool include_facts,
                       std::string* out) {
  // The canonical facts go into a per-thread buffer, whose capacity stays.
  thread_local std::string canonical_facts;
  canonical_facts.clear();
  AppendCanonicalFacts(rule_set, facts, &canonical_facts);
  if (include_facts) {
    out->append("\"facts\":");
    out->append(canonical_facts);
    out->push_back(',');
  }
  out->append("\"facts_sha256\":\"");
  AppendSha256Hex(canonical_facts, out);
  out->push_back('"');
}

}  // namespace

// Ids, versions, protocol ids and dose levels are identifiers (checked at
// load): nothing in them needs escaping. Subject and site references come
// from callers.
std::string DecisionRecordJson(const DecisionRecord& record, bool include_facts) {
  const RuleSet& rule_set = *record.rule_set;
  std::string out;
  out.reserve(700);
  absl::StrAppend(&out, "{\"as_of_date\":\"", FormatIsoDate(record.as_of), "\",\"decision\":\"",
                  DecisionName(record.evaluation->decision), "\",\"decision_id\":\"",
                  record.decision_id, "\",");
  if (!record.dose_level.empty()) {
    out.append("\"dose_level\":");
    AppendJsonQuoted(record.dose_level, &out);
    out.push_back(',');
  }
  AppendFactsFields(rule_set, *record.facts, include_facts, &out);
  absl::StrAppend(&out, ",\"method\":\"", record.method, "\",\"protocol_id\":\"",
                  rule_set.protocol_id(), "\",\"rules\":{");
  const std::vector<RuleResult>& rules = record.evaluation->rules;
  bool first = true;
  for (int i : ByRuleId(rule_set, rules)) {
    absl::StrAppend(&out, first ? "\"" : ",\"", rule_set.rules()[rules[i].rule].id, "\":\"",
                    OutcomeName(rules[i].outcome), "\"");
    first = false;
  }
  absl::StrAppend(&out, "},\"sha256\":\"", rule_set.sha256(), "\",\"site_id\":");
  AppendJsonQuoted(record.site_id, &out);
  out.append(",\"subject_ref\":");
  AppendJsonQuoted(record.subject_ref, &out);
  absl::StrAppend(&out, ",\"version\":\"", rule_set.version(), "\"}");
  return out;
}

std::string BatchRecordJson(const std::vector<DecisionRecord>& records, bool include_facts) {
  if (records.empty()) return "";
  const DecisionRecord& first = records.front();
  const RuleSet& rule_set = *first.rule_set;
  std::string bytes;
  bytes.reserve(256 + records.size() * (include_facts ? 1200 : 200));
  absl::StrAppend(&bytes, "{\"as_of_date\":\"", FormatIsoDate(first.as_of),
                  "\",\"decisions\":[");
  for (size_t i = 0; i < records.size(); ++i) {
    const DecisionRecord& record = records[i];
    absl::StrAppend(&bytes, i == 0 ? "" : ",", "{\"decision\":\"",
                    DecisionName(record.evaluation->decision), "\",\"decision_id\":\"",
                    record.decision_id, "\",");
    AppendFactsFields(rule_set, *record.facts, include_facts, &bytes);
    bytes.append(",\"outcomes\":\"");
    for (const RuleResult& result : record.evaluation->rules) {
      bytes += OutcomeName(result.outcome)[0];
    }
    bytes.append("\",\"subject_ref\":");
    AppendJsonQuoted(record.subject_ref, &bytes);
    bytes += '}';
  }
  absl::StrAppend(&bytes, "],\"method\":\"", first.method, "\",\"protocol_id\":\"",
                  rule_set.protocol_id(), "\",\"rule_ids\":[");
  bool first_rule = true;
  for (const RuleResult& result : first.evaluation->rules) {
    absl::StrAppend(&bytes, first_rule ? "\"" : ",\"", rule_set.rules()[result.rule].id,
                    "\"");
    first_rule = false;
  }
  absl::StrAppend(&bytes, "],\"sha256\":\"", rule_set.sha256(), "\",\"site_id\":");
  AppendJsonQuoted(first.site_id, &bytes);
  absl::StrAppend(&bytes, ",\"version\":\"", rule_set.version(), "\"}");
  return bytes;
}

std::string GradingRecordJson(const GradingRecord& record, bool include_facts) {
  const DecisionTableSet& tables = *record.tables;
  const DecisionTable& table = *record.table;
  std::string out;
  absl::StrAppend(&out, "{\"decision_id\":\"", record.decision_id, "\",\"gradings\":[");
  for (size_t i = 0; i < record.results.size(); ++i) {
    const TableResult& result = record.results[i];
    out.append(i == 0 ? "{" : ",{");
    AppendFactsFields(*table.rules, result.inputs, include_facts, &out);
    if (result.output) {
      out.append(",\"grade\":");
      AppendJcsNumber(*result.output, &out);
    } else {
      out.append(",\"grade\":null,\"grade_max\":");
      AppendJcsNumber(result.max, &out);
      out.append(",\"grade_min\":");
      AppendJcsNumber(result.min, &out);
    }
    out.append(",\"rows\":{");
    std::vector<size_t> rows(result.rows.size());
    for (size_t r = 0; r < rows.size(); ++r) rows[r] = r;
    std::sort(rows.begin(), rows.end(), [&](size_t a, size_t b) {
      return table.rows[result.rows[a].rule].id < table.rows[result.rows[b].rule].id;
    });
    for (size_t r = 0; r < rows.size(); ++r) {
      absl::StrAppend(&out, r == 0 ? "\"" : ",\"", table.rows[result.rows[rows[r]].rule].id,
                      "\":\"", OutcomeName(result.rows[rows[r]].outcome), "\"");
    }
    out.append("}}");
  }
  absl::StrAppend(&out, "],\"method\":\"GradeEvents\",\"sha256\":\"", tables.sha256(),
                  "\",\"site_id\":");
  AppendJsonQuoted(record.site_id, &out);
  out.append(",\"subject_ref\":");
  AppendJsonQuoted(record.subject_ref, &out);
  absl::StrAppend(&out, ",\"table_id\":\"", tables.table_id(), "\",\"term\":\"", table.term,
                  "\",\"version\":\"", tables.version(), "\"}");
  return out;
}

std::string TrialRecordJson(const TrialRecord& record, bool include_facts) {
  const RuleSet& rule_set = *record.rule_set;
  const v1::TrialEvaluation& evaluation = *record.evaluation;
  const std::string records = CanonicalRecords(*record.records);
  std::string out;
  absl::StrAppend(&out, "{\"as_of_date\":\"", evaluation.as_of_date(),
                  "\",\"current_dose_level\":");
  AppendJsonQuoted(evaluation.escalation().dose_level(), &out);
  const v1::EscalationOutcome& escalation = evaluation.escalation();
  absl::StrAppend(&out, ",\"decision_id\":\"", record.decision_id,
                  "\",\"escalation\":{\"decision\":\"", escalation.decision(),
                  "\",\"design\":\"", escalation.design(), "\",");
  if (escalation.has_boin()) {
    absl::StrAppend(&out, "\"design_sha256\":\"", escalation.boin().design_sha256(), "\",");
  }
  out.append("\"pending\":[");
  for (int i = 0; i < escalation.pending_size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonQuoted(escalation.pending(i).subject_ref(), &out);
  }
  absl::StrAppend(&out, "]},\"method\":\"EvaluateTrial\",\"patients\":[");
  // Per patient: DLT and evaluable as T/F/U, then each event's criterion
  // ("D2"), "-" for no DLT or "?" for pending, in record order.
  for (int p = 0; p < evaluation.patients_size(); ++p) {
    const v1::PatientAssessment& patient = evaluation.patients(p);
    out.append(p == 0 ? "[" : ",[");
    AppendJsonQuoted(patient.subject_ref(), &out);
    absl::StrAppend(&out, ",\"", TruthLetter(patient.dlt()), TruthLetter(patient.evaluable()),
                    "\",\"");
    for (int e = 0; e < patient.events_size(); ++e) {
      const v1::EventAssessment& event = patient.events(e);
      if (e > 0) out.push_back(' ');
      out.append(event.dlt() == v1::TRUTH_TRUE    ? event.criterion()
                 : event.dlt() == v1::TRUTH_FALSE ? "-"
                                                  : "?");
    }
    out.append("\"]");
  }
  absl::StrAppend(&out, "],\"protocol_id\":\"", rule_set.protocol_id(), "\",");
  if (include_facts) absl::StrAppend(&out, "\"records\":", records, ",");
  out.append("\"records_sha256\":\"");
  AppendSha256Hex(records, &out);
  absl::StrAppend(&out, "\",\"sha256\":\"", rule_set.sha256(), "\",\"site_id\":");
  AppendJsonQuoted(record.site_id, &out);
  const v1::StoppingOutcome& stopping = evaluation.stopping();
  absl::StrAppend(&out, ",\"stopping\":{\"decision\":\"", stopping.decision(), "\",\"rules\":{");
  std::vector<int> order(stopping.rules_size());
  for (int r = 0; r < stopping.rules_size(); ++r) order[r] = r;
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return stopping.rules(a).id() < stopping.rules(b).id(); });
  for (size_t r = 0; r < order.size(); ++r) {
    absl::StrAppend(&out, r == 0 ? "\"" : ",\"", stopping.rules(order[r]).id(), "\":\"",
                    TruthLetter(stopping.rules(order[r]).outcome()), "\"");
  }
  out.append("}},\"tables\":{");
  std::vector<const DecisionTableSet*> tables;
  for (const auto& set : record.tables) tables.push_back(set.get());
  std::sort(tables.begin(), tables.end(), [](const DecisionTableSet* a, const DecisionTableSet* b) {
    return a->table_id() < b->table_id();
  });
  for (size_t t = 0; t < tables.size(); ++t) {
    absl::StrAppend(&out, t == 0 ? "\"" : ",\"", tables[t]->table_id(), "\":\"",
                    tables[t]->sha256(), "\"");
  }
  absl::StrAppend(&out, "},\"version\":\"", rule_set.version(), "\"}");
  return out;
}

std::string UndeliveredRecordJson(absl::Span<const std::string> decision_ids,
                                  absl::string_view reason) {
  std::string out = "{\"decision_ids\":[";
  for (size_t i = 0; i < decision_ids.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonQuoted(decision_ids[i], &out);
  }
  out.append("],\"delivery\":\"failed\",\"reason\":");
  AppendJsonQuoted(reason, &out);
  out.push_back('}');
  return out;
}

}  // namespace trialrules
