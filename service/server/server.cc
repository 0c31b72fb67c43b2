#include "service/server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <google/protobuf/descriptor.h>

#include <sys/stat.h>

#include <cerrno>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "service/server/unparseable_request.h"
#include "service/util/certificate.h"
#include "service/util/file.h"

namespace trialrules {
namespace {

// The gRPC port's credentials: plaintext only when asked for; TLS with
// certificates the provider re-reads from disk; mutual TLS with a client CA.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ServerOptions& options) {
  const TlsOptions& tls = options.tls;
  const bool any_tls = !tls.cert_path.empty() || !tls.key_path.empty() ||
                       !tls.client_ca_path.empty();
  if (options.plaintext) {
    if (any_tls) {
      return absl::InvalidArgumentError(
          "--plaintext and --tls-cert/--tls-key/--tls-client-ca exclude each other");
    }
    return grpc::InsecureServerCredentials();
  }
  if (tls.cert_path.empty() || tls.key_path.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs --tls-cert and --tls-key (and --tls-client-ca for mutual TLS); "
        "serving without TLS must be asked for with --plaintext");
  }
  // The provider only logs unreadable files and then fails every handshake:
  // check them now, so that a wrong path stops the start with its name.
  for (auto [flag, path] : {std::pair{"--tls-cert", &tls.cert_path},
                            std::pair{"--tls-key", &tls.key_path},
                            std::pair{"--tls-client-ca", &tls.client_ca_path}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> pem = ReadFileBytes(*path);
    if (!pem.ok() || pem->find("-----BEGIN") == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " \"", *path, "\": ", pem.ok() ? "no PEM block in it" : pem.status().message()));
    }
  }
  const int refresh = std::max<int>(1, absl::ToInt64Seconds(tls.refresh));
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider =
      tls.client_ca_path.empty()
          ? std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                tls.key_path, tls.cert_path, refresh)
          : std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                tls.key_path, tls.cert_path, tls.client_ca_path, refresh);
  grpc::experimental::TlsServerCredentialsOptions credentials(provider);
  credentials.watch_identity_key_cert_pairs();
  if (!tls.client_ca_path.empty()) {
    credentials.watch_root_certs();
    credentials.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(credentials);
}

}  // namespace

namespace {

absl::StatusOr<AuditLogOptions> AuditOptions(const ServerOptions& options) {
  AuditLogOptions audit;
  audit.path = options.audit_log_path;
  audit.include_facts = options.audit_include_facts;
  audit.origin = options.audit_log_origin;
  audit.checkpoints_path = options.audit_checkpoints_path;
  audit.checkpoint_records = options.audit_checkpoint_records;
  audit.checkpoint_interval = options.audit_checkpoint_interval;
  audit.max_file_bytes = options.audit_log_max_bytes;
  const std::string& key = options.audit_signing_key_path;
  if (key.empty()) return audit;
  // A key that is configured but absent (an optional Secret not created)
  // leaves the log unsigned, said loudly; a key that is there but cannot be
  // used stops the start.
  if (struct stat file {}; ::stat(key.c_str(), &file) != 0 && errno == ENOENT) {
    std::cerr << "audit log: the signing key " << key
              << " does not exist; the log is NOT signed and decisions are not provable\n";
    return audit;
  }
  if (audit.path == "-" && audit.checkpoints_path.empty()) {
    std::cerr << "audit log: on standard output the signed checkpoints need a file of their "
                 "own (--audit-checkpoints); the log is NOT signed\n";
    return audit;
  }
  absl::StatusOr<NoteSigner> signer = NoteSigner::FromPemFile(key, options.audit_log_origin);
  if (!signer.ok()) return signer.status();
  audit.signer = std::make_shared<const NoteSigner>(*std::move(signer));
  return audit;
}

}  // namespace

