// CompareVersions, the amendment-impact client stream.
#include "absl/strings/str_cat.h"
#include "service/engine/compare.h"
#include "service/server/convert.h"
#include "service/server/trial_rules_service.h"

namespace trialrules {

// CompareVersions: compares each message's patients as it arrives and
// answers with the totals once the client has sent everything.
class TrialRulesService::CompareReactor : public grpc::ServerReadReactor<v1::CompareRequest> {
 public:
  CompareReactor(TrialRulesService* service, grpc::CallbackServerContext* context,
                 v1::CompareResponse* response)
      : service_(service),
        response_(response),
        call_(service->StartCall(context, "CompareVersions")) {
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
      const DayNumber today = TodayUtc();
      auto base = (*catalog)->Select(
          {request_.protocol_id(), request_.base_version(), std::nullopt, ""}, today);
      if (!base.ok()) return base.status();
      auto candidate =
          (*catalog)->Select(
              {request_.protocol_id(), request_.candidate_version(), std::nullopt, ""}, today);
      if (!candidate.ok()) return candidate.status();
      for (const auto* version : {&*base, &*candidate}) {
        if (absl::Status s = (*version)->CanDecide(EvaluationKind::kEligibility); !s.ok()) {
          return s;
        }
      }
      base_ = *base;
      candidate_ = *candidate;
    }
    std::vector<PatientFacts> patients;
    for (const v1::ComparePatient& patient : request_.patients()) {
      PatientFacts facts{patient.subject_ref(), {}};
      for (const v1::FactValue& fact : patient.facts()) {
        absl::StatusOr<FactInput> input = FactInputFromProto(fact);
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
  return new CompareReactor(this, context, response);
}

}  // namespace trialrules
