// The trialrules client library: a channel to one server or, with a
// "dns:///NAME:PORT" target, to every address the name resolves to, with
// round-robin balancing; every call carries a deadline. It needs the
// generated API and gRPC only (the vocabulary header is header-only).
#ifndef TRIALRULES_CLIENT_CLIENT_H_
#define TRIALRULES_CLIENT_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/engine/vocabulary.h"
#include "trialrules/v1/service.grpc.pb.h"

namespace trialrules {

absl::Status FromGrpcStatus(const grpc::Status& status);

// How a channel authenticates. Empty: plaintext. `ca_path`: TLS, the
// server verified against these CAs (PEM); with `cert_path` and `key_path`
// the client presents its own certificate (mutual TLS).
struct ChannelSecurity {
  std::string ca_path;
  std::string cert_path;
  std::string key_path;
  // For a server whose certificate names another host than the target's
  // (e.g. dialling 127.0.0.1 a certificate for "trialrules").
  std::string server_name_override;
};

// The channel credentials `security` asks for; an unreadable file is an
// error naming it.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ChannelSecurity& security);

// A channel with round_robin load balancing. `own_connection` gives the
// channel its own TCP connection even to a server another channel reaches.
std::shared_ptr<grpc::Channel> NewChannel(
    const std::string& target, bool own_connection = false,
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr,
    const std::string& server_name_override = "");

// Thread-safe.
class TrialRulesClient {
 public:
  TrialRulesClient(std::shared_ptr<grpc::Channel> channel, absl::Duration deadline);
  explicit TrialRulesClient(const std::string& target,
                            absl::Duration deadline = absl::Seconds(10));

  absl::StatusOr<v1::EvaluateResponse> Evaluate(EvaluationKind kind,
                                                const v1::EvaluateRequest& request) const;
  absl::StatusOr<v1::ListRuleSetsResponse> ListRuleSets(
      const std::string& protocol_id = "") const;
  absl::StatusOr<v1::RuleSetInfo> GetRuleSet(const std::string& protocol_id,
                                             const std::string& version) const;
  absl::StatusOr<v1::ValidateRuleSetResponse> ValidateRuleSet(
      const std::string& text, const std::string& file_name) const;
  absl::StatusOr<v1::GradeResponse> GradeEvents(const v1::GradeRequest& request) const;
  absl::StatusOr<v1::EvaluateTrialResponse> EvaluateTrial(
      const v1::EvaluateTrialRequest& request) const;

  v1::TrialRules::Stub* stub() const { return stub_.get(); }
  absl::Duration deadline() const { return deadline_; }
  // A context carrying this client's deadline.
  std::unique_ptr<grpc::ClientContext> NewContext() const;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TrialRules::Stub> stub_;
  absl::Duration deadline_;
};

// The request's facts, from the CLI's facts-file form.
void AddFacts(const std::vector<FactInput>& facts, v1::EvaluateRequest* request);
// Observations for GradeEvents: strings are words of TEXT observations.
void AddObservations(const std::vector<FactInput>& observations, v1::ObservationSet* set);
void AddObservations(const std::vector<FactInput>& observations,
                     google::protobuf::RepeatedPtrField<v1::FactValue>* out);

}  // namespace trialrules

#endif  // TRIALRULES_CLIENT_CLIENT_H_
