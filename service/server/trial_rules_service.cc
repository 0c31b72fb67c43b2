#include "service/server/trial_rules_service.h"

#include "service/engine/trial.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <future>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "service/audit/log_audit.h"
#include "service/fhir/bundle_facts.h"
#include "service/server/audited_reactor.h"
#include "service/util/json.h"
#include "service/server/convert.h"

namespace trialrules {
namespace {

// Per-thread storage for a request's facts and evaluation: their capacity is
// reused from call to call instead of allocated for each.
struct Scratch {
  FactValues facts;
  Evaluation evaluation;
};
thread_local Scratch tl_scratch;

}  // namespace

TrialRulesService::TrialRulesService(const CatalogHolder* catalog, AuditLog* audit,
                                     ServiceMetrics* metrics, ServiceLimits limits)
    : catalog_(catalog),
      audit_(audit),
      metrics_(metrics),
      limits_(limits),
      validation_worker_(limits.validation_threads, limits.validation_queue) {
  for (const std::string& full_name : metrics_ != nullptr ? MethodNames()
                                                           : std::vector<std::string>()) {
    method_calls_[full_name.substr(full_name.rfind('/') + 1)] = metrics_->Calls(full_name);
  }
  SetMessageAllocatorFor_CheckEligibility(&evaluate_allocator_);
  SetMessageAllocatorFor_CheckWithdrawal(&evaluate_allocator_);
  SetMessageAllocatorFor_EvaluateEscalation(&evaluate_allocator_);
  SetMessageAllocatorFor_EvaluateStopping(&evaluate_allocator_);
}

absl::StatusOr<std::shared_ptr<const Catalog>> TrialRulesService::Snapshot() const {
  std::shared_ptr<const Catalog> snapshot = catalog_->Snapshot();
  if (snapshot == nullptr || snapshot->rule_sets().empty()) {
    return absl::UnavailableError("no rule sets are loaded yet; retry shortly");
  }
  return snapshot;
}

std::vector<std::string> TrialRulesService::MethodNames() {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::TrialRules::service_full_name());
  std::vector<std::string> methods;
  for (int m = 0; service != nullptr && m < service->method_count(); ++m) {
    methods.push_back(absl::StrCat("/", service->full_name(), "/", service->method(m)->name()));
  }
  return methods;
}

CallRecord TrialRulesService::StartCall(const grpc::CallbackServerContext* context,
                                        absl::string_view method) {
  const auto calls = method_calls_.find(method);
  return CallRecord(context, calls == method_calls_.end() ? nullptr : calls->second, &in_flight_,
                    limits_.max_concurrent_calls);
}

grpc::Status TrialRulesService::Overloaded() const {
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      absl::StrCat("overloaded: ", limits_.max_concurrent_calls,
                                   " calls in flight already; retry with backoff"));
}

void TrialRulesService::Finish(grpc::ServerUnaryReactor* reactor, const CallRecord& call,
                               const grpc::Status& status) {
  call.Finished(status);
  reactor->Finish(status);
}

// The as-of date of a one-patient request: its `assessment_date` fact.
absl::StatusOr<std::optional<DayNumber>> TrialRulesService::RequestAsOfDate(
    const v1::EvaluateRequest& request) {
  for (const v1::FactValue& fact : request.facts()) {
    if (fact.name() != kAssessmentDateFact) continue;
    if (fact.value_case() != v1::FactValue::kDate) {
      return absl::InvalidArgumentError(
          absl::StrCat("fact \"", kAssessmentDateFact, "\": expected a date \"YYYY-MM-DD\""));
    }
    return ParseAsOfDate(absl::StrCat("fact \"", kAssessmentDateFact, "\""), fact.date());
  }
  return std::nullopt;
}

