// ScreenPatients, the bulk-screening stream.
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/fhir/bundle_facts.h"
#include "service/fhir/ndjson.h"
#include "service/server/convert.h"
#include "service/server/trial_rules_service.h"
#include "service/util/number_text.h"

namespace trialrules {

// ScreenPatients: read a request, answer it, read the next. The rule set is
// chosen once, from the header, and pinned for the whole stream.
class TrialRulesService::ScreenReactor
    : public grpc::ServerBidiReactor<v1::ScreenRequest, v1::ScreenResponse> {
 public:
  ScreenReactor(TrialRulesService* service, grpc::CallbackServerContext* context)
      : service_(service),
        call_(service->StartCall(context, "ScreenPatients")),
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
      // The batch's records are written; its answers did not leave.
      std::vector<std::string> undelivered;
      for (const v1::ScreenResult& result : response_->results()) {
        if (!result.decision_id().empty()) undelivered.push_back(result.decision_id());
      }
      if (!undelivered.empty()) {
        service_->audit_->Append(
            AuditLog::FormatUndelivered(undelivered, "the stream's caller went away"),
            [](absl::Status) {});
      }
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
    if (!request_->fhir_ndjson().empty() || request_->fhir_line_numbers_size() > 0) {
      return ProcessFhir(audit_lines);
    }
    const ServiceLimits& limits = service_->limits_;
    if (static_cast<size_t>(request_->patients_size()) > limits.max_patients_per_message) {
      return absl::InvalidArgumentError(
          absl::StrCat("patients: ", request_->patients_size(),
                       " in one message; the limit is ", limits.max_patients_per_message));
    }
    Reserve(request_->patients_size());
    for (int p = 0; p < request_->patients_size(); ++p) {
      const v1::ScreenPatient& patient = request_->patients(p);
      v1::ScreenResult* result = response_->add_results();
      result->set_subject_ref(patient.subject_ref());
      absl::Status status = CheckLength("subject_ref", patient.subject_ref(),
                                        limits.max_reference_length);
      if (status.ok()) status = Bind(patient, &facts_[p]);
      if (!status.ok()) {
        result->set_error(absl::StrCat("patients[", p, "]: ", status.message()));
        continue;
      }
      Decide(p, result);
    }
    Record(audit_lines);
    return absl::OkStatus();
  }

