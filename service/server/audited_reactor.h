// The reactor of a unary call whose answer is audited.
#ifndef TRIALRULES_SERVICE_SERVER_AUDITED_REACTOR_H_
#define TRIALRULES_SERVICE_SERVER_AUDITED_REACTOR_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <chrono>
#include <string>
#include <utility>

#include "service/audit/audit_log.h"

namespace trialrules {

// A record is written before its answer leaves; the answer can still fail
// to arrive (the caller's deadline passes, it cancels, the connection
// drops). Then a follow-up record names the decision as undelivered, so
// that the log does not show a decision the caller never received as one
// it acted on.
class AuditedReactor : public grpc::ServerUnaryReactor {
 public:
  AuditedReactor(grpc::CallbackServerContext* context, AuditLog* audit)
      : context_(context), audit_(audit) {}

  // The decision's record is written; call before Finish.
  void Recorded(std::string decision_id) { decision_id_ = std::move(decision_id); }

  void OnDone() override {
    // IsCancelled: the call failed before its status reached the caller.
    if (!decision_id_.empty() && context_->IsCancelled()) {
      const bool late = context_->deadline() <= std::chrono::system_clock::now();
      audit_->Append(AuditLog::FormatUndelivered(
                         {decision_id_}, late ? "the caller's deadline passed"
                                              : "the call was cancelled or its connection lost"),
                     [](absl::Status) {});
    }
    delete this;
  }

 private:
  grpc::CallbackServerContext* const context_;
  AuditLog* const audit_;
  std::string decision_id_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_SERVER_AUDITED_REACTOR_H_
