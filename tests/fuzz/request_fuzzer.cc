// Fuzz target: raw request bytes -> a real TrialRulesServer over a real
// channel.
//
// Input: one byte choosing the method, then the request message's bytes,
// sent as they are through grpc::GenericStub (so malformed protobuf reaches
// the server too). For the streaming methods (ScreenPatients,
// CompareVersions) the bytes are split at kMessageSeparator into up to
// kMaxMessages messages. The server (started once, plaintext on
// 127.0.0.1:0, no metrics, audit log in a temporary file, the repository's
// rules/) must never crash or hang, and must answer OK or a status other
// than INTERNAL/UNKNOWN whenever the messages parse as the method's request
// type (gRPC itself answers INTERNAL to bytes that do not parse); an OK
// answer must parse as the method's response type (every string UTF-8).
#include <unistd.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/unknown_field_set.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service/server/server.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_sanitizer_options.h"
#include "trialrules/v1/service.pb.h"

#ifndef TRIALRULES_SOURCE_DIR
#error "TRIALRULES_SOURCE_DIR must be defined (the repository, for rules/)"
#endif

namespace trialrules {
namespace {

namespace pb = ::trialrules::v1;
using google::protobuf::Message;

constexpr char kMessageSeparator[] = "\xff\xff\xff\xff";
constexpr size_t kMaxMessages = 8;
constexpr int kDeadlineSeconds = 20;
// The audit log is emptied every this many calls, to bound its size.
constexpr int kAuditTruncateEvery = 5000;

struct Method {
  const char* name;
  bool streaming;
  std::unique_ptr<Message> (*new_request)();
  std::unique_ptr<Message> (*new_response)();
};
template <typename T>
std::unique_ptr<Message> New() {
  return std::make_unique<T>();
}
const Method kMethods[] = {
    {"CheckEligibility", false, New<pb::EvaluateRequest>, New<pb::EvaluateResponse>},
    {"CheckWithdrawal", false, New<pb::EvaluateRequest>, New<pb::EvaluateResponse>},
    {"EvaluateEscalation", false, New<pb::EvaluateRequest>, New<pb::EvaluateResponse>},
    {"EvaluateStopping", false, New<pb::EvaluateRequest>, New<pb::EvaluateResponse>},
    {"ListRuleSets", false, New<pb::ListRuleSetsRequest>, New<pb::ListRuleSetsResponse>},
    {"GetRuleSet", false, New<pb::GetRuleSetRequest>, New<pb::RuleSetInfo>},
    {"ValidateRuleSet", false, New<pb::ValidateRuleSetRequest>,
     New<pb::ValidateRuleSetResponse>},
    {"ScreenPatients", true, New<pb::ScreenRequest>, New<pb::ScreenResponse>},
    {"CompareVersions", true, New<pb::CompareRequest>, New<pb::CompareResponse>},
    {"GradeEvents", false, New<pb::GradeRequest>, New<pb::GradeResponse>},
    {"EvaluateTrial", false, New<pb::EvaluateTrialRequest>, New<pb::EvaluateTrialResponse>},
    {"GetDecisionProof", false, New<pb::GetDecisionProofRequest>,
     New<pb::GetDecisionProofResponse>},
};
constexpr size_t kMethodCount = sizeof kMethods / sizeof kMethods[0];

// The server and a channel to it, started once for every input and never
// destroyed (gRPC's own threads outlive any static destructor order).
struct Harness {
  std::string audit_path;
  std::unique_ptr<TrialRulesServer> server;
  std::unique_ptr<grpc::GenericStub> stub;
  int calls = 0;
};

Harness* StartHarness() {
  auto* harness = new Harness;
  // protobuf logs every string field that is not UTF-8, on both sides.
  google::protobuf::SetLogHandler(nullptr);
  char audit_template[] = "/tmp/trialrules-request-fuzzer-audit-XXXXXX";
  const int fd = mkstemp(audit_template);
  FUZZ_CHECK(fd >= 0, "cannot create the audit log");
  close(fd);
  harness->audit_path = audit_template;
  static std::string* audit_path = new std::string(harness->audit_path);
  std::atexit([] { unlink(audit_path->c_str()); });

  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.plaintext = true;
  options.metrics_address = "";
  options.audit_log_path = harness->audit_path;
  const char* rules_dir = std::getenv("TRIALRULES_FUZZ_RULES_DIR");
  options.rules_dir = rules_dir != nullptr ? rules_dir : TRIALRULES_SOURCE_DIR "/rules";
  absl::StatusOr<std::unique_ptr<TrialRulesServer>> server =
      TrialRulesServer::Start(options);
  FUZZ_CHECK(server.ok(), std::string(server.status().message()));
  harness->server = *std::move(server);
  const int in_force = harness->server->Reload();
  FUZZ_CHECK(in_force > 0, "no rule set loaded from " + options.rules_dir);

  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(-1);
  arguments.SetMaxSendMessageSize(-1);
  arguments.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);  // loopback: never a proxy
  harness->stub = std::make_unique<grpc::GenericStub>(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", harness->server->port()),
      grpc::InsecureChannelCredentials(), arguments));
  return harness;
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

// A streaming call that writes every message, half-closes and reads every
// response (for a client-streaming method, the one response).
class StreamCall : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit StreamCall(std::vector<std::string> messages) : messages_(std::move(messages)) {}

