// Process metrics read from /proc at scrape time (prometheus-cpp has no
// process collector), under the names Prometheus's own clients use.
#ifndef TRIALRULES_SERVICE_METRICS_PROCESS_COLLECTOR_H_
#define TRIALRULES_SERVICE_METRICS_PROCESS_COLLECTOR_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace trialrules {

// process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds. A value /proc does not give is left out of
// the scrape rather than reported as 0.
class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_METRICS_PROCESS_COLLECTOR_H_
