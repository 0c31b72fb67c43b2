// Wiring shared by main and the tests: the gRPC server with the trialrules
// service, health (grpc.health.v1) and reflection, over a catalog loaded from
// the rules directory, with the audit log as the decisions' observer.
#ifndef TRIALRULES_SERVICE_SERVER_SERVER_H_
#define TRIALRULES_SERVICE_SERVER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/audit/audit_log.h"
#include "service/catalog/reload.h"
#include "service/catalog/rules_archive.h"
#include "service/metrics/exposer.h"
#include "service/metrics/service_metrics.h"
#include "service/server/trial_rules_service.h"

namespace trialrules {

// TLS on the gRPC port. The files are re-read every `refresh`, so a
// rotated certificate is served without a restart.
struct TlsOptions {
  std::string cert_path;       // PEM certificate chain
  std::string key_path;        // PEM private key
  std::string client_ca_path;  // PEM CAs; set: mutual TLS, client certificate required
  absl::Duration refresh = absl::Seconds(60);
};

// The health service names: "" and the trialrules service answer SERVING
// only when ready (rules loaded, audit log writable, not shutting down);
// "liveness" answers SERVING as long as the process serves at all.
inline constexpr char kLivenessService[] = "liveness";

struct ServerOptions {
  std::string listen_address = "127.0.0.1:50051";
  // Serving without TLS must be asked for; else `tls` is required.
  bool plaintext = false;
  TlsOptions tls;
  // Optional plaintext port serving only grpc.health.v1 (for probes that
  // have no client certificate when mutual TLS is on).
  std::string health_listen_address;
  std::string rules_dir = "rules";
  // How often the rules directory is read again (SIGHUP: at once).
  absl::Duration reload_interval = absl::Seconds(2);
  // A new or changed rule file is loaded once its bytes have read the same
  // for this long (not at the first read).
  absl::Duration rules_settle = absl::Seconds(1);
  // Every rule file and decision table loaded is kept here by its SHA-256
  // before a decision can be answered under it (RulesArchive); empty: none.
  std::string rules_archive_dir;
  // Prometheus /metrics; empty: no metrics are recorded or served.
  std::string metrics_address = "127.0.0.1:9464";
  std::string audit_log_path = "trialrules-audit.jsonl";
  bool audit_include_facts = false;
  // Ed25519 PKCS#8 PEM; set: the log is signed (AuditLogOptions).
  std::string audit_signing_key_path;
  std::string audit_log_origin = "trialrules/audit";
  std::string audit_checkpoints_path;  // empty: the log's path + ".checkpoints"
  uint64_t audit_checkpoint_records = 1000;
  absl::Duration audit_checkpoint_interval = absl::Seconds(10);
  uint64_t audit_log_max_bytes = 256 << 20;  // 0: no rotation
  int max_message_bytes = 16 << 20;
  // HTTP/2 streams one connection may have open at once.
  int max_concurrent_streams = 100;
  ServiceLimits limits;
};

class TrialRulesServer {
 public:
  // Binds and starts serving, NOT_SERVING and answering UNAVAILABLE until
  // LoadRules() has published a catalog. Fails on a port already in use.
  static absl::StatusOr<std::unique_ptr<TrialRulesServer>> Start(ServerOptions options);
  ~TrialRulesServer();

  int port() const { return port_; }
  int health_port() const { return health_port_; }
  // The bound metrics port; 0 when metrics are off.
  int metrics_port() const { return metrics_endpoint_.port; }

  // Reads the rules directory, merges it with the catalog in force (see
  // ReloadCatalog) and publishes the result atomically when it changed;
  // additions, retirements and refusals (file:line:col) are logged. With a
  // rules archive, a catalog is published only once each of its files is
  // archived (else the catalog in force stays, and the failure is logged).
  // Runs on the caller's thread, never on a request's. Returns the number
  // of rule sets in force.
  int Reload();
  // Starts re-reading the rules directory every reload_interval.
  void StartReloading();
  // Asks the reloading thread for a reload now (e.g. on SIGHUP).
  void RequestReload();

  // Health NOT_SERVING, stop accepting, let calls in flight finish within
  // `drain`, then stop. Never call from a signal handler.
  void Shutdown(absl::Duration drain);

 private:
  explicit TrialRulesServer(ServerOptions options);
  void UpdateHealth();
  void SetReadiness(bool serving);
  void WatchHealth();
  // Reads the TLS certificate's expiry (every tls.refresh), warns when it
  // has passed or is near, and sets the metric.
  void WatchCertificate();
  void ReloadLoop();

  const ServerOptions options_;
  CatalogHolder catalog_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<ServiceMetrics> metrics_;  // null when metrics are off
  MetricsEndpoint metrics_endpoint_;
  std::unique_ptr<TrialRulesService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> health_server_;  // null without health_listen_address
  int port_ = 0;
  int health_port_ = 0;

  std::mutex mutex_;
  std::condition_variable stop_;
  bool shutting_down_ = false;  // guarded by mutex_
  bool serving_ = false;        // guarded by mutex_
  bool reload_requested_ = false;  // guarded by mutex_
  std::thread health_watcher_;
  std::thread reloader_;
  std::mutex reload_mutex_;  // one reload at a time
  // Set at shutdown: a reload in progress stops at its next step, unpublished.
  std::atomic<bool> stop_reloading_{false};
  ReloadMemory reload_memory_;  // guarded by reload_mutex_
  std::optional<RulesArchive> rules_archive_;  // guarded by reload_mutex_
  std::string archive_failure_;  // the last one logged; guarded by reload_mutex_
  // Used by Start, then by the health watcher alone.
  absl::Time certificate_not_after_ = absl::InfinitePast();
  absl::Time next_certificate_check_ = absl::InfinitePast();
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_SERVER_SERVER_H_