  // A message of FHIR Bulk Data NDJSON: its patients, each read through the
  // rule set's bindings, are the batch.
  absl::Status ProcessFhir(std::string* audit_lines) {
    const ServiceLimits& limits = service_->limits_;
    if (request_->patients_size() > 0) {
      return absl::InvalidArgumentError(
          "patients and fhir_ndjson are both set; send a message's patients in one form");
    }
    const std::string& text = request_->fhir_ndjson();
    const absl::Span<const uint64_t> numbers(request_->fhir_line_numbers().data(),
                                             request_->fhir_line_numbers_size());
    if (!numbers.empty()) {
      const size_t lines = CountNdjsonLines(text);
      if (numbers.size() != lines) {
        return absl::InvalidArgumentError(
            absl::StrCat("fhir_line_numbers: ", numbers.size(), " numbers for ", lines,
                         " lines of fhir_ndjson (give one per line, or none)"));
      }
      for (size_t i = 0; i < numbers.size(); ++i) {
        if (numbers[i] == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("fhir_line_numbers[", i, "] = 0: lines are numbered from 1"));
        }
      }
    }
    NdjsonFacts read = FactsFromNdjson(text, *rule_set_, fhir_options_, numbers);
    if (read.patients.size() > limits.max_patients_per_message) {
      return absl::InvalidArgumentError(
          absl::StrCat("fhir_ndjson: ", read.patients.size(),
                       " patients in one message; the limit is ",
                       limits.max_patients_per_message));
    }
    for (std::string& error : read.line_errors) {
      response_->add_fhir_line_errors(std::move(error));
    }
    Reserve(read.patients.size());
    for (size_t p = 0; p < read.patients.size(); ++p) {
      const NdjsonPatient& patient = read.patients[p];
      v1::ScreenResult* result = response_->add_results();
      result->set_subject_ref(absl::StrCat("Patient/", patient.id));
      absl::Status status = CheckLength("Patient.id", patient.id, limits.max_reference_length);
      if (status.ok()) status = patient.facts.status();
      if (status.ok()) {
        rule_set_->ResetFacts(&facts_[p]);
        status = BindFhirFacts(*patient.facts, *rule_set_, as_of_,
                               /*bind_assessment_date=*/true, &facts_[p]);
      }
      if (!status.ok()) {
        result->set_error(std::string(status.message()));
        continue;
      }
      Decide(p, result);
    }
    Record(audit_lines);
    return absl::OkStatus();
  }

  // Per-patient storage is kept across batches: its capacity is reused.
  void Reserve(size_t count) {
    if (evaluations_.size() < count) {
      evaluations_.resize(count);
      facts_.resize(count);
    }
    records_.clear();
  }

  // The `p`th patient of the batch, whose facts are bound: its decision.
  void Decide(size_t p, v1::ScreenResult* result) {
    Evaluation& evaluation = evaluations_[p];
    rule_set_->Evaluate(EvaluationKind::kEligibility, facts_[p], &evaluation);
    rule_set_->MarkServed();
    result->set_decision_id(NewDecisionId());
    result->set_decision(ToProto(evaluation.decision));
    for (const RuleResult& rule : evaluation.rules) {
      result->add_outcomes(ToProto(rule.outcome));
    }
    for (int f : evaluation.missing_facts) result->add_missing_fact_indexes(f);
    records_.push_back({result->decision_id(), "ScreenPatients", rule_set_.get(), as_of_,
                        result->subject_ref(), site_id_, "", &evaluation, &facts_[p]});
  }

  // The batch's decisions, to the metrics and the audit log.
  void Record(std::string* audit_lines) {
    if (service_->metrics_ != nullptr) {
      evaluated_.clear();
      for (const DecisionRecord& record : records_) evaluated_.push_back(record.evaluation);
      service_->metrics_->RecordDecisions(rule_set_, evaluated_);
    }
    *audit_lines = service_->audit_->FormatBatch(records_);
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
    absl::StatusOr<std::optional<DayNumber>> as_of =
        ParseAsOfDate("header.as_of_date", header.as_of_date());
    if (!as_of.ok()) return as_of.status();
    absl::StatusOr<std::shared_ptr<const Catalog>> catalog = service_->Snapshot();
    if (!catalog.ok()) return catalog.status();
    absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set = (*catalog)->Select(
        {header.protocol_id(), header.version(), *as_of, header.site_id()}, TodayUtc());
    if (!rule_set.ok()) return rule_set.status();
    if (absl::Status s = (*rule_set)->CanDecide(EvaluationKind::kEligibility); !s.ok()) {
      return s;
    }
    rule_set_ = *rule_set;
    site_id_ = header.site_id();
    as_of_ = as_of->value_or(TodayUtc());
    fhir_options_.assessment_date = as_of_;
    fhir_options_.ignore_unknown_facts = header.ignore_unknown_facts();
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
    rule_set_->ResetFacts(facts);
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
      const std::optional<FactValue> input = FactValueOf(value);
      if (!input) continue;  // missing
      if (absl::Status s = rule_set_->BindFactAt(fact, *input, units_[c], facts); !s.ok()) {
        return s;
      }
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
        if (absl::Status s = rule_set_->BindFactAt(fact, date, units_[c], facts); !s.ok()) return s;
        continue;
      }
      const double number = patient.numbers(next_number++);
      if (fact < 0 || std::isnan(number)) continue;
      if (type == ValueType::kBool) {
        if (number != 0 && number != 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              "fact \"", rule_set_->facts()[fact].name, "\" = ", ShortestNumber(number),
              ": a boolean column takes 1 or 0 in numbers (NaN: missing)"));
        }
        if (absl::Status s = rule_set_->BindFactAt(fact, number == 1, units_[c], facts); !s.ok()) return s;
        continue;
      }
      if (absl::Status s = rule_set_->BindFactAt(fact, number, units_[c], facts); !s.ok()) return s;
    }
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
  DayNumber as_of_ = 0;  // the date rule_set_ was selected for
  BundleOptions fhir_options_;  // FHIR patients are assessed on as_of_
  std::vector<int> columns_;  // fact index per column, -1 when ignored
  std::vector<ValueType> column_types_;  // kNumber for ignored columns
  int date_columns_ = 0;
  std::vector<Evaluation> evaluations_;
  std::vector<FactValues> facts_;
  std::vector<DecisionRecord> records_;
  std::vector<const Evaluation*> evaluated_;
  std::vector<std::string> units_;
};

grpc::ServerBidiReactor<v1::ScreenRequest, v1::ScreenResponse>*
TrialRulesService::ScreenPatients(grpc::CallbackServerContext* context) {
  return new ScreenReactor(this, context);
}

}  // namespace trialrules
