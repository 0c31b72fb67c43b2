#include "service/metrics/exposer.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace trialrules {

absl::StatusOr<MetricsEndpoint> ExposeMetrics(
    const std::string& address,
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables) {
  // CivetWeb reads ":9464" as no address at all.
  const std::string listen = address.rfind(':', 0) == 0 ? "0.0.0.0" + address : address;
  // A scrape is one short request: a few threads are enough, and a client
  // that connects and then stalls is dropped after the request timeout
  // instead of holding a thread. No keep-alive: Prometheus reconnects
  // every scrape interval anyway.
  std::vector<std::string> options = {
      "listening_ports",    listen,  //
      "num_threads",        "8",     //
      "request_timeout_ms", "1000",  //
      "linger_timeout_ms",  "100",   //
      "enable_keep_alive",  "no",
  };
  MetricsEndpoint endpoint;
  try {
    endpoint.exposer = std::make_unique<prometheus::Exposer>(std::move(options));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address, ": ",
                                               e.what(),
                                               " (is the port taken? --metrics-address)"));
  }
  for (const auto& collectable : collectables) {
    endpoint.exposer->RegisterCollectable(collectable);
  }
  const std::vector<int> ports = endpoint.exposer->GetListeningPorts();
  endpoint.port = ports.empty() ? 0 : ports.front();
  return endpoint;
}

}  // namespace trialrules
