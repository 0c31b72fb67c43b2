// One call's place among the calls in flight and its metrics.
#ifndef TRIALRULES_SERVICE_SERVER_CALL_RECORD_H_
#define TRIALRULES_SERVICE_SERVER_CALL_RECORD_H_

#include <grpcpp/support/status.h>

#include <atomic>

#include "service/metrics/service_metrics.h"

namespace trialrules {

// One call from start to status: its place among the calls in flight
// (admitted, or refused for overload) and its metrics (when metrics are on).
class CallRecord {
 public:
  CallRecord(ServiceMetrics::MethodCalls* calls, std::atomic<int>* in_flight, int limit)
      : calls_(calls),
        started_(calls != nullptr ? calls->Started()
                                  : ServiceMetrics::MethodCalls::Clock::time_point()),
        in_flight_(in_flight),
        admitted_(in_flight->fetch_add(1, std::memory_order_relaxed) < limit) {}
  bool admitted() const { return admitted_; }
  // Call exactly once, with the status the call ends with.
  void Finished(const grpc::Status& status) const {
    in_flight_->fetch_sub(1, std::memory_order_relaxed);
    if (calls_ != nullptr) calls_->Finished(started_, status.error_code());
  }

 private:
  ServiceMetrics::MethodCalls* calls_;
  ServiceMetrics::MethodCalls::Clock::time_point started_;
  std::atomic<int>* in_flight_;
  bool admitted_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_SERVER_CALL_RECORD_H_