absl::Status TrialRulesService::CheckRequestLimits(const v1::EvaluateRequest& request) const {
  if (request.protocol_id().empty()) {
    return absl::InvalidArgumentError("protocol_id is required");
  }
  for (auto [field, value, limit] :
       {std::tuple{"protocol_id", &request.protocol_id(), limits_.max_name_length},
        std::tuple{"version", &request.version(), limits_.max_name_length},
        std::tuple{"subject_ref", &request.subject_ref(), limits_.max_reference_length},
        std::tuple{"site_id", &request.site_id(), limits_.max_reference_length},
        std::tuple{"dose_level", &request.dose_level(), limits_.max_reference_length}}) {
    if (absl::Status s = CheckLength(field, *value, limit); !s.ok()) return s;
  }
  if (static_cast<size_t>(request.facts_size()) > limits_.max_facts) {
    return absl::InvalidArgumentError(absl::StrCat("facts: ", request.facts_size(),
                                                   " facts; the limit is ",
                                                   limits_.max_facts));
  }
  for (const v1::FactValue& fact : request.facts()) {
    if (absl::Status s = CheckLength("fact name", fact.name(), limits_.max_name_length);
        !s.ok()) {
      return s;
    }
  }
  if (request.fhir_bundle_json().size() > limits_.max_fhir_bundle_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("fhir_bundle_json: ", request.fhir_bundle_json().size(),
                     " bytes; the limit is ", limits_.max_fhir_bundle_bytes));
  }
  return absl::OkStatus();
}

absl::Status TrialRulesService::CheckDoseLevel(const RuleSet& rule_set,
                                               absl::string_view dose_level) {
  const auto& levels = rule_set.definition().dose_levels;
  if (dose_level.empty() ||
      std::any_of(levels.begin(), levels.end(),
                  [&](const DoseLevelSpec& level) { return level.id == dose_level; })) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("dose_level \"", dose_level, "\" is not a dose level of ",
                   rule_set.protocol_id(), " version ", rule_set.version()));
}

absl::Status TrialRulesService::BindRequestFacts(
    const RuleSet& rule_set, const v1::EvaluateRequest& request, DayNumber as_of_date,
    FactValues* facts, std::vector<std::string>* ignored,
    std::vector<std::pair<std::string, std::string>>* provenance) {
  rule_set.ResetFacts(facts);
  for (const v1::FactValue& fact : request.facts()) {
    const std::optional<FactValue> value = FactValueOf(fact);
    if (!value) return FactWithoutValueError(fact.name());
    if (absl::Status field = rule_set.CheckValueField(fact); !field.ok()) return field;
    absl::Status bound = rule_set.BindFact(fact.name(), *value, fact.unit(), facts,
                                           request.ignore_unknown_facts() ? ignored : nullptr);
    if (!bound.ok()) return bound;
  }
  if (request.fhir_bundle_json().empty()) return absl::OkStatus();

  BundleOptions options;
  options.assessment_date = as_of_date;
  options.ignore_unknown_facts = request.ignore_unknown_facts();
  absl::StatusOr<BundleFacts> bundle =
      FactsFromBundle(request.fhir_bundle_json(), rule_set, options);
  if (!bundle.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("fhir_bundle_json: ", bundle.status().message()));
  }
  // A fact has one source: a typed fact the Bundle also gives is refused
  // rather than one silently winning.
  for (size_t i = 0; i < bundle->facts.size(); ++i) {
    for (const v1::FactValue& fact : request.facts()) {
      if (fact.name() == bundle->facts[i].name) {
        return absl::InvalidArgumentError(absl::StrCat(
            "fact \"", fact.name(), "\" is given more than one way: ",
            bundle->provenance[i].second, " (fhir_bundle_json) and facts; a fact has one source"));
      }
    }
  }
  // A typed assessment date stands; else the Bundle's day is bound.
  const bool typed_date = std::any_of(
      request.facts().begin(), request.facts().end(),
      [](const v1::FactValue& fact) { return fact.name() == kAssessmentDateFact; });
  if (absl::Status bound = BindFhirFacts(*bundle, rule_set, as_of_date, !typed_date, facts);
      !bound.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("fhir_bundle_json: ", bound.message()));
  }
  ignored->insert(ignored->end(), bundle->ignored_unknown.begin(),
                  bundle->ignored_unknown.end());
  *provenance = std::move(bundle->provenance);
  return absl::OkStatus();
}

