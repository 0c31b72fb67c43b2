#include "service/util/number_text.h"
#include "service/metrics/service_metrics.h"

#include <algorithm>
#include <atomic>
#include <set>

#include "absl/strings/str_cat.h"
#include "service/metrics/label_value.h"
#include "service/metrics/process_collector.h"

namespace trialrules {
namespace {

constexpr int kKinds = 4;
constexpr int kDecisions = static_cast<int>(Decision::kNotTriggered) + 1;
constexpr int kOutcomes = 3;
constexpr int kCodes = 17;

constexpr const char* kCodeNames[kCodes] = {
    "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",   "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",      "UNAVAILABLE",      "DATA_LOSS",
    "UNAUTHENTICATED"};

// MethodCalls' counters: calls by code, started, then one per latency
// bucket (not cumulative), then the latency sum in nanoseconds.
constexpr size_t kStarted = kCodes;
constexpr size_t kFirstBucket = kStarted + 1;
size_t LatencySumIndex() { return kFirstBucket + ServiceMetrics::LatencyBuckets().size() + 1; }

// A counter whose value is read at scrape time from its owner.
// A counter or gauge whose value is read from its owner at scrape time.
class ValueFunction final : public prometheus::Collectable {
 public:
  ValueFunction(std::string name, std::string help, prometheus::MetricType type,
                std::function<uint64_t()> read)
      : name_(std::move(name)), help_(std::move(help)), type_(type), read_(std::move(read)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::ClientMetric metric;
    const double value = static_cast<double>(read_());
    if (type_ == prometheus::MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    return {{name_, help_, type_, {metric}}};
  }

 private:
  std::string name_, help_;
  prometheus::MetricType type_;
  std::function<uint64_t()> read_;
};

// "/trialrules.v1.TrialRules/CheckEligibility" → service and method labels.
std::vector<prometheus::ClientMetric::Label> MethodLabels(absl::string_view full_method) {
  absl::string_view name = full_method;
  if (!name.empty() && name.front() == '/') name.remove_prefix(1);
  const size_t slash = std::min(name.find('/'), name.size());
  return {{"grpc_method", SafeLabelValue(name.substr(std::min(slash + 1, name.size())))},
          {"grpc_service", SafeLabelValue(name.substr(0, slash))}};
}

prometheus::ClientMetric CounterSample(std::vector<prometheus::ClientMetric::Label> labels,
                                       double value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.counter.value = value;
  return metric;
}

std::atomic<uint64_t> next_instance_id{1};

}  // namespace

struct ServiceMetrics::RuleSetSeries {
  RuleSetSeries(std::string protocol, std::string version, std::vector<RuleSpec> specs)
      : protocol(std::move(protocol)), version(std::move(version)),
        counters(kKinds * kDecisions + specs.size() * kOutcomes) {
    for (const RuleSpec& rule : specs) {
      rules.push_back({SafeLabelValue(rule.id), std::string(RuleKindName(rule.kind))});
    }
  }
  static size_t DecisionIndex(EvaluationKind kind, Decision decision) {
    return static_cast<size_t>(kind) * kDecisions + static_cast<size_t>(decision);
  }
  static size_t OutcomeIndex(int rule, Outcome outcome) {
    return kKinds * kDecisions + static_cast<size_t>(rule) * kOutcomes +
           static_cast<size_t>(outcome);
  }

