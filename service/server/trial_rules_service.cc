#include "service/server/trial_rules_service.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/descriptor.h"
#include "service/engine/compare.h"
#include "service/server/convert.h"

namespace trialrules {
namespace {

DayNumber TodayUtc() {
  return static_cast<DayNumber>(absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) -
                                absl::CivilDay(1970, 1, 1));
}

absl::Status CheckLength(absl::string_view field, absl::string_view value,
                         size_t limit) {
  if (value.size() <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, " \"", value.substr(0, 32), "...\" is ", value.size(),
      " characters long; the limit is ", limit));
}

// The date that picks the version: `assessment_date` if sent, else today.
absl::StatusOr<DayNumber> AsOfDate(
    const google::protobuf::RepeatedPtrField<v1::FactValue>& facts) {
  for (const v1::FactValue& fact : facts) {
    if (fact.name() != "assessment_date") continue;
    if (fact.value_case() != v1::FactValue::kDate) {
      return absl::InvalidArgumentError(
          "fact \"assessment_date\": expected a date \"YYYY-MM-DD\"");
    }
    absl::StatusOr<DayNumber> day = ParseIsoDate(fact.date());
    if (!day.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fact \"assessment_date\" = \"", fact.date(), "\": ", day.status().message()));
    }
    return *day;
  }
  return TodayUtc();
}

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
    : catalog_(catalog), audit_(audit), metrics_(metrics), limits_(limits) {
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

CallRecord TrialRulesService::StartCall(absl::string_view method) {
  const auto calls = method_calls_.find(method);
  return CallRecord(calls == method_calls_.end() ? nullptr : calls->second, &in_flight_,
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

absl::Status TrialRulesService::Answer(EvaluationKind kind, absl::string_view method,
                                       const v1::EvaluateRequest& request,
                                       v1::EvaluateResponse* response,
                                       std::string* audit_lines) {
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
  absl::StatusOr<DayNumber> as_of = AsOfDate(request.facts());
  if (!as_of.ok()) return as_of.status();

  absl::StatusOr<std::shared_ptr<const Catalog>> catalog = Snapshot();
  if (!catalog.ok()) return catalog.status();
  absl::StatusOr<std::shared_ptr<const RuleSet>> selected =
      (*catalog)->Select(request.protocol_id(), request.version(), *as_of,
                         request.site_id());
  if (!selected.ok()) return selected.status();
  const RuleSet& rule_set = **selected;

  if (kind == EvaluationKind::kEscalation && !request.dose_level().empty()) {
    const auto& levels = rule_set.definition().dose_levels;
    if (std::none_of(levels.begin(), levels.end(), [&](const DoseLevelSpec& level) {
          return level.id == request.dose_level();
        })) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dose_level \"", request.dose_level(), "\" is not a dose level of ",
          rule_set.protocol_id(), " version ", rule_set.version()));
    }
  }
  std::vector<std::string> ignored;
  FactValues& facts = tl_scratch.facts;
  facts.values.assign(rule_set.facts().size(), std::numeric_limits<double>::quiet_NaN());
  facts.present.assign(rule_set.facts().size(), 0);
  for (const v1::FactValue& fact : request.facts()) {
    std::variant<double, bool, std::string> value;
    switch (fact.value_case()) {
      case v1::FactValue::kNumber: value = fact.number(); break;
      case v1::FactValue::kBoolean: value = fact.boolean(); break;
      case v1::FactValue::kDate: value = fact.date(); break;
      default: return FromProto(fact).status();  // names the fact without a value
    }
    absl::Status bound = rule_set.BindFact(fact.name(), value, fact.unit(), &facts,
                                           request.ignore_unknown_facts() ? &ignored : nullptr);
    if (!bound.ok()) return bound;
  }

  Evaluation& evaluation = tl_scratch.evaluation;
  rule_set.Evaluate(kind, facts, &evaluation);
  if (metrics_ != nullptr) {
    const Evaluation* evaluated = &evaluation;
    metrics_->RecordDecisions(*selected, {&evaluated, 1});
  }
  const std::string decision_id = NewDecisionId();
  const DecisionRecord record{decision_id, absl::Now(),          method,
                              &rule_set,   request.subject_ref(), request.site_id(),
                              &evaluation, &facts};
  *audit_lines = audit_->FormatLines({record});

  FillEvaluation(rule_set, evaluation, response);
  response->set_decision_id(decision_id);
  response->set_subject_ref(request.subject_ref());
  response->set_site_id(request.site_id());
  response->set_dose_level(request.dose_level());
  response->set_as_of_date(FormatIsoDate(*as_of));
  for (std::string& name : ignored) response->add_ignored_facts(std::move(name));
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* TrialRulesService::Evaluate(
    EvaluationKind kind, absl::string_view method, grpc::CallbackServerContext* context,
    const v1::EvaluateRequest& request, v1::EvaluateResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const CallRecord call = StartCall(method);
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
    if (!written.ok()) response->Clear();
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

grpc::ServerUnaryReactor* TrialRulesService::ListRuleSets(
    grpc::CallbackServerContext* context, const v1::ListRuleSetsRequest* request,
    v1::ListRuleSetsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const CallRecord call = StartCall("ListRuleSets");
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
  const CallRecord call = StartCall("GetRuleSet");
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
  } else if (auto rule_set = (*catalog)->Select(request->protocol_id(),
                                                request->version(), 0);
             !rule_set.ok()) {
    status = rule_set.status();
  } else {
    FillRuleSetInfo(**rule_set, /*full=*/true, response);
  }
  Finish(reactor, call, ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* TrialRulesService::ValidateRuleSet(
    grpc::CallbackServerContext* context, const v1::ValidateRuleSetRequest* request,
    v1::ValidateRuleSetResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const CallRecord call = StartCall("ValidateRuleSet");
  if (!call.admitted()) {
    Finish(reactor, call, Overloaded());
    return reactor;
  }
  if (request->text().empty()) {
    Finish(reactor, call, ToGrpcStatus(absl::InvalidArgumentError("text is required")));
    return reactor;
  }
  if (absl::Status s = CheckLength("file_name", request->file_name(), 256); !s.ok()) {
    Finish(reactor, call, ToGrpcStatus(s));
    return reactor;
  }
  const std::string file_name =
      request->file_name().empty() ? "candidate.textproto" : request->file_name();
  const LoadResult result = LoadRuleSet(request->text(), file_name);
  response->set_valid(result.rule_set != nullptr);
  FillProblems(result.problems, response->mutable_problems());
  for (const TestCaseResult& test : result.tests) {
    v1::TestCaseResult* out = response->add_test_cases();
    out->set_name(test.name);
    out->set_passed(test.passed);
  }
  if (result.rule_set != nullptr) {
    FillRuleSetRef(*result.rule_set, response->mutable_rule_set());
  }
  Finish(reactor, call, grpc::Status::OK);
  return reactor;
}

// ScreenPatients: read a request, answer it, read the next. The rule set is
// chosen once, from the header, and pinned for the whole stream.
class TrialRulesService::ScreenReactor
    : public grpc::ServerBidiReactor<v1::ScreenRequest, v1::ScreenResponse> {
 public:
  ScreenReactor(TrialRulesService* service, grpc::CallbackServerContext* context)
      : service_(service),
        call_(service->StartCall("ScreenPatients")),
        ends_at_(context->deadline() == std::chrono::system_clock::time_point::max()
                     ? absl::Now() + service->limits_.max_stream_duration
                     : absl::InfiniteFuture()) {
    NewMessages();
    if (!call_.admitted()) {
      End(service_->Overloaded());
      return;
    }
    StartRead(request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      End(grpc::Status::OK);  // the client has sent everything
      return;
    }
    if (absl::Now() > ends_at_) {
      End(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                       absl::StrCat("the stream has no deadline and has been open longer than ",
                                    absl::FormatDuration(service_->limits_.max_stream_duration),
                                    "; set a deadline or open a new stream")));
      return;
    }
    std::string audit_lines;
    const absl::Status status = Process(&audit_lines);
    if (!status.ok()) {
      End(ToGrpcStatus(status));
      return;
    }
    if (audit_lines.empty()) {
      StartWrite(response_);
      return;
    }
    // The batch's answers leave only once their record is written.
    service_->audit_->Append(std::move(audit_lines), [this](absl::Status written) {
      if (written.ok()) {
        StartWrite(response_);
      } else {
        End(ToGrpcStatus(written));
      }
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    NewMessages();
    StartRead(request_);
  }

  void OnDone() override { delete this; }
  void End(const grpc::Status& status) {
    call_.Finished(status);
    Finish(status);
  }

 private:
  absl::Status Process(std::string* audit_lines) {
    if (rule_set_ == nullptr) {
      if (!request_->has_header()) {
        return absl::InvalidArgumentError(
            "header: the first ScreenRequest must carry a header");
      }
      if (absl::Status s = Start(request_->header()); !s.ok()) return s;
    } else if (request_->has_header()) {
      return absl::InvalidArgumentError(
          "header: only the first ScreenRequest may carry a header");
    }
    const ServiceLimits& limits = service_->limits_;
    if (static_cast<size_t>(request_->patients_size()) > limits.max_patients_per_message) {
      return absl::InvalidArgumentError(
          absl::StrCat("patients: ", request_->patients_size(),
                       " in one message; the limit is ", limits.max_patients_per_message));
    }
    // Per-patient storage is kept across batches: its capacity is reused.
    const size_t count = request_->patients_size();
    if (evaluations_.size() < count) {
      evaluations_.resize(count);
      facts_.resize(count);
    }
    std::vector<Evaluation>& evaluations = evaluations_;
    std::vector<FactValues>& facts = facts_;
    records_.clear();
    std::vector<DecisionRecord>& records = records_;
    const absl::Time now = absl::Now();
    for (int p = 0; p < request_->patients_size(); ++p) {
      const v1::ScreenPatient& patient = request_->patients(p);
      v1::ScreenResult* result = response_->add_results();
      result->set_subject_ref(patient.subject_ref());
      absl::Status status = CheckLength("subject_ref", patient.subject_ref(),
                                        limits.max_reference_length);
      if (status.ok()) status = Bind(patient, &facts[p]);
      if (!status.ok()) {
        result->set_error(absl::StrCat("patients[", p, "]: ", status.message()));
        continue;
      }
      Evaluation& evaluation = evaluations[p];
      rule_set_->Evaluate(EvaluationKind::kEligibility, facts[p], &evaluation);
      result->set_decision_id(NewDecisionId());
      result->set_decision(ToProto(evaluation.decision));
      for (const RuleResult& rule : evaluation.rules) {
        result->add_outcomes(ToProto(rule.outcome));
      }
      for (int f : evaluation.missing_facts) result->add_missing_fact_indexes(f);
      records.push_back({result->decision_id(), now, "ScreenPatients", rule_set_.get(),
                         patient.subject_ref(), site_id_, &evaluation, &facts[p]});
    }
    if (service_->metrics_ != nullptr) {
      evaluated_.clear();
      for (const DecisionRecord& record : records) evaluated_.push_back(record.evaluation);
      service_->metrics_->RecordDecisions(rule_set_, evaluated_);
    }
    *audit_lines = service_->audit_->FormatBatch(records);
    return absl::OkStatus();
  }

  absl::Status Start(const v1::ScreenHeader& header) {
    const ServiceLimits& limits = service_->limits_;
    if (header.protocol_id().empty()) {
      return absl::InvalidArgumentError("header.protocol_id is required");
    }
    if (absl::Status s = CheckLength("header.site_id", header.site_id(),
                                     limits.max_reference_length);
        !s.ok()) {
      return s;
    }
    if (static_cast<size_t>(header.fact_names_size()) > limits.max_facts) {
      return absl::InvalidArgumentError(
          absl::StrCat("header.fact_names: ", header.fact_names_size(),
                       " columns; the limit is ", limits.max_facts));
    }
    if (header.units_size() != 0 && header.units_size() != header.fact_names_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "header.units: ", header.units_size(), " units for ",
          header.fact_names_size(), " fact_names (give one per column, or none)"));
    }
    DayNumber as_of = TodayUtc();
    if (!header.as_of_date().empty()) {
      absl::StatusOr<DayNumber> day = ParseIsoDate(header.as_of_date());
      if (!day.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "header.as_of_date = \"", header.as_of_date(), "\": ", day.status().message()));
      }
      as_of = *day;
    }
    absl::StatusOr<std::shared_ptr<const Catalog>> catalog = service_->Snapshot();
    if (!catalog.ok()) return catalog.status();
    absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set =
        (*catalog)->Select(header.protocol_id(), header.version(), as_of, header.site_id());
    if (!rule_set.ok()) return rule_set.status();
    rule_set_ = *rule_set;
    site_id_ = header.site_id();
    std::set<int> seen;
    for (int c = 0; c < header.fact_names_size(); ++c) {
      const std::string& name = header.fact_names(c);
      const int fact = rule_set_->FindFact(name);
      if (fact < 0 && !header.ignore_unknown_facts()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "header.fact_names[", c, "] = \"", name.substr(0, 64), "\": unknown fact for protocol ",
            rule_set_->protocol_id(), " version ", rule_set_->version()));
      }
      if (fact >= 0 && !seen.insert(fact).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "header.fact_names[", c, "] = \"", name, "\" is given more than once"));
      }
      if (fact < 0) response_->add_ignored_facts(name);
      columns_.push_back(fact);
      units_.push_back(header.units_size() > 0 ? header.units(c) : "");
      const ValueType type = fact >= 0 ? rule_set_->facts()[fact].type : ValueType::kNumber;
      column_types_.push_back(type);
      if (type == ValueType::kDate) {
        ++date_columns_;
        response_->add_date_columns(c);
      }
    }
    FillRuleSetRef(*rule_set_, response_->mutable_rule_set());
    for (int rule : rule_set_->RulesFor(EvaluationKind::kEligibility)) {
      response_->add_rule_ids(rule_set_->rules()[rule].id);
    }
    for (const FactSpec& fact : rule_set_->facts()) response_->add_fact_names(fact.name);
    return absl::OkStatus();
  }

  absl::Status Bind(const v1::ScreenPatient& patient, FactValues* facts) const {
    facts->values.assign(rule_set_->facts().size(),
                         std::numeric_limits<double>::quiet_NaN());
    facts->present.assign(rule_set_->facts().size(), 0);
    if (patient.numbers_size() > 0 || patient.dates_size() > 0) {
      return BindCompact(patient, facts);
    }
    if (static_cast<size_t>(patient.values_size()) > columns_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          patient.values_size(), " values for ", columns_.size(), " columns"));
    }
    for (int c = 0; c < patient.values_size(); ++c) {
      const v1::ScreenValue& value = patient.values(c);
      const int fact = columns_[c];
      if (fact < 0) continue;
      std::variant<double, bool, std::string> input;
      switch (value.value_case()) {
        case v1::ScreenValue::kNumber: input = value.number(); break;
        case v1::ScreenValue::kBoolean: input = value.boolean(); break;
        case v1::ScreenValue::kDate: input = value.date(); break;
        default: continue;  // missing
      }
      if (absl::Status s = BindValue(fact, input, units_[c], facts); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // A compact row: numbers and dates, each in column order.
  absl::Status BindCompact(const v1::ScreenPatient& patient, FactValues* facts) const {
    if (patient.values_size() > 0) {
      return absl::InvalidArgumentError(
          "values and numbers/dates are both set; send a row in one form");
    }
    const int number_columns = static_cast<int>(columns_.size()) - date_columns_;
    if (patient.numbers_size() != number_columns || patient.dates_size() != date_columns_) {
      return absl::InvalidArgumentError(absl::StrCat(
          patient.numbers_size(), " numbers and ", patient.dates_size(), " dates for ",
          number_columns, " number or boolean columns and ", date_columns_,
          " date columns (a compact row is complete: NaN or \"\" for missing)"));
    }
    int next_number = 0, next_date = 0;
    for (size_t c = 0; c < columns_.size(); ++c) {
      const int fact = columns_[c];
      const ValueType type = column_types_[c];
      if (type == ValueType::kDate) {
        const std::string& date = patient.dates(next_date++);
        if (date.empty()) continue;
        if (absl::Status s = BindValue(fact, date, units_[c], facts); !s.ok()) return s;
        continue;
      }
      const double number = patient.numbers(next_number++);
      if (fact < 0 || std::isnan(number)) continue;
      if (type == ValueType::kBool) {
        if (number != 0 && number != 1) {
          std::string value;
          AppendCanonicalNumber(number, &value);
          return absl::InvalidArgumentError(absl::StrCat(
              "fact \"", rule_set_->facts()[fact].name, "\" = ", value,
              ": a boolean column takes 1 or 0 in numbers (NaN: missing)"));
        }
        if (absl::Status s = BindValue(fact, number == 1, units_[c], facts); !s.ok()) return s;
        continue;
      }
      if (absl::Status s = BindValue(fact, number, units_[c], facts); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status BindValue(int fact, const std::variant<double, bool, std::string>& input,
                         absl::string_view unit, FactValues* facts) const {
    absl::StatusOr<double> converted = rule_set_->ConvertFact(fact, input, unit);
    if (!converted.ok()) return converted.status();
    facts->values[fact] = *converted;
    facts->present[fact] = 1;
    return absl::OkStatus();
  }

  // The message in progress and its answer live on one arena, dropped
  // whole once the answer is written: a batch of a thousand patients costs
  // a few block allocations instead of thousands of small ones.
  void NewMessages() {
    arena_.Reset();
    request_ = google::protobuf::Arena::CreateMessage<v1::ScreenRequest>(&arena_);
    response_ = google::protobuf::Arena::CreateMessage<v1::ScreenResponse>(&arena_);
  }

  TrialRulesService* service_;
  const CallRecord call_;
  const absl::Time ends_at_;  // for a stream without a client deadline
  google::protobuf::Arena arena_;
  v1::ScreenRequest* request_ = nullptr;
  v1::ScreenResponse* response_ = nullptr;
  std::shared_ptr<const RuleSet> rule_set_;
  std::string site_id_;
  std::vector<int> columns_;  // fact index per column, -1 when ignored
  std::vector<ValueType> column_types_;  // kNumber for ignored columns
  int date_columns_ = 0;
  std::vector<Evaluation> evaluations_;
  std::vector<FactValues> facts_;
  std::vector<DecisionRecord> records_;
  std::vector<const Evaluation*> evaluated_;
  std::vector<std::string> units_;
};

// CompareVersions: compares each message's patients as it arrives and
// answers with the totals once the client has sent everything.
class TrialRulesService::CompareReactor : public grpc::ServerReadReactor<v1::CompareRequest> {
 public:
  CompareReactor(TrialRulesService* service, v1::CompareResponse* response)
      : service_(service), response_(response), call_(service->StartCall("CompareVersions")) {
    if (!call_.admitted()) {
      End(service_->Overloaded());
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Answer();
      return;
    }
    if (absl::Status status = Process(); !status.ok()) {
      End(ToGrpcStatus(status));
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }
  void End(const grpc::Status& status) {
    call_.Finished(status);
    Finish(status);
  }

 private:
  absl::Status Process() {
    if (base_ == nullptr) {
      if (request_.protocol_id().empty()) {
        return absl::InvalidArgumentError("protocol_id is required in the first message");
      }
      if (request_.base_version().empty() || request_.candidate_version().empty()) {
        return absl::InvalidArgumentError(
            "base_version and candidate_version are required in the first message");
      }
      absl::StatusOr<std::shared_ptr<const Catalog>> catalog = service_->Snapshot();
      if (!catalog.ok()) return catalog.status();
      auto base = (*catalog)->Select(request_.protocol_id(), request_.base_version(), 0);
      if (!base.ok()) return base.status();
      auto candidate =
          (*catalog)->Select(request_.protocol_id(), request_.candidate_version(), 0);
      if (!candidate.ok()) return candidate.status();
      base_ = *base;
      candidate_ = *candidate;
    }
    std::vector<PatientFacts> patients;
    for (const v1::ComparePatient& patient : request_.patients()) {
      PatientFacts facts{patient.subject_ref(), {}};
      for (const v1::FactValue& fact : patient.facts()) {
        absl::StatusOr<FactInput> input = FromProto(fact);
        if (!input.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "patient \"", patient.subject_ref(), "\": ", input.status().message()));
        }
        facts.facts.push_back(*std::move(input));
      }
      patients.push_back(std::move(facts));
    }
    const VersionComparison part =
        trialrules::CompareVersions(*base_, *candidate_, EvaluationKind::kEligibility, patients);
    total_.patients += part.patients;
    total_.changed += part.changed;
    for (const auto& [pair, count] : part.transitions) total_.transitions[pair] += count;
    for (const auto& [rule, count] : part.rules_causing_changes) {
      total_.rules_causing_changes[rule] += count;
    }
    total_.changes.insert(total_.changes.end(), part.changes.begin(), part.changes.end());
    total_.refused.insert(total_.refused.end(), part.refused.begin(), part.refused.end());
    return absl::OkStatus();
  }

  void Answer() {
    if (base_ == nullptr) {
      End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "no message: protocol_id and the two versions are required"));
      return;
    }
    response_->set_patients(total_.patients);
    response_->set_changed(total_.changed);
    for (const auto& [pair, count] : total_.transitions) {
      auto* transition = response_->add_transitions();
      transition->set_base(ToProto(pair.first));
      transition->set_candidate(ToProto(pair.second));
      transition->set_patients(count);
    }
    for (const auto& [rule, count] : total_.rules_causing_changes) {
      auto* rule_count = response_->add_rules_causing_changes();
      rule_count->set_rule(rule);
      rule_count->set_patients(count);
    }
    for (const PatientChange& change : total_.changes) {
      auto* out = response_->add_changes();
      out->set_subject_ref(change.subject_ref);
      out->set_base(ToProto(change.base));
      out->set_candidate(ToProto(change.candidate));
      for (const std::string& rule : change.rules) out->add_rules(rule);
    }
    for (const auto& [subject, error] : total_.refused) {
      auto* refusal = response_->add_refused();
      refusal->set_subject_ref(subject);
      refusal->set_error(error);
    }
    End(grpc::Status::OK);
  }

  TrialRulesService* service_;
  v1::CompareResponse* response_;
  const CallRecord call_;
  v1::CompareRequest request_;
  std::shared_ptr<const RuleSet> base_;
  std::shared_ptr<const RuleSet> candidate_;
  VersionComparison total_;
};

grpc::ServerReadReactor<v1::CompareRequest>* TrialRulesService::CompareVersions(
    grpc::CallbackServerContext* context, v1::CompareResponse* response) {
  return new CompareReactor(this, response);
}

grpc::ServerBidiReactor<v1::ScreenRequest, v1::ScreenResponse>*
TrialRulesService::ScreenPatients(grpc::CallbackServerContext* context) {
  return new ScreenReactor(this, context);
}

}  // namespace trialrules
