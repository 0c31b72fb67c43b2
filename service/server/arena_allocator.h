// Request and response of a unary call on one protobuf arena, whose first
// block lives inside the holder: a call's ~100 small messages and strings
// cost one allocation instead of one each.
#ifndef TRIALRULES_SERVICE_SERVER_ARENA_ALLOCATOR_H_
#define TRIALRULES_SERVICE_SERVER_ARENA_ALLOCATOR_H_

#include <google/protobuf/arena.h>
#include <grpcpp/support/message_allocator.h>

namespace trialrules {

template <typename Request, typename Response>
class ArenaMessageAllocator : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override {
    return new Holder();
  }

 private:
  class Holder : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options(initial_block_)) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options(char* block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = block;
      options.initial_block_size = kInitialBlockBytes;
      return options;
    }
    static constexpr size_t kInitialBlockBytes = 16 * 1024;
    alignas(8) char initial_block_[kInitialBlockBytes];
    google::protobuf::Arena arena_;  // after the block it uses
  };
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_SERVER_ARENA_ALLOCATOR_H_
