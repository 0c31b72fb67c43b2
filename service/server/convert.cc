#include "service/server/convert.h"

#include <cmath>

#include "service/util/dates.h"
#include "service/util/utf8.h"

#include "absl/strings/str_cat.h"

namespace trialrules {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

v1::Decision ToProto(Decision decision) {
  switch (decision) {
    case Decision::kIndeterminate: return v1::DECISION_INDETERMINATE;
    case Decision::kEligible: return v1::DECISION_ELIGIBLE;
    case Decision::kIneligible: return v1::DECISION_INELIGIBLE;
    case Decision::kWithdraw: return v1::DECISION_WITHDRAW;
    case Decision::kContinue: return v1::DECISION_CONTINUE;
    case Decision::kEscalate: return v1::DECISION_ESCALATE;
    case Decision::kExpand: return v1::DECISION_EXPAND;
    case Decision::kDeEscalate: return v1::DECISION_DE_ESCALATE;
    case Decision::kTriggered: return v1::DECISION_TRIGGERED;
    case Decision::kNotTriggered: return v1::DECISION_NOT_TRIGGERED;
  }
  return v1::DECISION_UNSPECIFIED;
}

v1::Outcome ToProto(Outcome outcome) {
  switch (outcome) {
    case Outcome::kTrue: return v1::OUTCOME_TRUE;
    case Outcome::kFalse: return v1::OUTCOME_FALSE;
    case Outcome::kUnknown: return v1::OUTCOME_UNKNOWN;
  }
  return v1::OUTCOME_UNSPECIFIED;
}

void FillRuleSetRef(const RuleSet& rule_set, v1::RuleSetRef* out) {
  out->set_protocol_id(rule_set.protocol_id());
  out->set_version(rule_set.version());
  out->set_sha256(rule_set.sha256());
}

void FillEvaluation(const RuleSet& rule_set, const Evaluation& evaluation,
                    v1::EvaluateResponse* out) {
  out->set_decision(ToProto(evaluation.decision));
  FillRuleSetRef(rule_set, out->mutable_rule_set());
  for (const RuleResult& result : evaluation.rules) {
    const RuleSpec& spec = rule_set.rules()[result.rule];
    v1::RuleOutcome* rule = out->add_rules();
    rule->set_id(spec.id);
    rule->set_kind(std::string(RuleKindName(spec.kind)));
    rule->set_outcome(ToProto(result.outcome));
    rule->set_not_finite(result.not_finite);
    for (int f : result.missing_facts) {
      rule->add_missing_facts(rule_set.facts()[f].name);
    }
  }
  for (int f : evaluation.missing_facts) {
    out->add_missing_facts(rule_set.facts()[f].name);
  }
}

void FillFact(const FactSpec& spec, v1::Fact* fact) {
  fact->set_name(spec.name);
  switch (spec.type) {
    case ValueType::kNumber: fact->set_type(v1::NUMBER); break;
    case ValueType::kBool: fact->set_type(v1::BOOL); break;
    case ValueType::kDate: fact->set_type(v1::DATE); break;
    case ValueType::kText: fact->set_type(v1::TEXT); break;
  }
  fact->set_unit(spec.unit);
  fact->set_integer(spec.integer);
  fact->set_description(spec.description);
  for (const auto& unit : spec.accepted_units) {
    v1::AlternativeUnit* accepted = fact->add_accepted_units();
    accepted->set_unit(unit.unit);
    accepted->set_per_canonical_unit(unit.per_canonical_unit);
    accepted->set_canonical_per_unit(unit.canonical_per_unit);
  }
  for (const std::string& word : spec.allowed_values) fact->add_allowed_values(word);
  if (spec.type == ValueType::kDate) {
    fact->set_min_date(FormatIsoDate(static_cast<DayNumber>(spec.min)));
    fact->set_max_date(FormatIsoDate(static_cast<DayNumber>(spec.max)));
  } else if (spec.type == ValueType::kNumber) {
    if (std::isfinite(spec.min)) fact->set_min(spec.min);
    if (std::isfinite(spec.max)) fact->set_max(spec.max);
  }
}

void FillRuleSetInfo(const RuleSet& rule_set, bool full, v1::RuleSetInfo* out) {
  const RuleSetDefinition& def = rule_set.definition();
  FillRuleSetRef(rule_set, out->mutable_rule_set());
  out->set_title(def.title);
  out->set_registry_reference(def.registry_reference);
  out->set_description(def.description);
  out->set_illustrative(def.illustrative);
  out->set_effective_from(FormatIsoDate(def.effective_from));
  if (def.effective_until) out->set_effective_until(FormatIsoDate(*def.effective_until));
  out->set_file_name(ToValidUtf8(def.file_name));
  for (const auto& [table_id, version] : def.decision_tables) {
    v1::TableReference* table = out->add_decision_tables();
    table->set_table_id(table_id);
    table->set_version(version);
  }
  if (def.dlt) out->set_trial_design(def.boin ? "BOIN" : "3+3");
  if (def.boin) {
    *out->mutable_boin() = *def.boin;
    out->set_boin_sha256(def.boin_sha256);
  }
  if (!full) return;
  for (const FactSpec& spec : def.facts) FillFact(spec, out->add_facts());
  for (const RuleSpec& spec : def.rules) {
    v1::RuleInfo* rule = out->add_rules();
    rule->set_id(spec.id);
    rule->set_kind(std::string(RuleKindName(spec.kind)));
    rule->set_text(spec.text);
    rule->set_expression(spec.expression);
    rule->set_informational(spec.informational);
    rule->set_note(spec.note);
    if (spec.kind == RuleKind::kEscalation) {
      rule->set_action(std::string(DecisionName(spec.action)));
    }
  }
  for (const DerivedSpec& spec : def.derived) {
    v1::DerivedValue* derived = out->add_derived_values();
    derived->set_name(spec.name);
    derived->set_unit(spec.unit);
    derived->set_expression(spec.expression);
    derived->set_description(spec.description);
  }
  for (const DoseLevelSpec& spec : def.dose_levels) {
    v1::DoseLevel* level = out->add_dose_levels();
    level->set_id(spec.id);
    level->set_cells_per_kg(spec.cells_per_kg);
    level->set_description(spec.description);
  }
}

void FillCoverage(const RuleSet& rule_set, const std::vector<RuleCoverage>& coverage,
                  google::protobuf::RepeatedPtrField<v1::RuleCoverage>* out) {
  for (const RuleCoverage& rule : coverage) {
    v1::RuleCoverage* info = out->Add();
    const RuleSpec& spec = rule_set.rules()[rule.rule];
    info->set_rule(spec.id);
    info->set_kind(std::string(RuleKindName(spec.kind)));
    for (Outcome outcome : rule.outcomes) info->add_outcomes(ToProto(outcome));
    for (const BoundaryCoverage& boundary : rule.boundaries) {
      (boundary.tested ? info->add_tested_boundaries() : info->add_untested_boundaries())
          ->assign(boundary.comparison);
    }
  }
}

void FillTableInfo(const DecisionTableSet& tables, v1::TableInfo* out) {
  const DecisionTableSet::Header& header = tables.header();
  out->set_table_id(header.table_id);
  out->set_version(header.version);
  out->set_sha256(header.sha256);
  out->set_title(header.title);
  out->set_reference(header.reference);
  out->set_file_name(ToValidUtf8(header.file_name));
  for (const DecisionTable& table : tables.tables()) {
    v1::TableTermInfo* term = out->add_terms();
    term->set_term(table.term);
    term->set_hit_policy(std::string(HitPolicyName(table.hit_policy)));
    for (const FactSpec& spec : table.inputs()) FillFact(spec, term->add_inputs());
    for (int input : table.required) term->add_required(table.inputs()[input].name);
    for (size_t r = 0; r < table.rows.size(); ++r) {
      v1::TableRow* row = term->add_rows();
      row->set_id(table.rows[r].id);
      row->set_domain(table.rows[r].domain);
      row->set_expression(table.rules->rules()[r].expression);
      row->set_output(table.rows[r].output);
      row->set_text(table.rows[r].text);
      row->set_note(table.rows[r].note);
    }
  }
}

void FillGradeResult(const DecisionTable& table, const TableResult& result,
                     v1::GradeResult* out) {
  out->set_known(result.output.has_value());
  if (result.output) out->set_grade(static_cast<int32_t>(*result.output));
  out->set_grade_min(static_cast<int32_t>(result.min));
  out->set_grade_max(static_cast<int32_t>(result.max));
  for (std::string& domain : result.Domains(table)) out->add_domains(std::move(domain));
  for (int input : result.missing_inputs) out->add_missing(table.inputs()[input].name);
  for (const RuleResult& row : result.rows) {
    v1::RowOutcome* outcome = out->add_rows();
    outcome->set_id(table.rows[row.rule].id);
    outcome->set_domain(table.rows[row.rule].domain);
    outcome->set_outcome(ToProto(row.outcome));
    outcome->set_output(table.rows[row.rule].output);
    for (int input : row.missing_facts) outcome->add_missing(table.inputs()[input].name);
  }
  out->set_not_finite(result.not_finite);
}

void FillProblems(const std::vector<Problem>& problems,
                  google::protobuf::RepeatedPtrField<v1::Problem>* out) {
  for (const Problem& problem : problems) {
    v1::Problem* p = out->Add();
    // File names come from directory listings: any bytes.
    p->set_file(ToValidUtf8(problem.file));
    p->set_line(problem.line);
    p->set_column(problem.column);
    p->set_rule_id(ToValidUtf8(problem.rule_id));
    p->set_message(ToValidUtf8(problem.message));
    p->set_text(ToValidUtf8(problem.ToString()));
  }
}

}  // namespace trialrules