TrialRulesServer::TrialRulesServer(ServerOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<TrialRulesServer>> TrialRulesServer::Start(
    ServerOptions options) {
  std::unique_ptr<TrialRulesServer> server(new TrialRulesServer(std::move(options)));
  absl::StatusOr<AuditLogOptions> audit_options = AuditOptions(server->options_);
  if (!audit_options.ok()) return audit_options.status();
  absl::StatusOr<std::unique_ptr<AuditLog>> audit = AuditLog::Open(*std::move(audit_options));
  if (!audit.ok()) return audit.status();
  server->audit_ = *std::move(audit);
  if (!server->options_.rules_archive_dir.empty()) {
    absl::StatusOr<RulesArchive> archive = RulesArchive::Open(server->options_.rules_archive_dir);
    if (!archive.ok()) return archive.status();
    server->rules_archive_.emplace(*std::move(archive));
    std::cerr << "rules: every rule file and decision table loaded is archived in "
              << server->options_.rules_archive_dir << "\n";
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentials(server->options_);
  if (!credentials.ok()) return credentials.status();
  if (!server->options_.metrics_address.empty()) {
    server->metrics_ = std::make_unique<ServiceMetrics>(
        TrialRulesService::MethodNames(),
        ServiceMetrics::AuditReadings{
            [audit = server->audit_.get()] { return audit->failures(); },
            [audit = server->audit_.get()] { return audit->torn_tails(); },
            [audit = server->audit_.get()] { return audit->size(); },
            [audit = server->audit_.get()] { return audit->checkpointed_size(); }});
    absl::StatusOr<MetricsEndpoint> endpoint = ExposeMetrics(
        server->options_.metrics_address, server->metrics_->collectables());
    if (!endpoint.ok()) return endpoint.status();
    server->metrics_endpoint_ = *std::move(endpoint);
  }
  server->service_ = std::make_unique<TrialRulesService>(
      &server->catalog_, server->audit_.get(), server->metrics_.get(),
      server->options_.limits);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC 1.51 binds with SO_REUSEPORT by default, so a second server on a
  // taken port would silently share it: refuse instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(server->options_.max_message_bytes);
  builder.SetMaxSendMessageSize(server->options_.max_message_bytes);
  // HTTP/2 limits. gRPC 1.51 predates the fixes for CVE-2023-44487 (rapid
  // reset), CVE-2023-33953 (HPACK) and CVE-2023-4785 (accept): these blunt
  // them, docs/operations.md says what a deployment must put in front.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             server->options_.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 16 * 1024);
  // Keepalive: ping idle clients every minute and drop the dead; refuse
  // clients that ping more often than every 10 s (two strikes).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  // Idle connections close after 5 minutes; every connection after 30
  // (plus 5 to finish its calls), which also bounds a stream left open and
  // lets clients rebalance onto new replicas.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 5 * 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 30 * 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 5 * 60 * 1000);
  builder.AddListeningPort(server->options_.listen_address, *credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(std::make_unique<UnparseableRequestInterceptorFactory>(
      *google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::TrialRules::service_full_name()),
      server->metrics_.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", server->options_.listen_address,
        ": the address is in use or invalid"));
  }
  if (!server->options_.health_listen_address.empty()) {
    // The same health statuses, set on both servers by SetReadiness.
    grpc::ServerBuilder health_builder;
    health_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    health_builder.AddListeningPort(server->options_.health_listen_address,
                                    grpc::InsecureServerCredentials(), &server->health_port_);
    server->health_server_ = health_builder.BuildAndStart();
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", server->options_.health_listen_address,
          " (--health-listen): the address is in use or invalid"));
    }
  }
  // The default health service starts SERVING: not before rules are loaded.
  server->SetReadiness(false);
  for (grpc::Server* s : {server->server_.get(), server->health_server_.get()}) {
    if (s != nullptr) s->GetHealthCheckService()->SetServingStatus(kLivenessService, true);
  }
  server->UpdateHealth();
  server->WatchCertificate();
  server->health_watcher_ = std::thread([s = server.get()] { s->WatchHealth(); });
  return server;
}

TrialRulesServer::~TrialRulesServer() {
  Shutdown(absl::ZeroDuration());
}

int TrialRulesServer::Reload() {
  std::lock_guard<std::mutex> one_at_a_time(reload_mutex_);
  const std::shared_ptr<const Catalog> previous = catalog_.Snapshot();
  auto keep_going = [this] {
    return stop_reloading_.load() ? absl::CancelledError("the server is shutting down")
                                  : absl::OkStatus();
  };
  CatalogReload reload = ReloadCatalog(options_.rules_dir, previous.get(), &reload_memory_,
                                       {absl::Now(), options_.rules_settle, keep_going});
  if (stop_reloading_.load()) {
    return previous != nullptr ? static_cast<int>(previous->rule_sets().size()) : 0;
  }
  for (const std::string& file : reload.unsettled) {
    std::cerr << "rules: " << file << " changed; waiting for it to settle\n";
  }
  // Archived before published, so before any decision is answered under it;
  // else nothing is published and the catalog in force keeps serving.
  if (rules_archive_.has_value()) {
    const absl::Status archived = ArchiveCatalogFiles(reload, &*rules_archive_);
    if (!archived.ok()) {
      if (archived.message() != archive_failure_) {
        archive_failure_ = std::string(archived.message());
        std::cerr << "rules: " << archive_failure_
                  << "; the new rules are not published, those in force keep serving\n";
      }
      if (metrics_ != nullptr) metrics_->RecordReload(true, absl::Now());
      return previous != nullptr ? static_cast<int>(previous->rule_sets().size()) : 0;
    }
    if (!archive_failure_.empty()) {
      archive_failure_.clear();
      std::cerr << "rules: archiving in " << options_.rules_archive_dir << " works again\n";
    }
  }
  const int in_force = static_cast<int>(reload.catalog->rule_sets().size());
  if (metrics_ != nullptr) {
    metrics_->RecordReload(!reload.catalog->refused().empty(), absl::Now());
    if (reload.changed) metrics_->RecordCatalog(*reload.catalog);
  }
  if (!reload.changed) return in_force;
  for (const std::string& added : reload.added) std::cerr << "rules: loaded " << added << "\n";
  for (const std::string& retired : reload.retired) {
    std::cerr << "rules: retired " << retired << " (its file is gone)\n";
  }
  for (const std::string& replaced : reload.replaced) {
    std::cerr << "rules: replaced " << replaced
              << " (its file changed before any decision was answered under it)\n";
  }
  for (const Problem& problem : reload.catalog->refused()) {
    std::cerr << "rules: refused: " << problem.ToString() << "\n";
  }
  for (const Problem& problem : reload.missing_tables) {
    std::cerr << "rules: warning: " << problem.ToString() << "\n";
  }
  // An empty catalog is published too, once something was loaded: then
  // requests are refused (UNAVAILABLE) rather than answered by rules whose
  // files are gone.
  if (in_force > 0 || previous != nullptr) catalog_.Publish(reload.catalog);
  std::cerr << "rules: " << in_force << " rule sets in force\n";
  UpdateHealth();
  return in_force;
}

