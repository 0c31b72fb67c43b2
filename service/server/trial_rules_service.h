// The gRPC service: translates requests into engine calls and answers into
// responses. Each request pins one catalog snapshot, so it finishes on the
// version it started with; every decision is audited before it is sent.
#ifndef TRIALRULES_SERVICE_SERVER_TRIAL_RULES_SERVICE_H_
#define TRIALRULES_SERVICE_SERVER_TRIAL_RULES_SERVICE_H_

#include <atomic>
#include <cstddef>

#include "absl/container/flat_hash_map.h"
#include "service/audit/audit_log.h"
#include "service/server/audited_reactor.h"
#include "service/metrics/service_metrics.h"
#include "service/catalog/catalog.h"
#include "service/server/arena_allocator.h"
#include "service/server/call_record.h"
#include "service/server/limits.h"
#include "service/util/background_worker.h"
#include "trialrules/v1/service.grpc.pb.h"

namespace trialrules {

// Thread-safe; handlers never block: an answer is finished by the audit
// log's writer once its record is written.
class TrialRulesService final : public v1::TrialRules::CallbackService {
 public:
  // "/trialrules.v1.TrialRules/CheckEligibility" and the others: the
  // calls metrics record.
  static std::vector<std::string> MethodNames();

  // `metrics` may be null (metrics off).
  TrialRulesService(const CatalogHolder* catalog, AuditLog* audit,
                    ServiceMetrics* metrics, ServiceLimits limits);

  grpc::ServerUnaryReactor* CheckEligibility(grpc::CallbackServerContext* context,
                                             const v1::EvaluateRequest* request,
                                             v1::EvaluateResponse* response) override;
  grpc::ServerUnaryReactor* CheckWithdrawal(grpc::CallbackServerContext* context,
                                            const v1::EvaluateRequest* request,
                                            v1::EvaluateResponse* response) override;
  grpc::ServerUnaryReactor* EvaluateEscalation(grpc::CallbackServerContext* context,
                                               const v1::EvaluateRequest* request,
                                               v1::EvaluateResponse* response) override;
  grpc::ServerUnaryReactor* EvaluateStopping(grpc::CallbackServerContext* context,
                                             const v1::EvaluateRequest* request,
                                             v1::EvaluateResponse* response) override;
  grpc::ServerBidiReactor<v1::ScreenRequest, v1::ScreenResponse>* ScreenPatients(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* ListRuleSets(grpc::CallbackServerContext* context,
                                         const v1::ListRuleSetsRequest* request,
                                         v1::ListRuleSetsResponse* response) override;
  grpc::ServerUnaryReactor* GetRuleSet(grpc::CallbackServerContext* context,
                                       const v1::GetRuleSetRequest* request,
                                       v1::RuleSetInfo* response) override;
  grpc::ServerUnaryReactor* GradeEvents(grpc::CallbackServerContext* context,
                                        const v1::GradeRequest* request,
                                        v1::GradeResponse* response) override;
  grpc::ServerUnaryReactor* EvaluateTrial(grpc::CallbackServerContext* context,
                                          const v1::EvaluateTrialRequest* request,
                                          v1::EvaluateTrialResponse* response) override;
  grpc::ServerUnaryReactor* GetDecisionProof(grpc::CallbackServerContext* context,
                                             const v1::GetDecisionProofRequest* request,
                                             v1::GetDecisionProofResponse* response) override;
  grpc::ServerReadReactor<v1::CompareRequest>* CompareVersions(
      grpc::CallbackServerContext* context, v1::CompareResponse* response) override;
  grpc::ServerUnaryReactor* ValidateRuleSet(
      grpc::CallbackServerContext* context, const v1::ValidateRuleSetRequest* request,
      v1::ValidateRuleSetResponse* response) override;

 private:
  class ScreenReactor;
  class CompareReactor;
  class ValidateReactor;

  // The call's record; `method` as in "CheckEligibility".
  CallRecord StartCall(const grpc::CallbackServerContext* context, absl::string_view method);
  // The status of a call refused for overload.
  grpc::Status Overloaded() const;
  // Finishes a unary call and records its status.
  static void Finish(grpc::ServerUnaryReactor* reactor, const CallRecord& call,
                     const grpc::Status& status);

  // Finishes a unary call whose work gave `status` and, when OK, its audit
  // record: the answer leaves only once the record is written (else the
  // call fails UNAVAILABLE with `response` cleared).
  void FinishAudited(AuditedReactor* reactor, const CallRecord& call,
                     const absl::Status& status, std::string audit_line,
                     std::string decision_id, google::protobuf::Message* response);

  // GradeEvents' work: grades every observation set, or refuses the
  // request naming the set and the observation; fills `audit_line`.
  absl::Status Grade(const v1::GradeRequest& request, v1::GradeResponse* response,
                     std::string* audit_line);

  // EvaluateTrial's work: refuses records over the limits, picks the
  // version in force on their as-of date, evaluates; fills `audit_line`.
  absl::Status Trial(const v1::EvaluateTrialRequest& request, v1::EvaluateTrialResponse* response,
                     std::string* audit_line);
  absl::Status CheckTrialLimits(const v1::EvaluateTrialRequest& request) const;

  // The steps of a one-patient answer (Answer), in order.
  absl::Status CheckRequestLimits(const v1::EvaluateRequest& request) const;
  static absl::StatusOr<std::optional<DayNumber>> RequestAsOfDate(
      const v1::EvaluateRequest& request);
  static absl::Status CheckDoseLevel(const RuleSet& rule_set, absl::string_view dose_level);
  // Binds the request's typed facts and, with fhir_bundle_json, the facts
  // the Bundle gives for `as_of_date` (then also assessment_date itself,
  // as the CLI's eval --fhir does); `provenance` gets the Bundle's
  // (fact, resource) pairs.
  static absl::Status BindRequestFacts(const RuleSet& rule_set,
                                       const v1::EvaluateRequest& request,
                                       DayNumber as_of_date, FactValues* facts,
                                       std::vector<std::string>* ignored,
                                       std::vector<std::pair<std::string, std::string>>* provenance);

  grpc::ServerUnaryReactor* Evaluate(EvaluationKind kind, absl::string_view method,
                                     grpc::CallbackServerContext* context,
                                     const v1::EvaluateRequest& request,
                                     v1::EvaluateResponse* response);
  // Evaluates and fills `response`; `audit_lines` gets the decision's
  // record, to be written before the response is sent.
  absl::Status Answer(EvaluationKind kind, absl::string_view method,
                      const v1::EvaluateRequest& request,
                      v1::EvaluateResponse* response, std::string* audit_lines);
  absl::StatusOr<std::shared_ptr<const Catalog>> Snapshot() const;

  ArenaMessageAllocator<v1::EvaluateRequest, v1::EvaluateResponse> evaluate_allocator_;
  const CatalogHolder* catalog_;
  AuditLog* audit_;
  ServiceMetrics* metrics_;
  // By method name ("CheckEligibility"); empty when metrics are off.
  absl::flat_hash_map<std::string, ServiceMetrics::MethodCalls*> method_calls_;
  const ServiceLimits limits_;
  std::atomic<int> in_flight_{0};
  // Last: its destructor finishes the checks still queued, which use the
  // members above.
  BackgroundWorker validation_worker_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_SERVER_TRIAL_RULES_SERVICE_H_