absl::Status TrialRulesService::Answer(EvaluationKind kind, absl::string_view method,
                                       const v1::EvaluateRequest& request,
                                       v1::EvaluateResponse* response,
                                       std::string* audit_lines) {
  if (absl::Status s = CheckRequestLimits(request); !s.ok()) return s;
  absl::StatusOr<std::optional<DayNumber>> as_of = RequestAsOfDate(request);
  if (!as_of.ok()) return as_of.status();
  absl::StatusOr<std::shared_ptr<const Catalog>> catalog = Snapshot();
  if (!catalog.ok()) return catalog.status();
  const DayNumber today = TodayUtc();
  absl::StatusOr<std::shared_ptr<const RuleSet>> selected = (*catalog)->Select(
      {request.protocol_id(), request.version(), *as_of, request.site_id()}, today);
  if (!selected.ok()) return selected.status();
  const RuleSet& rule_set = **selected;
  if (absl::Status s = rule_set.CanDecide(kind); !s.ok()) return s;
  if (kind == EvaluationKind::kEscalation) {
    if (absl::Status s = CheckDoseLevel(rule_set, request.dose_level()); !s.ok()) return s;
  }
  const DayNumber as_of_date = as_of->value_or(today);
  std::vector<std::string> ignored;
  std::vector<std::pair<std::string, std::string>> provenance;
  FactValues& facts = tl_scratch.facts;
  if (absl::Status s =
          BindRequestFacts(rule_set, request, as_of_date, &facts, &ignored, &provenance);
      !s.ok()) {
    return s;
  }

  Evaluation& evaluation = tl_scratch.evaluation;
  rule_set.Evaluate(kind, facts, &evaluation);
  rule_set.MarkServed();

  // Observers see the finished decision; the record is written before the
  // answer leaves (by the caller of Answer).
  if (metrics_ != nullptr) {
    const Evaluation* evaluated = &evaluation;
    metrics_->RecordDecisions(*selected, {&evaluated, 1});
  }
  const std::string decision_id = NewDecisionId();
  *audit_lines = audit_->FormatDecision({decision_id, method, &rule_set, as_of_date,
                                         request.subject_ref(), request.site_id(),
                                         request.dose_level(), &evaluation, &facts});

  FillEvaluation(rule_set, evaluation, response);
  response->set_decision_id(decision_id);
  response->set_subject_ref(request.subject_ref());
  response->set_site_id(request.site_id());
  response->set_dose_level(request.dose_level());
  response->set_as_of_date(FormatIsoDate(as_of_date));
  for (std::string& name : ignored) response->add_ignored_facts(std::move(name));
  for (auto& [fact, source] : provenance) {
    v1::FactProvenance* given = response->add_provenance();
    given->set_fact(std::move(fact));
    given->set_source(std::move(source));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* TrialRulesService::Evaluate(
    EvaluationKind kind, absl::string_view method, grpc::CallbackServerContext* context,
    const v1::EvaluateRequest& request, v1::EvaluateResponse* response) {
  auto* reactor = new AuditedReactor(context, audit_);
  const CallRecord call = StartCall(context, method);
  if (!call.admitted()) {
    Finish(reactor, call, Overloaded());
    return reactor;
  }
  if (context->IsCancelled()) {
    Finish(reactor, call, grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled"));
    return reactor;
  }
  std::string audit_lines;
  const absl::Status status = Answer(kind, method, request, response, &audit_lines);
  if (!status.ok()) {
    response->Clear();
    Finish(reactor, call, ToGrpcStatus(status));
    return reactor;
  }
  // The answer leaves only once its record is written (fail closed).
  audit_->Append(std::move(audit_lines), [reactor, call, response](absl::Status written) {
    if (written.ok()) {
      reactor->Recorded(response->decision_id());
    } else {
      response->Clear();
    }
    Finish(reactor, call, ToGrpcStatus(written));
  });
  return reactor;
}

grpc::ServerUnaryReactor* TrialRulesService::CheckEligibility(
    grpc::CallbackServerContext* context, const v1::EvaluateRequest* request,
    v1::EvaluateResponse* response) {
  return Evaluate(EvaluationKind::kEligibility, "CheckEligibility", context, *request,
                  response);
}

grpc::ServerUnaryReactor* TrialRulesService::CheckWithdrawal(
    grpc::CallbackServerContext* context, const v1::EvaluateRequest* request,
    v1::EvaluateResponse* response) {
  return Evaluate(EvaluationKind::kWithdrawal, "CheckWithdrawal", context, *request,
                  response);
}

grpc::ServerUnaryReactor* TrialRulesService::EvaluateEscalation(
    grpc::CallbackServerContext* context, const v1::EvaluateRequest* request,
    v1::EvaluateResponse* response) {
  return Evaluate(EvaluationKind::kEscalation, "EvaluateEscalation", context, *request,
                  response);
}

grpc::ServerUnaryReactor* TrialRulesService::EvaluateStopping(
    grpc::CallbackServerContext* context, const v1::EvaluateRequest* request,
    v1::EvaluateResponse* response) {
  return Evaluate(EvaluationKind::kStopping, "EvaluateStopping", context, *request,
                  response);
}

absl::Status TrialRulesService::Grade(const v1::GradeRequest& request,
                                      v1::GradeResponse* response, std::string* audit_line) {
  if (request.table_id().empty()) return absl::InvalidArgumentError("table_id is required");
  for (auto [field, value, limit] :
       {std::tuple{"table_id", &request.table_id(), limits_.max_name_length},
        std::tuple{"version", &request.version(), limits_.max_name_length},
        std::tuple{"term", &request.term(), limits_.max_name_length},
        std::tuple{"subject_ref", &request.subject_ref(), limits_.max_reference_length},
        std::tuple{"site_id", &request.site_id(), limits_.max_reference_length}}) {
    if (absl::Status s = CheckLength(field, *value, limit); !s.ok()) return s;
  }
  if (request.observation_sets().empty()) {
    return absl::InvalidArgumentError("observation_sets: at least one is required");
  }
  if (static_cast<size_t>(request.observation_sets_size()) > limits_.max_observation_sets) {
    return absl::InvalidArgumentError(
        absl::StrCat("observation_sets: ", request.observation_sets_size(),
                     " sets; the limit is ", limits_.max_observation_sets));
  }
  absl::StatusOr<std::shared_ptr<const Catalog>> catalog = Snapshot();
  if (!catalog.ok()) return catalog.status();
  absl::StatusOr<std::shared_ptr<const DecisionTableSet>> tables =
      (*catalog)->SelectTable(request.table_id(), request.version());
  if (!tables.ok()) return tables.status();
  absl::StatusOr<const DecisionTable*> table = (*tables)->Find(request.term());
  if (!table.ok()) return table.status();

  std::vector<TableResult> results;
  results.reserve(request.observation_sets_size());
  for (int i = 0; i < request.observation_sets_size(); ++i) {
    const v1::ObservationSet& set = request.observation_sets(i);
    auto refuse = [&](const absl::Status& status) {
      return absl::Status(status.code(),
                          absl::StrCat("observation_sets[", i, "]: ", status.message()));
    };
    if (static_cast<size_t>(set.observations_size()) > limits_.max_facts) {
      return refuse(absl::InvalidArgumentError(absl::StrCat(
          set.observations_size(), " observations; the limit is ", limits_.max_facts)));
    }
    std::vector<FactInput> inputs;
    for (const v1::FactValue& observation : set.observations()) {
      // Words and units are names too: a refusal repeats them.
      for (auto [field, value] : {std::pair{"observation name", &observation.name()},
                                  std::pair{"observation unit", &observation.unit()},
                                  std::pair{"observation text", &observation.text()}}) {
        if (absl::Status s = CheckLength(field, *value, limits_.max_name_length); !s.ok()) {
          return refuse(s);
        }
      }
      absl::StatusOr<FactInput> input = FactInputFromProto(observation);
      if (!input.ok()) return refuse(input.status());
      if (absl::Status field = (*table)->rules->CheckValueField(observation); !field.ok()) {
        return refuse(field);
      }
      inputs.push_back(*std::move(input));
    }
    absl::StatusOr<TableResult> result = (*tables)->Evaluate(**table, inputs);
    if (!result.ok()) return refuse(result.status());
    results.push_back(*std::move(result));
  }
  (*tables)->MarkServed();

  if (metrics_ != nullptr) metrics_->RecordGrades(**tables, **table, results);
  const std::string decision_id = NewDecisionId();
  *audit_line = audit_->FormatGrading({decision_id, tables->get(), *table,
                                       request.subject_ref(), request.site_id(), results});

  v1::TableRef* ref = response->mutable_table();
  ref->set_table_id((*tables)->table_id());
  ref->set_version((*tables)->version());
  ref->set_sha256((*tables)->sha256());
  ref->set_term((*table)->term);
  for (const TableResult& result : results) {
    FillGradeResult(**table, result, response->add_results());
  }
  response->set_decision_id(decision_id);
  response->set_subject_ref(request.subject_ref());
  response->set_site_id(request.site_id());
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* TrialRulesService::GradeEvents(grpc::CallbackServerContext* context,
                                                         const v1::GradeRequest* request,
                                                         v1::GradeResponse* response) {
  auto* reactor = new AuditedReactor(context, audit_);
  const CallRecord call = StartCall(context, "GradeEvents");
  if (!call.admitted()) {
    Finish(reactor, call, Overloaded());
    return reactor;
  }
  std::string audit_line;
  const absl::Status status = Grade(*request, response, &audit_line);
  FinishAudited(reactor, call, status, std::move(audit_line), response->decision_id(),
                response);
  return reactor;
}

void TrialRulesService::FinishAudited(AuditedReactor* reactor, const CallRecord& call,
                                      const absl::Status& status, std::string audit_line,
                                      std::string decision_id,
                                      google::protobuf::Message* response) {
  if (!status.ok()) {
    Finish(reactor, call, ToGrpcStatus(status));
    return;
  }
  // As for decisions: the answer leaves only once its record is written.
  audit_->Append(std::move(audit_line), [reactor, call, response,
                                         id = std::move(decision_id)](absl::Status written) {
    if (written.ok()) {
      reactor->Recorded(id);
    } else {
      response->Clear();
    }
    Finish(reactor, call, ToGrpcStatus(written));
  });
}

absl::Status TrialRulesService::CheckTrialLimits(const v1::EvaluateTrialRequest& request) const {
  const v1::TrialRecords& records = request.records();
  for (auto [field, value, limit] :
       {std::tuple{"records.protocol_id", &records.protocol_id(), limits_.max_name_length},
        std::tuple{"records.as_of_date", &records.as_of_date(), limits_.max_name_length},
        std::tuple{"records.current_dose_level", &records.current_dose_level(),
                   limits_.max_reference_length},
        std::tuple{"version", &request.version(), limits_.max_name_length},
        std::tuple{"site_id", &request.site_id(), limits_.max_reference_length}}) {
    if (absl::Status s = CheckLength(field, *value, limit); !s.ok()) return s;
  }
  if (static_cast<size_t>(records.patients_size()) > limits_.max_trial_patients) {
    return absl::InvalidArgumentError(absl::StrCat("records.patients: ", records.patients_size(),
                                                   " patients; the limit is ",
                                                   limits_.max_trial_patients));
  }
  size_t events = 0;
  for (int p = 0; p < records.patients_size(); ++p) {
    const v1::PatientRecord& patient = records.patients(p);
    const std::string where = absl::StrCat("records.patients[", p, "]");
    for (auto [field, value, limit] :
         {std::tuple{"subject_ref", &patient.subject_ref(), limits_.max_reference_length},
          std::tuple{"dose_level", &patient.dose_level(), limits_.max_reference_length},
          std::tuple{"infusion_date", &patient.infusion_date(), limits_.max_name_length},
          std::tuple{"death_date", &patient.death_date(), limits_.max_name_length}}) {
      if (absl::Status s = CheckLength(absl::StrCat(where, ".", field), *value, limit); !s.ok()) {
        return s;
      }
    }
    events += patient.events_size();
    if (events > limits_.max_trial_events) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".events: more than ", limits_.max_trial_events, " events in the records"));
    }
    for (int e = 0; e < patient.events_size(); ++e) {
      const v1::AdverseEventRecord& event = patient.events(e);
      const std::string event_where = absl::StrCat(where, ".events[", e, "]");
      for (auto [field, value] : {std::pair{"term", &event.term()},
                                  std::pair{"onset_date", &event.onset_date()},
                                  std::pair{"resolution_date", &event.resolution_date()},
                                  std::pair{"attribution", &event.attribution()}}) {
        if (absl::Status s = CheckLength(absl::StrCat(event_where, ".", field), *value,
                                         limits_.max_name_length);
            !s.ok()) {
          return s;
        }
      }
      if (static_cast<size_t>(event.observations_size()) > limits_.max_facts) {
        return absl::InvalidArgumentError(absl::StrCat(event_where, ".observations: ",
                                                       event.observations_size(),
                                                       " observations; the limit is ",
                                                       limits_.max_facts));
      }
      for (const v1::FactValue& observation : event.observations()) {
        for (auto [field, value] : {std::pair{"observation name", &observation.name()},
                                    std::pair{"observation unit", &observation.unit()},
                                    std::pair{"observation text", &observation.text()}}) {
          if (absl::Status s = CheckLength(absl::StrCat(event_where, " ", field), *value,
                                           limits_.max_name_length);
              !s.ok()) {
            return s;
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TrialRulesService::Trial(const v1::EvaluateTrialRequest& request,
                                      v1::EvaluateTrialResponse* response,
                                      std::string* audit_line) {
  if (absl::Status s = CheckTrialLimits(request); !s.ok()) return s;
  const v1::TrialRecords& records = request.records();
  if (records.protocol_id().empty()) {
    return absl::InvalidArgumentError("records.protocol_id is required");
  }
  if (records.as_of_date().empty()) {
    return absl::InvalidArgumentError("records.as_of_date is required");
  }
  absl::StatusOr<std::optional<DayNumber>> as_of =
      ParseAsOfDate("records.as_of_date", records.as_of_date());
  if (!as_of.ok()) return as_of.status();
  absl::StatusOr<std::shared_ptr<const Catalog>> catalog = Snapshot();
  if (!catalog.ok()) return catalog.status();
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set = (*catalog)->Select(
      {records.protocol_id(), request.version(), *as_of, request.site_id()}, TodayUtc());
  if (!rule_set.ok()) return rule_set.status();
  const std::vector<std::shared_ptr<const DecisionTableSet>> tables =
      (*catalog)->TablesOf(**rule_set);
  absl::StatusOr<v1::TrialEvaluation> evaluation =
      trialrules::EvaluateTrial(**rule_set, tables, records);
  if (!evaluation.ok()) return evaluation.status();
  (*rule_set)->MarkServed();

  if (metrics_ != nullptr) metrics_->RecordTrial(**rule_set, *evaluation);
  const std::string decision_id = NewDecisionId();
  *audit_line = audit_->FormatTrial(
      {decision_id, rule_set->get(), tables, request.site_id(), &records, &*evaluation});
  *response->mutable_evaluation() = *std::move(evaluation);
  response->set_decision_id(decision_id);
  response->set_site_id(request.site_id());
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* TrialRulesService::EvaluateTrial(
    grpc::CallbackServerContext* context, const v1::EvaluateTrialRequest* request,
    v1::EvaluateTrialResponse* response) {
  auto* reactor = new AuditedReactor(context, audit_);
  const CallRecord call = StartCall(context, "EvaluateTrial");
  if (!call.admitted()) {
    Finish(reactor, call, Overloaded());
    return reactor;
  }
  std::string audit_line;
  const absl::Status status = Trial(*request, response, &audit_line);
  FinishAudited(reactor, call, status, std::move(audit_line), response->decision_id(),
                response);
  return reactor;
}

grpc::ServerUnaryReactor* TrialRulesService::GetDecisionProof(
    grpc::CallbackServerContext* context, const v1::GetDecisionProofRequest* request,
    v1::GetDecisionProofResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const CallRecord call = StartCall(context, "GetDecisionProof");
  if (!call.admitted()) {
    Finish(reactor, call, Overloaded());
    return reactor;
  }
  const std::string& id = request->decision_id();
  if (id.size() != 32 || !std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    Finish(reactor, call,
           grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("decision_id ", JsonQuote(id.substr(0, 64)),
                                     " is not a decision id (32 lowercase hex digits)")));
    return reactor;
  }
  if (!audit_->signed_log() || audit_->path() == "-") {
    Finish(reactor, call,
           grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        audit_->signed_log()
                            ? "the audit log goes to standard output: this replica cannot "
                              "read it back to prove a decision"
                            : "the audit log is not signed (the server runs without "
                              "--audit-signing-key): decisions cannot be proven"));
    return reactor;
  }
  // Reading the log takes a while: off the threads that answer decisions.
  const bool queued = validation_worker_.TrySubmit([this, reactor, call, id, response] {
    absl::StatusOr<DecisionProof> proof =
        ProveDecision(audit_->path(), audit_->checkpoints_path(), id);
    if (absl::IsFailedPrecondition(proof.status())) {
      // Written but in no checkpoint yet: sign one now, then prove.
      std::promise<absl::StatusOr<std::string>> signed_note;
      audit_->CheckpointNow([&](absl::StatusOr<std::string> note) {
        signed_note.set_value(std::move(note));
      });
      if (absl::StatusOr<std::string> note = signed_note.get_future().get(); !note.ok()) {
        proof = note.status();
      } else {
        proof = ProveDecision(audit_->path(), audit_->checkpoints_path(), id);
      }
    }
    if (!proof.ok()) {
      Finish(reactor, call, ToGrpcStatus(proof.status()));
      return;
    }
    response->set_record(proof->line);
    response->set_leaf_index(proof->index);
    for (const Hash& hash : proof->proof) {
      response->add_inclusion_proof(reinterpret_cast<const char*>(hash.data()), hash.size());
    }
    response->set_tree_size(proof->tree_size);
    response->set_checkpoint(proof->checkpoint);
    response->set_tlog_proof(proof->Text());
    Finish(reactor, call, grpc::Status::OK);
  });
  if (!queued) {
    Finish(reactor, call,
           grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many proofs and validations are being worked on; retry shortly"));
  }
  return reactor;
}

grpc::ServerUnaryReactor* TrialRulesService::ListRuleSets(
    grpc::CallbackServerContext* context, const v1::ListRuleSetsRequest* request,
    v1::ListRuleSetsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const CallRecord call = StartCall(context, "ListRuleSets");
  if (!call.admitted()) {
    Finish(reactor, call, Overloaded());
    return reactor;
  }
  absl::StatusOr<std::shared_ptr<const Catalog>> catalog = Snapshot();
  if (!catalog.ok()) {
    Finish(reactor, call, ToGrpcStatus(catalog.status()));
    return reactor;
  }
  for (const auto& rule_set : (*catalog)->rule_sets()) {
    if (!request->protocol_id().empty() &&
        rule_set->protocol_id() != request->protocol_id()) {
      continue;
    }
    FillRuleSetInfo(*rule_set, /*full=*/false, response->add_rule_sets());
  }
  FillProblems((*catalog)->refused(), response->mutable_refused());
  if (request->protocol_id().empty()) {
    for (const auto& tables : (*catalog)->tables()) FillTableInfo(*tables, response->add_tables());
  }
  for (const ProtocolSites& protocol : (*catalog)->sites()) {
    if (!request->protocol_id().empty() && protocol.protocol_id != request->protocol_id()) {
      continue;
    }
    v1::SiteActivations* out = response->add_site_activations();
    out->set_protocol_id(protocol.protocol_id);
    for (const SiteSchedule& site : protocol.sites) {
      v1::SiteActivation* site_out = out->add_sites();
      site_out->set_site_id(site.site_id);
      for (const auto& [day, version] : site.activations) {
        v1::VersionActivation* activation = site_out->add_activations();
        activation->set_version(version);
        activation->set_activated_on(FormatIsoDate(day));
      }
    }
  }
  Finish(reactor, call, grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* TrialRulesService::GetRuleSet(
    grpc::CallbackServerContext* context, const v1::GetRuleSetRequest* request,
    v1::RuleSetInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const CallRecord call = StartCall(context, "GetRuleSet");
  if (!call.admitted()) {
    Finish(reactor, call, Overloaded());
    return reactor;
  }
  absl::Status status;
  if (request->protocol_id().empty()) {
    status = absl::InvalidArgumentError("protocol_id is required");
  } else if (request->version().empty()) {
    status = absl::InvalidArgumentError("version is required");
  } else if (absl::StatusOr<std::shared_ptr<const Catalog>> catalog = Snapshot();
             !catalog.ok()) {
    status = catalog.status();
  } else if (auto rule_set =
                 (*catalog)->Select(
                     {request->protocol_id(), request->version(), std::nullopt, ""}, TodayUtc());
             !rule_set.ok()) {
    status = rule_set.status();
  } else {
    FillRuleSetInfo(**rule_set, /*full=*/true, response);
  }
  Finish(reactor, call, ToGrpcStatus(status));
  return reactor;
}

}  // namespace trialrules
