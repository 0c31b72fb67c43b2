#include "service/server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace trialrules {
namespace {

// The trialrules methods, "/trialrules.v1.TrialRules/CheckEligibility"...:
// the calls metrics record.
std::vector<std::string> ServiceMethods() {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::TrialRules::service_full_name());
  std::vector<std::string> methods;
  for (int m = 0; service != nullptr && m < service->method_count(); ++m) {
    methods.push_back(absl::StrCat("/", service->full_name(), "/", service->method(m)->name()));
  }
  return methods;
}

}  // namespace

TrialRulesServer::TrialRulesServer(ServerOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<TrialRulesServer>> TrialRulesServer::Start(
    ServerOptions options) {
  std::unique_ptr<TrialRulesServer> server(new TrialRulesServer(std::move(options)));
  absl::StatusOr<std::unique_ptr<AuditLog>> audit =
      AuditLog::Open(server->options_.audit_log_path, server->options_.audit_include_facts);
  if (!audit.ok()) return audit.status();
  server->audit_ = *std::move(audit);
  if (!server->options_.metrics_address.empty()) {
    server->metrics_ = std::make_unique<ServiceMetrics>(
        ServiceMethods(), [audit = server->audit_.get()] { return audit->failures(); });
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
  builder.AddListeningPort(server->options_.listen_address,
                           grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", server->options_.listen_address,
        ": the address is in use or invalid"));
  }
  // The default health service starts SERVING: not before rules are loaded.
  server->server_->GetHealthCheckService()->SetServingStatus(false);
  server->UpdateHealth();
  server->health_watcher_ = std::thread([s = server.get()] { s->WatchHealth(); });
  return server;
}

TrialRulesServer::~TrialRulesServer() {
  Shutdown(absl::ZeroDuration());
}

int TrialRulesServer::Reload() {
  std::lock_guard<std::mutex> one_at_a_time(reload_mutex_);
  const std::shared_ptr<const Catalog> previous = catalog_.Snapshot();
  CatalogReload reload = ReloadCatalog(options_.rules_dir, previous.get());
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
  for (const Problem& problem : reload.catalog->refused()) {
    std::cerr << "rules: refused: " << problem.ToString() << "\n";
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
  server_->GetHealthCheckService()->SetServingStatus(serving);
  std::cerr << "health: " << (serving ? "SERVING" : "NOT_SERVING") << "\n";
}

// The audit log can fail and recover between requests: reflect it in health.
void TrialRulesServer::WatchHealth() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!shutting_down_) {
    stop_.wait_for(lock, std::chrono::milliseconds(200));
    lock.unlock();
    UpdateHealth();
    lock.lock();
  }
}

void TrialRulesServer::Shutdown(absl::Duration drain) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) return;
    shutting_down_ = true;
    serving_ = false;
    if (server_ != nullptr) server_->GetHealthCheckService()->SetServingStatus(false);
  }
  stop_.notify_all();
  if (health_watcher_.joinable()) health_watcher_.join();
  if (reloader_.joinable()) reloader_.join();
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + drain));
    server_->Wait();
  }
}

}  // namespace trialrules
