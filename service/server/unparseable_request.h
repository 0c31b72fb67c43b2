// A unary call whose request bytes do not parse as its request message is
// finished by gRPC 1.51's callback handler before the service sees it, as
// UNIMPLEMENTED with no message. This interceptor answers it for what it is:
// INVALID_ARGUMENT, saying the request could not be parsed (never echoing
// its bytes), and counts it in the method's metrics.
#ifndef TRIALRULES_SERVICE_SERVER_UNPARSEABLE_REQUEST_H_
#define TRIALRULES_SERVICE_SERVER_UNPARSEABLE_REQUEST_H_

#include <grpcpp/support/server_interceptor.h>

#include <string>

#include "absl/container/flat_hash_map.h"
#include "service/metrics/service_metrics.h"

namespace google::protobuf {
class ServiceDescriptor;
}

namespace trialrules {

class UnparseableRequestInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // The unary methods of `service` are watched; `metrics` may be null.
  UnparseableRequestInterceptorFactory(const google::protobuf::ServiceDescriptor& service,
                                       ServiceMetrics* metrics);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  struct Method {
    std::string request_type;              // "trialrules.v1.EvaluateRequest"
    ServiceMetrics::MethodCalls* calls;  // null when metrics are off
  };
  // By full method name, "/trialrules.v1.TrialRules/CheckEligibility".
  absl::flat_hash_map<std::string, Method> unary_methods_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_SERVER_UNPARSEABLE_REQUEST_H_
