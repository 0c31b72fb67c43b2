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
  if (!full) return;
  for (const FactSpec& spec : def.facts) {
    v1::Fact* fact = out->add_facts();
    fact->set_name(spec.name);
    fact->set_type(spec.type == ValueType::kNumber ? v1::NUMBER
                   : spec.type == ValueType::kBool ? v1::BOOL
                                                   : v1::DATE);
    fact->set_unit(spec.unit);
    fact->set_integer(spec.integer);
    fact->set_description(spec.description);
    for (const auto& unit : spec.accepted_units) {
      v1::AlternativeUnit* accepted = fact->add_accepted_units();
      accepted->set_unit(unit.unit);
      accepted->set_per_canonical_unit(unit.per_canonical_unit);
    }
    if (spec.type == ValueType::kDate) {
      fact->set_min_date(FormatIsoDate(static_cast<DayNumber>(spec.min)));
      fact->set_max_date(FormatIsoDate(static_cast<DayNumber>(spec.max)));
    } else if (spec.type == ValueType::kNumber) {
      if (std::isfinite(spec.min)) fact->set_min(spec.min);
      if (std::isfinite(spec.max)) fact->set_max(spec.max);
    }
  }
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
