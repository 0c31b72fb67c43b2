// The baseline for the service benchmark: CheckEligibility on the same gRPC
// stack (callback API, same builder settings), answering an empty response
// without looking at the request. trialrules bench drives both with the same
// load; scripts/bench-service.sh compares them.
#include <grpcpp/grpcpp.h>

#include <fstream>

#include "absl/synchronization/mutex.h"
#include <iostream>
#include <string>

#include "service/util/malloc_tuning.h"
#include "trialrules/v1/service.grpc.pb.h"

namespace {

class EmptyService final : public trialrules::v1::TrialRules::CallbackService {
  grpc::ServerUnaryReactor* CheckEligibility(grpc::CallbackServerContext* context,
                                             const trialrules::v1::EvaluateRequest*,
                                             trialrules::v1::EvaluateResponse*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  // The same process settings as trialrules-server: only the handler differs.
  trialrules::KeepFreedMemory();
  // Debian's Abseil is built without NDEBUG, which leaves absl::Mutex's
  // deadlock detection (a graph update on every lock gRPC takes) switched on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string listen = argc > 1 ? argv[1] : "127.0.0.1:0";
  EmptyService service;
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