  const std::string protocol, version;  // label-safe
  struct Rule {
    std::string id, kind;
  };
  std::vector<Rule> rules;
  ShardedCounters counters;
};

// Builds the request-path families from the sharded counters at scrape time.
class ServiceMetrics::RequestPathCollector final : public prometheus::Collectable {
 public:
  explicit RequestPathCollector(const ServiceMetrics* metrics) : metrics_(metrics) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    prometheus::MetricFamily handled{
        "trialrules_grpc_server_handled_total",
        "gRPC calls completed, by service, method and status code.", MetricType::Counter, {}};
    prometheus::MetricFamily latency{"trialrules_grpc_server_handling_seconds",
                                     "Time from a call's start to its status (the audit "
                                     "record written), in seconds.",
                                     MetricType::Histogram, {}};
    prometheus::MetricFamily in_flight{"trialrules_grpc_server_calls_in_flight",
                                       "gRPC calls started and not yet completed.",
                                       MetricType::Gauge, {}};
    const std::vector<double>& bounds = LatencyBuckets();
    for (const auto& [name, calls] : metrics_->methods_) {
      const auto labels = MethodLabels(name);
      const ShardedCounters& c = calls->counters_;
      // Read the bucket counts before the codes, so that a call finishing
      // meanwhile can only make `finished` larger than the histogram's
      // count, never in-flight negative.
      prometheus::ClientMetric histogram;
      histogram.label = labels;
      uint64_t cumulative = 0;
      for (size_t b = 0; b <= bounds.size(); ++b) {
        cumulative += c.Sum(kFirstBucket + b);
        histogram.histogram.bucket.push_back(
            {cumulative, b < bounds.size() ? bounds[b]
                                           : std::numeric_limits<double>::infinity()});
      }
      histogram.histogram.sample_count = cumulative;
      histogram.histogram.sample_sum = static_cast<double>(c.Sum(LatencySumIndex())) / 1e9;
      latency.metric.push_back(std::move(histogram));
      uint64_t finished = 0;
      for (int code = 0; code < kCodes; ++code) {
        const uint64_t count = c.Sum(code);
        finished += count;
        if (count == 0) continue;
        auto code_labels = labels;
        code_labels.insert(code_labels.begin(), {"grpc_code", kCodeNames[code]});
        handled.metric.push_back(CounterSample(std::move(code_labels), count));
      }
      prometheus::ClientMetric flying;
      flying.label = labels;
      const uint64_t started = c.Sum(kStarted);
      flying.gauge.value = started > finished ? static_cast<double>(started - finished) : 0;
      in_flight.metric.push_back(std::move(flying));
    }

    prometheus::MetricFamily decisions{
        "trialrules_decisions_total",
        "Decisions evaluated, by protocol, version, kind and decision.", MetricType::Counter, {}};
    prometheus::MetricFamily outcomes{
        "trialrules_rule_outcomes_total",
        "Rule outcomes (TRUE, FALSE, UNKNOWN) in evaluated decisions, by protocol, version, "
        "rule and rule kind: the screen-failure funnel.",
        MetricType::Counter, {}};
    std::lock_guard<std::mutex> lock(metrics_->mutex_);
    for (const auto& [key, series] : metrics_->series_) {
      for (int k = 0; k < kKinds; ++k) {
        for (int d = 0; d < kDecisions; ++d) {
          const auto kind = static_cast<EvaluationKind>(k);
          const auto decision = static_cast<Decision>(d);
          const uint64_t count = series->counters.Sum(RuleSetSeries::DecisionIndex(kind, decision));
          if (count == 0) continue;
          decisions.metric.push_back(CounterSample(
              {{"decision", std::string(DecisionName(decision))},
               {"kind", std::string(EvaluationKindName(kind))},
               {"protocol", series->protocol},
               {"version", series->version}},
              count));
        }
      }
      for (size_t r = 0; r < series->rules.size(); ++r) {
        for (int o = 0; o < kOutcomes; ++o) {
          const auto outcome = static_cast<Outcome>(o);
          outcomes.metric.push_back(CounterSample(
              {{"outcome", std::string(OutcomeName(outcome))},
               {"protocol", series->protocol},
               {"rule", series->rules[r].id},
               {"rule_kind", series->rules[r].kind},
               {"version", series->version}},
              series->counters.Sum(RuleSetSeries::OutcomeIndex(r, outcome))));
        }
      }
    }
    return {std::move(handled), std::move(latency), std::move(in_flight),
            std::move(decisions), std::move(outcomes)};
  }

 private:
  const ServiceMetrics* metrics_;
};

const std::vector<double>& ServiceMetrics::LatencyBuckets() {
  static const std::vector<double> buckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                              0.0025,  0.005,  0.01,    0.025,  0.05,
                                              0.1,     0.25,   0.5,     1.0};
  return buckets;
}

ServiceMetrics::MethodCalls::MethodCalls(std::string full_method)
    : full_method_(std::move(full_method)), counters_(LatencySumIndex() + 1) {}

ServiceMetrics::MethodCalls::Clock::time_point ServiceMetrics::MethodCalls::Started() {
  counters_.Add(kStarted);
  return Clock::now();
}

void ServiceMetrics::MethodCalls::Finished(Clock::time_point started, int grpc_code) {
  const auto nanoseconds =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started).count();
  const std::vector<double>& bounds = LatencyBuckets();
  const double seconds = static_cast<double>(nanoseconds) / 1e9;
  const size_t bucket = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
  counters_.Add(kFirstBucket + bucket);
  counters_.Add(LatencySumIndex(), static_cast<uint64_t>(std::max<int64_t>(nanoseconds, 0)));
  counters_.Add(grpc_code >= 0 && grpc_code < kCodes ? grpc_code : 2);  // else UNKNOWN
}

