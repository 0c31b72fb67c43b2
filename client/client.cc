#include "client/client.h"

namespace trialrules {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& target, bool own_connection) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  if (own_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

TrialRulesClient::TrialRulesClient(std::shared_ptr<grpc::Channel> channel,
                                   absl::Duration deadline)
    : channel_(std::move(channel)),
      stub_(v1::TrialRules::NewStub(channel_)),
      deadline_(deadline) {}

TrialRulesClient::TrialRulesClient(const std::string& target, absl::Duration deadline)
    : TrialRulesClient(NewChannel(target), deadline) {}

std::unique_ptr<grpc::ClientContext> TrialRulesClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
  return context;
}

absl::StatusOr<v1::EvaluateResponse> TrialRulesClient::Evaluate(
    EvaluationKind kind, const v1::EvaluateRequest& request) const {
  auto context = NewContext();
  v1::EvaluateResponse response;
  grpc::Status status;
  switch (kind) {
    case EvaluationKind::kEligibility:
      status = stub_->CheckEligibility(context.get(), request, &response);
      break;
    case EvaluationKind::kWithdrawal:
      status = stub_->CheckWithdrawal(context.get(), request, &response);
      break;
    case EvaluationKind::kEscalation:
      status = stub_->EvaluateEscalation(context.get(), request, &response);
      break;
    case EvaluationKind::kStopping:
      status = stub_->EvaluateStopping(context.get(), request, &response);
      break;
  }
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ListRuleSetsResponse> TrialRulesClient::ListRuleSets(
    const std::string& protocol_id) const {
  auto context = NewContext();
  v1::ListRuleSetsRequest request;
  request.set_protocol_id(protocol_id);
  v1::ListRuleSetsResponse response;
  const grpc::Status status = stub_->ListRuleSets(context.get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::RuleSetInfo> TrialRulesClient::GetRuleSet(
    const std::string& protocol_id, const std::string& version) const {
  auto context = NewContext();
  v1::GetRuleSetRequest request;
  request.set_protocol_id(protocol_id);
  request.set_version(version);
  v1::RuleSetInfo response;
  const grpc::Status status = stub_->GetRuleSet(context.get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::ValidateRuleSetResponse> TrialRulesClient::ValidateRuleSet(
    const std::string& text, const std::string& file_name) const {
  auto context = NewContext();
  v1::ValidateRuleSetRequest request;
  request.set_text(text);
  request.set_file_name(file_name);
  v1::ValidateRuleSetResponse response;
  const grpc::Status status = stub_->ValidateRuleSet(context.get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

void AddFacts(const std::vector<FactInput>& facts, v1::EvaluateRequest* request) {
  for (const FactInput& input : facts) {
    v1::FactValue* fact = request->add_facts();
    fact->set_name(input.name);
    fact->set_unit(input.unit);
    if (const double* number = std::get_if<double>(&input.value)) {
      fact->set_number(*number);
    } else if (const bool* flag = std::get_if<bool>(&input.value)) {
      fact->set_boolean(*flag);
    } else {
      fact->set_date(std::get<std::string>(input.value));
    }
  }
}

}  // namespace trialrules
