// One call's place among the calls in flight and its metrics.
#ifndef TRIALRULES_SERVICE_SERVER_CALL_RECORD_H_
#define TRIALRULES_SERVICE_SERVER_CALL_RECORD_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>

#include "service/metrics/service_metrics.h"

namespace trialrules {

// One call from start to status: its place among the calls in flight
// (admitted, or refused for overload) and its metrics (when metrics are on).
class CallRecord {
 public:
  CallRecord(const grpc::CallbackServerContext* context, ServiceMetrics::MethodCalls* calls,
             std::atomic<int>* in_flight, int limit)
      : context_(context),
        calls_(calls),
        started_(calls != nullptr ? calls->Started()
                                  : ServiceMetrics::MethodCalls::Clock::time_point()),
        in_flight_(in_flight),
        admitted_(in_flight->fetch_add(1, std::memory_order_relaxed) < limit) {}
  bool admitted() const { return admitted_; }
  // Call exactly once, with the status the call ends with.
  void Finished(const grpc::Status& status) const {
    in_flight_->fetch_sub(1, std::memory_order_relaxed);
    if (calls_ != nullptr) calls_->Finished(started_, CallerCode(status));
  }

 private:
  // The code the caller gets: a call it cancelled, or whose deadline
  // passed, ends so for the caller whatever status the server sends. A
  // client gives up at its deadline a little before the server's copy of
  // it passes (that copy counts from the call's arrival): a cancellation
  // that close to the deadline is the deadline.
  int CallerCode(const grpc::Status& status) const {
    if (!context_->IsCancelled()) return status.error_code();
    return context_->deadline() <= std::chrono::system_clock::now() + kDeadlineSkew
               ? grpc::StatusCode::DEADLINE_EXCEEDED
               : grpc::StatusCode::CANCELLED;
  }
  static constexpr std::chrono::milliseconds kDeadlineSkew{100};

  const grpc::CallbackServerContext* context_;
  ServiceMetrics::MethodCalls* calls_;
  ServiceMetrics::MethodCalls::Clock::time_point started_;
  std::atomic<int>* in_flight_;
  bool admitted_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_SERVER_CALL_RECORD_H_
