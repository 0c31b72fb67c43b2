// Counters for the request path. prometheus-cpp's Counter is a
// compare-and-swap loop on one shared double: with every call bumping a
// rule set's twenty-odd outcome counters from several threads, those cache
// lines bounce between cores and cost more than the 5 % of throughput
// metrics may take. Here each thread adds to its own shard (its own cache
// lines) with a relaxed fetch_add, and a scrape sums the shards.
#ifndef TRIALRULES_SERVICE_METRICS_SHARDED_COUNTERS_H_
#define TRIALRULES_SERVICE_METRICS_SHARDED_COUNTERS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace trialrules {

class ShardedCounters {
 public:
  explicit ShardedCounters(size_t size);

  void Add(size_t index, uint64_t amount = 1) {
    shards_[ShardOfThisThread()].lines[index / 8].values[index % 8].fetch_add(
        amount, std::memory_order_relaxed);
  }
  // A moment's sum: exact once writers are quiet, never torn per shard.
  uint64_t Sum(size_t index) const;
  size_t size() const { return size_; }

 private:
  static constexpr size_t kShards = 8;
  // One cache line of counters; a shard is whole lines, so no two shards
  // share one.
  struct alignas(64) Line {
    std::atomic<uint64_t> values[8];
  };
  struct Shard {
    std::unique_ptr<Line[]> lines;
  };
  static size_t ShardOfThisThread();

  const size_t size_;
  Shard shards_[kShards];
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_METRICS_SHARDED_COUNTERS_H_
