// The baseline for the service benchmark: CheckEligibility on the same gRPC
// stack (callback API, same builder settings), answering without looking at
// the request: an empty response, or with --same-size-answer a fixed answer
// shaped like trialrules' (20 rule outcomes, the rule set, a decision id), so
// that carrying the answer is told apart from deciding it. trialrules bench
// drives both with the same load; scripts/bench-service.sh compares them.
#include <grpcpp/grpcpp.h>

#include <fstream>

#include "absl/synchronization/mutex.h"
#include <iostream>
#include <string>

#include "service/util/malloc_tuning.h"
#include "trialrules/v1/service.grpc.pb.h"

namespace {

// An answer of NCT04094766 v1.0's size: 20 eligibility rules.
trialrules::v1::EvaluateResponse SameSizeAnswer() {
  trialrules::v1::EvaluateResponse answer;
  answer.set_decision(trialrules::v1::DECISION_ELIGIBLE);
  answer.mutable_rule_set()->set_protocol_id("NCT04094766");
  answer.mutable_rule_set()->set_version("1.0");
  answer.mutable_rule_set()->set_sha256(std::string(64, 'f'));
  for (int r = 1; r <= 20; ++r) {
    const bool inclusion = r <= 10;
    trialrules::v1::RuleOutcome* rule = answer.add_rules();
    rule->set_id((inclusion ? "I" : "E") + std::to_string(inclusion ? r : r - 10));
    rule->set_kind(inclusion ? "inclusion" : "exclusion");
    rule->set_outcome(inclusion ? trialrules::v1::OUTCOME_TRUE : trialrules::v1::OUTCOME_FALSE);
  }
  answer.set_decision_id(std::string(32, '0'));
  answer.set_subject_ref("BENCH-000000");
  answer.set_site_id("BENCH");
  answer.set_as_of_date("2020-01-15");
  return answer;
}

class EmptyService final : public trialrules::v1::TrialRules::CallbackService {
 public:
  explicit EmptyService(bool same_size_answer) : same_size_answer_(same_size_answer) {}

  grpc::ServerUnaryReactor* CheckEligibility(grpc::CallbackServerContext* context,
                                             const trialrules::v1::EvaluateRequest*,
                                             trialrules::v1::EvaluateResponse* response) override {
    if (same_size_answer_) *response = answer_;
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const bool same_size_answer_;
  const trialrules::v1::EvaluateResponse answer_ = SameSizeAnswer();
};

}  // namespace

int main(int argc, char** argv) {
  // The same process settings as trialrules-server: only the handler differs.
  trialrules::KeepFreedMemory();
  // Debian's Abseil is built without NDEBUG, which leaves absl::Mutex's
  // deadlock detection (a graph update on every lock gRPC takes) switched on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string listen = argc > 1 ? argv[1] : "127.0.0.1:0";
  EmptyService service(argc > 2 && std::string(argv[2]) == "--same-size-answer");
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "cannot listen on " << listen << "\n";
    return 1;
  }
  std::cout << port << std::endl;
  server->Wait();
  return 0;
}
