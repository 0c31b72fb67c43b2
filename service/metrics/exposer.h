// The /metrics endpoint: prometheus-cpp's pull exposer (CivetWeb), sized and
// with timeouts so that slow or idle clients cannot stop it answering.
#ifndef TRIALRULES_SERVICE_METRICS_EXPOSER_H_
#define TRIALRULES_SERVICE_METRICS_EXPOSER_H_

#include <prometheus/exposer.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace trialrules {

struct MetricsEndpoint {
  std::unique_ptr<prometheus::Exposer> exposer;
  int port = 0;  // the bound port (useful with port 0)
};

// Serves GET /metrics on `address` ("HOST:PORT", ":PORT" for every
// interface; port 0 picks a free one). A taken port or a bad address is an
// error, not an exception.
absl::StatusOr<MetricsEndpoint> ExposeMetrics(
    const std::string& address,
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_METRICS_EXPOSER_H_