ServiceMetrics::ServiceMetrics(const std::vector<std::string>& full_methods,
                               AuditReadings audit)
    : id_(next_instance_id.fetch_add(1)),
      registry_(std::make_shared<prometheus::Registry>()),
      rule_set_info_(prometheus::BuildGauge()
                         .Name("trialrules_rule_set_info")
                         .Help("Rule sets in force: 1 per protocol, version and sha256 of "
                               "its file.")
                         .Register(*registry_)),
      rule_sets_loaded_(prometheus::BuildGauge()
                            .Name("trialrules_rule_sets_loaded")
                            .Help("Number of rule sets in force.")
                            .Register(*registry_)
                            .Add({})),
      files_rejected_(prometheus::BuildGauge()
                          .Name("trialrules_rule_file_rejected")
                          .Help("1 for each file of the rules directory that was refused at "
                                "the last read (its previous version, if any, keeps "
                                "serving).")
                          .Register(*registry_)),
      reloads_(prometheus::BuildCounter()
                   .Name("trialrules_reloads_total")
                   .Help("Reads of the rules directory, by result: success, or "
                         "rejected (some file was refused, or the rules archive could "
                         "not be written).")
                   .Register(*registry_)),
      last_successful_reload_(prometheus::BuildGauge()
                                  .Name("trialrules_last_successful_reload_timestamp_seconds")
                                  .Help("When the rules directory was last read with no file "
                                        "refused, in seconds since the Unix epoch.")
                                  .Register(*registry_)
                                  .Add({})),
      certificate_expiry_(prometheus::BuildGauge()
                              .Name("trialrules_tls_certificate_expiry_timestamp_seconds")
                              .Help("When the gRPC port's TLS certificate (as last read from "
                                    "its file) stops being valid, in seconds since the Unix "
                                    "epoch; no series without TLS.")
                              .Register(*registry_)),
      grades_(prometheus::BuildCounter()
                  .Name("trialrules_grades_total")
                  .Help("Observation sets graded by GradeEvents, by decision table, "
                        "version, term and grade (UNKNOWN when observations left it open).")
                  .Register(*registry_)),
      trials_(prometheus::BuildCounter()
                  .Name("trialrules_trial_evaluations_total")
                  .Help("Trial evaluations by EvaluateTrial, by protocol, version, escalation "
                        "decision and stopping decision (INDETERMINATE when events pending "
                        "adjudication could change it).")
                  .Register(*registry_)) {
  for (const std::string& method : full_methods) {
    methods_[method] = std::unique_ptr<MethodCalls>(new MethodCalls(method));
  }
  reloads_.Add({{"result", "success"}});
  reloads_.Add({{"result", "rejected"}});
  scrape_time_.push_back(std::make_shared<RequestPathCollector>(this));
  scrape_time_.push_back(std::make_shared<ProcessCollector>());
  scrape_time_.push_back(std::make_shared<ValueFunction>(
      "trialrules_audit_write_failures_total",
      "Writes to the decision audit log that failed; the calls waiting on them were "
      "answered UNAVAILABLE.",
      prometheus::MetricType::Counter, std::move(audit.failures)));
  scrape_time_.push_back(std::make_shared<ValueFunction>(
      "trialrules_audit_torn_tails_total",
      "Audit logs found at start with their last line cut short (a power loss, a full "
      "disk): the fragment is kept and records go on from the next line.",
      prometheus::MetricType::Counter, std::move(audit.torn_tails)));
  scrape_time_.push_back(std::make_shared<ValueFunction>(
      "trialrules_audit_tree_size",
      "Records in the decision audit log, across its files (with a signing key, the "
      "size of its Merkle tree).",
      prometheus::MetricType::Gauge, std::move(audit.tree_size)));
  scrape_time_.push_back(std::make_shared<ValueFunction>(
      "trialrules_audit_checkpoint_tree_size",
      "Tree size of the audit log's last signed checkpoint; records beyond it are not yet "
      "provable (0 without a signing key).",
      prometheus::MetricType::Gauge, std::move(audit.checkpointed_size)));
}

ServiceMetrics::~ServiceMetrics() = default;

std::vector<std::shared_ptr<prometheus::Collectable>> ServiceMetrics::collectables() const {
  std::vector<std::shared_ptr<prometheus::Collectable>> all = scrape_time_;
  all.push_back(registry_);
  return all;
}

ServiceMetrics::MethodCalls* ServiceMetrics::Calls(absl::string_view full_method) const {
  auto it = methods_.find(full_method);
  return it == methods_.end() ? nullptr : it->second.get();
}

