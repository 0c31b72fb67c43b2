// ValidateRuleSet: a rule file a caller sent is checked on the validation
// worker, never on a thread that answers decisions, and the check stops as
// soon as the caller cancels or the call's deadline (or the server's
// budget) passes.
#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/strings/match.h"
#include "service/catalog/reload.h"
#include "service/engine/decision_table.h"
#include "service/engine/loader.h"
#include "service/server/convert.h"
#include "service/server/trial_rules_service.h"

namespace trialrules {

class TrialRulesService::ValidateReactor : public grpc::ServerUnaryReactor {
 public:
  ValidateReactor(TrialRulesService* service, grpc::CallbackServerContext* context,
                  const v1::ValidateRuleSetRequest* request,
                  v1::ValidateRuleSetResponse* response)
      : request_(request),
        response_(response),
        call_(service->StartCall(context, "ValidateRuleSet")),
        budget_(service->limits_.max_call_duration),
        budget_ends_(absl::Now() + budget_),
        caller_deadline_(
            context->deadline() == std::chrono::system_clock::time_point::max()
                ? absl::InfiniteFuture()
                : absl::FromChrono(context->deadline())) {
    if (!call_.admitted()) {
      End(service->Overloaded());
      return;
    }
    if (absl::Status request_ok = CheckRequest(); !request_ok.ok()) {
      End(ToGrpcStatus(request_ok));
      return;
    }
    const ServiceLimits& limits = service->limits_;
    if (!service->validation_worker_.TrySubmit([this] { Validate(); })) {
      End(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       absl::StrCat("rule-file checks are busy: ", limits.validation_threads,
                                    " running and ", limits.validation_queue,
                                    " waiting already; retry with backoff")));
    }
  }

  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }
  void OnDone() override { delete this; }

 private:
  absl::Status CheckRequest() const {
    if (request_->text().empty()) return absl::InvalidArgumentError("text is required");
    return CheckLength("file_name", request_->file_name(), 256);
  }

  // Asked by the load between its steps.
  absl::Status KeepGoing() const {
    if (cancelled_.load(std::memory_order_relaxed)) {
      return absl::CancelledError("the caller cancelled the call; the check was stopped");
    }
    const absl::Time now = absl::Now();
    if (now > caller_deadline_) {
      return absl::DeadlineExceededError(
          "the call's deadline passed before the check finished; the check was stopped");
    }
    if (now > budget_ends_) {
      return absl::DeadlineExceededError(
          absl::StrCat("the check did not finish within the server's budget of ",
                       absl::FormatDuration(budget_), " for a call; it was stopped"));
    }
    return absl::OkStatus();
  }

  // Runs on the validation worker.
  void Validate() {
    const std::string file_name =
        request_->file_name().empty() ? "candidate.textproto" : request_->file_name();
    auto keep_going = [this] { return KeepGoing(); };
    if (absl::EndsWith(file_name, kTableFileExtension)) {
      const TableLoadResult result = LoadDecisionTables(request_->text(), file_name, keep_going);
      if (result.tables != nullptr) {
        v1::TableRef* table = response_->mutable_table();
        table->set_table_id(result.tables->table_id());
        table->set_version(result.tables->version());
        table->set_sha256(result.tables->sha256());
      }
      Respond(result.stopped, result.tables != nullptr, result.problems, result.tests);
      return;
    }
    const LoadResult result = LoadRuleSet(request_->text(), file_name, keep_going);
    if (result.rule_set != nullptr) {
      FillRuleSetRef(*result.rule_set, response_->mutable_rule_set());
      FillCoverage(*result.rule_set, result.coverage, response_->mutable_coverage());
    }
    Respond(result.stopped, result.rule_set != nullptr, result.problems, result.tests);
  }

  void Respond(const absl::Status& stopped, bool valid, const std::vector<Problem>& problems,
               const std::vector<TestCaseResult>& tests) {
    if (!stopped.ok()) {
      response_->Clear();
      End(ToGrpcStatus(stopped));
      return;
    }
    response_->set_valid(valid);
    FillProblems(problems, response_->mutable_problems());
    for (const TestCaseResult& test : tests) {
      v1::TestCaseResult* out = response_->add_test_cases();
      out->set_name(test.name);
      out->set_passed(test.passed);
    }
    End(grpc::Status::OK);
  }

  void End(const grpc::Status& status) {
    call_.Finished(status);
    Finish(status);
  }

  const v1::ValidateRuleSetRequest* request_;
  v1::ValidateRuleSetResponse* response_;
  const CallRecord call_;
  const absl::Duration budget_;
  const absl::Time budget_ends_;
  const absl::Time caller_deadline_;
  std::atomic<bool> cancelled_{false};
};

grpc::ServerUnaryReactor* TrialRulesService::ValidateRuleSet(
    grpc::CallbackServerContext* context, const v1::ValidateRuleSetRequest* request,
    v1::ValidateRuleSetResponse* response) {
  return new ValidateReactor(this, context, request, response);
}

}  // namespace trialrules
