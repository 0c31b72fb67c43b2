#include "service/server/unparseable_request.h"

#include <google/protobuf/descriptor.h>

#include "absl/strings/str_cat.h"

namespace trialrules {
namespace {

class UnparseableRequestInterceptor : public grpc::experimental::Interceptor {
 public:
  UnparseableRequestInterceptor(const std::string* request_type,
                                ServiceMetrics::MethodCalls* calls)
      : request_type_(request_type), calls_(calls) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      // The service implements every method and never answers UNIMPLEMENTED
      // itself: this is gRPC refusing bytes that did not parse.
      const grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("the request could not be parsed as a ", *request_type_,
                         " message (malformed protocol buffer bytes, or a string field "
                         "that is not UTF-8)")));
        if (calls_ != nullptr) {
          calls_->Finished(calls_->Started(), grpc::StatusCode::INVALID_ARGUMENT);
        }
      }
    }
    methods->Proceed();
  }

 private:
  const std::string* request_type_;
  ServiceMetrics::MethodCalls* calls_;
};

}  // namespace

UnparseableRequestInterceptorFactory::UnparseableRequestInterceptorFactory(
    const google::protobuf::ServiceDescriptor& service, ServiceMetrics* metrics) {
  for (int m = 0; m < service.method_count(); ++m) {
    const google::protobuf::MethodDescriptor& method = *service.method(m);
    if (method.client_streaming() || method.server_streaming()) continue;
    const std::string full_name = absl::StrCat("/", service.full_name(), "/", method.name());
    unary_methods_[full_name] = {method.input_type()->full_name(),
                                 metrics != nullptr ? metrics->Calls(full_name) : nullptr};
  }
}

grpc::experimental::Interceptor* UnparseableRequestInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  const auto method = unary_methods_.find(info->method());
  if (method == unary_methods_.end()) return nullptr;
  return new UnparseableRequestInterceptor(&method->second.request_type, method->second.calls);
}

}  // namespace trialrules