void TrialRulesServer::StartReloading() {
  reloader_ = std::thread([this] { ReloadLoop(); });
}

void TrialRulesServer::RequestReload() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reload_requested_ = true;
  }
  stop_.notify_all();
}

void TrialRulesServer::ReloadLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!shutting_down_) {
    stop_.wait_for(lock, absl::ToChronoMilliseconds(options_.reload_interval),
                   [&] { return shutting_down_ || reload_requested_; });
    if (shutting_down_) return;
    reload_requested_ = false;
    lock.unlock();
    Reload();
    lock.lock();
  }
}

void TrialRulesServer::UpdateHealth() {
  const std::shared_ptr<const Catalog> catalog = catalog_.Snapshot();
  std::lock_guard<std::mutex> lock(mutex_);
  const bool serving = !shutting_down_ && catalog != nullptr &&
                       !catalog->rule_sets().empty() && audit_->healthy();
  if (server_ == nullptr || serving == serving_) return;
  serving_ = serving;
  SetReadiness(serving);
  std::cerr << "health: " << (serving ? "SERVING" : "NOT_SERVING") << "\n";
}

// The audit log can fail and recover between requests: reflect it in health.
void TrialRulesServer::WatchHealth() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!shutting_down_) {
    stop_.wait_for(lock, std::chrono::milliseconds(200));
    lock.unlock();
    audit_->Probe();
    UpdateHealth();
    WatchCertificate();
    lock.lock();
  }
}

void TrialRulesServer::WatchCertificate() {
  const absl::Time now = absl::Now();
  if (options_.plaintext || now < next_certificate_check_) return;
  next_certificate_check_ = now + options_.tls.refresh;
  const std::string& path = options_.tls.cert_path;
  absl::StatusOr<absl::Time> not_after = [&]() -> absl::StatusOr<absl::Time> {
    absl::StatusOr<std::string> pem = ReadFileBytes(path);
    if (!pem.ok()) return pem.status();
    return CertificateNotAfter(*pem);
  }();
  if (!not_after.ok()) {
    std::cerr << "tls: cannot read the expiry of " << path << ": "
              << not_after.status().message() << "\n";
    return;
  }
  if (*not_after == certificate_not_after_) return;
  certificate_not_after_ = *not_after;
  if (metrics_ != nullptr) metrics_->RecordCertificateExpiry(*not_after);
  const std::string when =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *not_after, absl::UTCTimeZone());
  if (*not_after <= now) {
    std::cerr << "tls: WARNING: the certificate " << path << " expired at " << when
              << "; clients that verify it refuse every connection until it is replaced\n";
  } else if (*not_after - now < absl::Hours(14 * 24)) {
    std::cerr << "tls: WARNING: the certificate " << path << " expires at " << when
              << ", in less than 14 days\n";
  } else {
    std::cerr << "tls: the certificate " << path << " is valid until " << when << "\n";
  }
}

void TrialRulesServer::SetReadiness(bool serving) {
  for (grpc::Server* server : {server_.get(), health_server_.get()}) {
    if (server == nullptr) continue;
    grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
    health->SetServingStatus("", serving);
    health->SetServingStatus(v1::TrialRules::service_full_name(), serving);
  }
}

void TrialRulesServer::Shutdown(absl::Duration drain) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) return;
    shutting_down_ = true;
    serving_ = false;
    SetReadiness(false);  // liveness stays SERVING while calls drain
  }
  stop_reloading_.store(true);
  stop_.notify_all();
  if (health_watcher_.joinable()) health_watcher_.join();
  if (reloader_.joinable()) reloader_.join();
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + drain));
    server_->Wait();
  }
  if (health_server_ != nullptr) {
    health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    health_server_->Wait();
  }
}

}  // namespace trialrules
