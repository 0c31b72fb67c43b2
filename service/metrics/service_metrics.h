// The service's Prometheus metrics. An observer: the server reports calls,
// decisions, catalogs and reloads to it; it changes nothing and knows
// nothing of gRPC beyond method names and status-code numbers.
//
// Label sets are bounded by what is loaded (methods, protocols, versions,
// rules, files in the rules directory), never by patients or requests, and
// every label value taken from a rule file or a file name is made safe
// (SafeLabelValue). Counters on the request path are sharded per thread
// (sharded_counters.h) and summed at scrape time.
#ifndef TRIALRULES_SERVICE_METRICS_SERVICE_METRICS_H_
#define TRIALRULES_SERVICE_METRICS_SERVICE_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "service/catalog/catalog.h"
#include "service/engine/decision_table.h"
#include "service/engine/rule_set.h"
#include "trialrules/v1/trial.pb.h"
#include "service/metrics/sharded_counters.h"

namespace trialrules {

class ServiceMetrics {
 public:
  // Latency buckets, in seconds: 50 µs to 1 s.
  static const std::vector<double>& LatencyBuckets();

  // What the audit log tells, read at scrape time.
  struct AuditReadings {
    std::function<uint64_t()> failures;
    std::function<uint64_t()> torn_tails;
    std::function<uint64_t()> tree_size;          // records written
    std::function<uint64_t()> checkpointed_size;  // tree size of the last checkpoint
  };
  // `full_methods` ("/package.Service/Method") are the methods whose calls
  // are recorded.
  ServiceMetrics(const std::vector<std::string>& full_methods, AuditReadings audit);
  ~ServiceMetrics();

  // Everything to expose: the registry, request-path counters, process
  // metrics, audit failures.
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables() const;

  // One method's calls: count by status code, latency, in flight.
  class MethodCalls {
   public:
    using Clock = std::chrono::steady_clock;
    // Returns the call's start, to hand back to Finished.
    Clock::time_point Started();
    void Finished(Clock::time_point started, int grpc_code);

   private:
    friend class ServiceMetrics;
    explicit MethodCalls(std::string full_method);
    const std::string full_method_;
    ShardedCounters counters_;  // see the layout in service_metrics.cc
  };
  // The series of a method given at construction; null for any other.
  MethodCalls* Calls(absl::string_view full_method) const;

  // Decisions and each rule's outcome, for the screen-failure funnel.
  void RecordDecisions(const std::shared_ptr<const RuleSet>& rule_set,
                       absl::Span<const Evaluation* const> evaluations);
  // Grades given by GradeEvents (low volume: one family, no sharding).
  void RecordGrades(const DecisionTableSet& tables, const DecisionTable& table,
                    absl::Span<const TableResult> results);
  // Trial evaluations (EvaluateTrial), by protocol and the escalation and
  // stopping decisions.
  void RecordTrial(const RuleSet& rule_set, const v1::TrialEvaluation& evaluation);
  // After each publish: rule sets in force (info series), files refused.
  void RecordCatalog(const Catalog& catalog);
  // After each read of the rules directory.
  void RecordReload(bool files_rejected, absl::Time when);
  // When the gRPC port's TLS certificate expires (when TLS is on).
  void RecordCertificateExpiry(absl::Time not_after);

 private:
  struct RuleSetSeries;
  class RequestPathCollector;
  RuleSetSeries* SeriesFor(const std::shared_ptr<const RuleSet>& rule_set);

  const uint64_t id_;  // tells this instance's entries in thread caches apart
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<prometheus::Collectable>> scrape_time_;
  std::map<std::string, std::unique_ptr<MethodCalls>, std::less<>> methods_;

  prometheus::Family<prometheus::Gauge>& rule_set_info_;
  prometheus::Gauge& rule_sets_loaded_;
  prometheus::Family<prometheus::Gauge>& files_rejected_;
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Gauge& last_successful_reload_;
  prometheus::Family<prometheus::Gauge>& certificate_expiry_;
  prometheus::Family<prometheus::Counter>& grades_;
  prometheus::Family<prometheus::Counter>& trials_;

  mutable std::mutex mutex_;
  // Every rule set ever seen, by protocol, version and sha256; never
  // removed, since counters must not go back.
  std::map<std::string, std::unique_ptr<RuleSetSeries>> series_;  // guarded
  std::vector<prometheus::Gauge*> info_series_;      // guarded by mutex_
  std::vector<prometheus::Gauge*> rejected_series_;  // guarded by mutex_
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_METRICS_SERVICE_METRICS_H_