  void Start(grpc::GenericStub* stub, const std::string& method) {
    context_.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(kDeadlineSeconds));
    stub->PrepareBidiStreamingCall(&context_, method, grpc::StubOptions(), this);
    StartRead(&response_);
    WriteNext();
    StartCall();
  }

  grpc::Status Await(std::vector<std::string>* responses) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return done_; });
    *responses = std::move(responses_);
    return status_;
  }

  void OnWriteDone(bool ok) override {
    if (ok) WriteNext();  // else the call is over: OnDone follows
  }
  void OnWritesDoneDone(bool ok) override {}
  void OnReadDone(bool ok) override {
    if (!ok) return;
    responses_.push_back(FromBuffer(response_));
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(mutex_);
    status_ = status;
    done_ = true;
    done_cv_.notify_all();
  }

 private:
  void WriteNext() {
    if (next_ < messages_.size()) {
      request_ = ToBuffer(messages_[next_++]);
      StartWrite(&request_);
    } else {
      StartWritesDone();
    }
  }

  grpc::ClientContext context_;
  std::vector<std::string> messages_;
  size_t next_ = 0;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::vector<std::string> responses_;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  grpc::Status status_;
};

grpc::Status CallUnary(grpc::GenericStub* stub, const std::string& method,
                       const std::string& bytes, std::vector<std::string>* responses) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(kDeadlineSeconds));
  const grpc::ByteBuffer request = ToBuffer(bytes);
  grpc::ByteBuffer response;
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  grpc::Status status;
  stub->UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                  [&](grpc::Status s) {
                    std::lock_guard<std::mutex> lock(mutex);
                    status = std::move(s);
                    done = true;
                    done_cv.notify_all();
                  });
  std::unique_lock<std::mutex> lock(mutex);
  done_cv.wait(lock, [&] { return done; });
  if (status.ok()) responses->push_back(FromBuffer(response));
  return status;
}

void Fuzz(const uint8_t* data, size_t size) {
  static Harness* harness = StartHarness();
  if (size == 0) return;
  const Method& method = kMethods[data[0] % kMethodCount];
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string> messages;
  if (method.streaming) {
    for (absl::string_view part : absl::StrSplit(body, kMessageSeparator)) {
      if (messages.size() == kMaxMessages) break;
      messages.emplace_back(part);
    }
  } else {
    messages.push_back(body);
  }
  bool all_parse = true;
  for (const std::string& message : messages) {
    all_parse &= method.new_request()->ParseFromString(message);
  }

  const std::string path = absl::StrCat("/trialrules.v1.TrialRules/", method.name);
  std::vector<std::string> responses;
  grpc::Status status;
  if (method.streaming) {
    auto call = std::make_unique<StreamCall>(messages);
    call->Start(harness->stub.get(), path);
    status = call->Await(&responses);
  } else {
    status = CallUnary(harness->stub.get(), path, messages[0], &responses);
  }

  const std::string what = absl::StrCat(method.name, " answered ", status.error_code(), " \"",
                                        status.error_message(), "\"");
  FUZZ_CHECK(status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED,
             what + ": the server did not answer in time");
  FUZZ_CHECK(status.error_code() != grpc::StatusCode::UNAVAILABLE ||
                 status.error_message().find("audit") == std::string::npos,
             what + ": the audit log failed");
  if (all_parse) {
    FUZZ_CHECK(status.error_code() != grpc::StatusCode::INTERNAL &&
                   status.error_code() != grpc::StatusCode::UNKNOWN,
               what + " to a request that parses");
  }
  if (status.ok()) {
    for (const std::string& response : responses) {
      // Fails too when a string field is not UTF-8: clients cannot parse it.
      FUZZ_CHECK(method.new_response()->ParseFromString(response),
                 absl::StrCat(method.name, ": an OK answer does not parse"));
    }
  }
  if (++harness->calls % kAuditTruncateEvery == 0) {
    FUZZ_CHECK(truncate(harness->audit_path.c_str(), 0) == 0, "cannot empty the audit log");
  }
}

}  // namespace
}  // namespace trialrules

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  trialrules::Fuzz(data, size);
  return 0;
}
