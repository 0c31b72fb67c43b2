#include "service/metrics/sharded_counters.h"

namespace trialrules {

ShardedCounters::ShardedCounters(size_t size) : size_(size) {
  for (Shard& shard : shards_) shard.lines.reset(new Line[(size + 7) / 8]());
}

uint64_t ShardedCounters::Sum(size_t index) const {
  uint64_t total = 0;
  for (const Shard& shard : shards_) {
    total += shard.lines[index / 8].values[index % 8].load(std::memory_order_relaxed);
  }
  return total;
}

size_t ShardedCounters::ShardOfThisThread() {
  static std::atomic<size_t> next{0};
  thread_local const size_t shard = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

}  // namespace trialrules
