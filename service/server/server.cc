#include "service/server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <iostream>

#include "absl/strings/str_cat.h"

namespace trialrules {

TrialRulesServer::TrialRulesServer(ServerOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<TrialRulesServer>> TrialRulesServer::Start(
    ServerOptions options) {
  std::unique_ptr<TrialRulesServer> server(new TrialRulesServer(std::move(options)));
  absl::StatusOr<std::unique_ptr<AuditLog>> audit =
      AuditLog::Open(server->options_.audit_log_path, server->options_.audit_include_facts);
  if (!audit.ok()) return audit.status();
  server->audit_ = *std::move(audit);
  server->service_ = std::make_unique<TrialRulesService>(
      &server->catalog_, server->audit_.get(), server->options_.limits);

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

int TrialRulesServer::LoadRules() {
  std::vector<std::shared_ptr<const RuleSet>> rule_sets;
  for (const FileLoad& load : LoadRuleFiles({options_.rules_dir})) {
    for (const Problem& problem : load.result.problems) {
      std::cerr << "rules: refused: " << problem.ToString() << "\n";
    }
    if (load.result.rule_set == nullptr) continue;
    const RuleSet& rs = *load.result.rule_set;
    std::cerr << "rules: loaded " << load.path << ": " << rs.protocol_id() << " version "
              << rs.version() << " (sha256 " << rs.sha256() << ")\n";
    rule_sets.push_back(load.result.rule_set);
  }
  absl::StatusOr<Catalog> catalog = Catalog::Build(rule_sets);
  if (!catalog.ok()) {
    std::cerr << "rules: refused: " << catalog.status().message() << "\n";
    return 0;
  }
  const int loaded = static_cast<int>(catalog->rule_sets().size());
  if (loaded > 0) catalog_.Publish(std::make_shared<const Catalog>(*std::move(catalog)));
  UpdateHealth();
  return loaded;
}

void TrialRulesServer::UpdateHealth() {
  const std::shared_ptr<const Catalog> catalog = catalog_.Snapshot();
  std::lock_guard<std::mutex> lock(mutex_);
  const bool serving =
      !shutting_down_ && catalog != nullptr && audit_->healthy();
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
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + drain));
    server_->Wait();
  }
}

}  // namespace trialrules
