#include "client/client.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace trialrules {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot open the file"));
  }
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read the file"));
  return bytes.str();
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ChannelSecurity& security) {
  if (security.ca_path.empty()) {
    if (!security.cert_path.empty() || !security.key_path.empty()) {
      return absl::InvalidArgumentError("a client certificate needs the CA too (--tls-ca)");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (security.cert_path.empty() != security.key_path.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  grpc::SslCredentialsOptions options;
  for (auto [path, pem] : {std::pair{&security.ca_path, &options.pem_root_certs},
                           std::pair{&security.cert_path, &options.pem_cert_chain},
                           std::pair{&security.key_path, &options.pem_private_key}}) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> bytes = ReadPem(*path);
    if (!bytes.ok()) return bytes.status();
    *pem = *std::move(bytes);
  }
  return grpc::SslCredentials(options);
}

std::shared_ptr<grpc::Channel> NewChannel(
    const std::string& target, bool own_connection,
    std::shared_ptr<grpc::ChannelCredentials> credentials,
    const std::string& server_name_override) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  if (own_connection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (!server_name_override.empty()) {
    args.SetSslTargetNameOverride(server_name_override);
  }
  return grpc::CreateCustomChannel(
      target, credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(), args);
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

namespace {

// One unary call with the client's deadline, its status as absl::Status.
template <typename Request, typename Response>
absl::StatusOr<Response> Call(const TrialRulesClient& client,
                              grpc::Status (v1::TrialRules::Stub::*method)(
                                  grpc::ClientContext*, const Request&, Response*),
                              const Request& request) {
  auto context = client.NewContext();
  Response response;
  const grpc::Status status = (client.stub()->*method)(context.get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace

absl::StatusOr<v1::EvaluateResponse> TrialRulesClient::Evaluate(
    EvaluationKind kind, const v1::EvaluateRequest& request) const {
  using Stub = v1::TrialRules::Stub;
  switch (kind) {
    case EvaluationKind::kEligibility: return Call(*this, &Stub::CheckEligibility, request);
    case EvaluationKind::kWithdrawal: return Call(*this, &Stub::CheckWithdrawal, request);
    case EvaluationKind::kEscalation: return Call(*this, &Stub::EvaluateEscalation, request);
    case EvaluationKind::kStopping: return Call(*this, &Stub::EvaluateStopping, request);
  }
  return absl::InvalidArgumentError("unknown evaluation kind");
}

absl::StatusOr<v1::ListRuleSetsResponse> TrialRulesClient::ListRuleSets(
    const std::string& protocol_id) const {
  v1::ListRuleSetsRequest request;
  request.set_protocol_id(protocol_id);
  return Call(*this, &v1::TrialRules::Stub::ListRuleSets, request);
}

absl::StatusOr<v1::RuleSetInfo> TrialRulesClient::GetRuleSet(
    const std::string& protocol_id, const std::string& version) const {
  v1::GetRuleSetRequest request;
  request.set_protocol_id(protocol_id);
  request.set_version(version);
  return Call(*this, &v1::TrialRules::Stub::GetRuleSet, request);
}

absl::StatusOr<v1::ValidateRuleSetResponse> TrialRulesClient::ValidateRuleSet(
    const std::string& text, const std::string& file_name) const {
  v1::ValidateRuleSetRequest request;
  request.set_text(text);
  request.set_file_name(file_name);
  return Call(*this, &v1::TrialRules::Stub::ValidateRuleSet, request);
}

namespace {

// A string is a date for facts, a word for observations (the server reads
// either field by the declared type; the field says what the caller meant).
void FillValue(const FactInput& input, bool strings_are_words, v1::FactValue* out) {
  out->set_name(input.name);
  out->set_unit(input.unit);
  if (const double* number = std::get_if<double>(&input.value)) {
    out->set_number(*number);
  } else if (const bool* flag = std::get_if<bool>(&input.value)) {
    out->set_boolean(*flag);
  } else if (strings_are_words) {
    out->set_text(std::get<std::string>(input.value));
  } else {
    out->set_date(std::get<std::string>(input.value));
  }
}

}  // namespace

void AddFacts(const std::vector<FactInput>& facts, v1::EvaluateRequest* request) {
  for (const FactInput& input : facts) FillValue(input, false, request->add_facts());
}

void AddObservations(const std::vector<FactInput>& observations, v1::ObservationSet* set) {
  AddObservations(observations, set->mutable_observations());
}

void AddObservations(const std::vector<FactInput>& observations,
                     google::protobuf::RepeatedPtrField<v1::FactValue>* out) {
  for (const FactInput& input : observations) FillValue(input, true, out->Add());
}

absl::StatusOr<v1::GradeResponse> TrialRulesClient::GradeEvents(
    const v1::GradeRequest& request) const {
  return Call(*this, &v1::TrialRules::Stub::GradeEvents, request);
}

absl::StatusOr<v1::EvaluateTrialResponse> TrialRulesClient::EvaluateTrial(
    const v1::EvaluateTrialRequest& request) const {
  return Call(*this, &v1::TrialRules::Stub::EvaluateTrial, request);
}

}  // namespace trialrules