ServiceMetrics::RuleSetSeries* ServiceMetrics::SeriesFor(
    const std::shared_ptr<const RuleSet>& rule_set) {
  // One entry per thread: consecutive calls mostly hit the same version.
  // The entry holds the rule set, so its address cannot be reused by
  // another while it is the key.
  struct CacheEntry {
    uint64_t owner = 0;
    std::shared_ptr<const RuleSet> rule_set;
    RuleSetSeries* series = nullptr;
  };
  thread_local CacheEntry cache;
  if (cache.owner == id_ && cache.rule_set == rule_set) return cache.series;

  const std::string key =
      absl::StrCat(rule_set->protocol_id(), "\n", rule_set->version(), "\n", rule_set->sha256());
  std::lock_guard<std::mutex> lock(mutex_);
  std::unique_ptr<RuleSetSeries>& series = series_[key];
  if (series == nullptr) {
    series = std::make_unique<RuleSetSeries>(SafeLabelValue(rule_set->protocol_id()),
                                             SafeLabelValue(rule_set->version()),
                                             rule_set->rules());
  }
  cache = {id_, rule_set, series.get()};
  return series.get();
}

void ServiceMetrics::RecordDecisions(const std::shared_ptr<const RuleSet>& rule_set,
                                     absl::Span<const Evaluation* const> evaluations) {
  if (evaluations.empty()) return;
  RuleSetSeries* series = SeriesFor(rule_set);
  for (const Evaluation* evaluation : evaluations) {
    series->counters.Add(RuleSetSeries::DecisionIndex(evaluation->kind, evaluation->decision));
    for (const RuleResult& rule : evaluation->rules) {
      series->counters.Add(RuleSetSeries::OutcomeIndex(rule.rule, rule.outcome));
    }
  }
}

void ServiceMetrics::RecordGrades(const DecisionTableSet& tables, const DecisionTable& table,
                                  absl::Span<const TableResult> results) {
  for (const TableResult& result : results) {
    grades_
        .Add({{"table_id", SafeLabelValue(tables.table_id())},
              {"version", SafeLabelValue(tables.version())},
              {"term", SafeLabelValue(table.term)},
              {"grade", result.output ? ShortestNumber(*result.output) : "UNKNOWN"}})
        .Increment();
  }
}

void ServiceMetrics::RecordTrial(const RuleSet& rule_set,
                                 const v1::TrialEvaluation& evaluation) {
  trials_
      .Add({{"protocol", SafeLabelValue(rule_set.protocol_id())},
            {"version", SafeLabelValue(rule_set.version())},
            {"escalation", SafeLabelValue(evaluation.escalation().decision())},
            {"stopping", SafeLabelValue(evaluation.stopping().decision())}})
      .Increment();
}

void ServiceMetrics::RecordCatalog(const Catalog& catalog) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (prometheus::Gauge* gauge : info_series_) rule_set_info_.Remove(gauge);
  info_series_.clear();
  for (const std::shared_ptr<const RuleSet>& rule_set : catalog.rule_sets()) {
    prometheus::Gauge& info = rule_set_info_.Add(
        {{"protocol", SafeLabelValue(rule_set->protocol_id())},
         {"version", SafeLabelValue(rule_set->version())},
         {"sha256", SafeLabelValue(rule_set->sha256())}});
    info.Set(1);
    info_series_.push_back(&info);
  }
  rule_sets_loaded_.Set(static_cast<double>(catalog.rule_sets().size()));

  for (prometheus::Gauge* gauge : rejected_series_) files_rejected_.Remove(gauge);
  rejected_series_.clear();
  std::set<std::string> files;
  for (const Problem& problem : catalog.refused()) files.insert(SafeLabelValue(problem.file, 256));
  for (const std::string& file : files) {
    prometheus::Gauge& rejected = files_rejected_.Add({{"file", file}});
    rejected.Set(1);
    rejected_series_.push_back(&rejected);
  }
}

void ServiceMetrics::RecordReload(bool files_rejected, absl::Time when) {
  reloads_.Add({{"result", files_rejected ? "rejected" : "success"}}).Increment();
  if (!files_rejected) last_successful_reload_.Set(absl::ToUnixMillis(when) / 1000.0);
}

void ServiceMetrics::RecordCertificateExpiry(absl::Time not_after) {
  certificate_expiry_.Add({}).Set(static_cast<double>(absl::ToUnixSeconds(not_after)));
}

}  // namespace trialrules
