// `trialrules bench`: the load generator. N calls in flight over M channels
// (each its own connection), driven by gRPC's callback API; a synthetic
// population of varied patients; a progress line; at the end throughput,
// latency percentiles and errors by status code.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <limits>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "client/cli/args.h"
#include "client/client.h"
#include "client/population.h"
#include "service/catalog/reload.h"

namespace trialrules::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kUsage[] =
    "usage: trialrules bench --server HOST:PORT [--method CheckEligibility|ScreenPatients]\n"
    "         [--seconds S | --calls N] [--in-flight N] [--channels M] [--batch B]\n"
    "         [--rules PATH] [--protocol ID] [--version V] [--missing FRACTION]\n"
    "         [--deadline-ms N] [--compare-server HOST:PORT [--rounds R]]\n"
    "  The synthetic population is drawn from the protocol's facts in the local\n"
    "  rule files (--rules, default rules/). For ScreenPatients a call is one\n"
    "  batch of B patients (default 1000) and throughput is in patients/s.\n"
    "  With --compare-server the same load alternates between the two servers\n"
    "  (A B B A ..., R rounds of S seconds each per server, default 4) and the\n"
    "  ratio of their throughputs is reported: one run, same conditions.\n"
    "  TLS options as for every --server command:\n";

struct Settings {
  std::string server;
  std::string compare_server;
  int rounds = 4;
  std::string method = "CheckEligibility";
  double seconds = 10;
  int64_t calls = 0;  // 0: run for `seconds`
  int in_flight = 16;
  int channels = 2;
  int batch = 1000;
  std::string protocol = "NCT04094766";
  std::string version;
  double missing = 0.2;
  absl::Duration deadline = absl::Seconds(10);
};

// Shared by every slot; counters are atomics, latencies are per slot.
class Load {
 public:
  explicit Load(const Settings& settings)
      : settings_(settings), start_(Clock::now()),
        end_(start_ + std::chrono::microseconds(
                          static_cast<int64_t>(settings.seconds * 1e6))) {}

  // Reserves the next call, or returns false when the run is over.
  bool Next() {
    if (settings_.calls > 0) return issued_.fetch_add(1) < settings_.calls;
    return Clock::now() < end_;
  }
  void Record(const grpc::Status& status, int64_t items) {
    ++by_code_[std::min<int>(status.error_code(), 16)];
    if (status.ok()) {
      items_ += items;
    } else {
      std::lock_guard<std::mutex> lock(mutex_);
      if (first_error_.empty()) first_error_ = status.error_message();
    }
  }
  void SlotDone() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++slots_done_;
    done_.notify_all();
  }
  // Prints a progress line every second until every slot is done.
  void WaitWithProgress(int slots) {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!done_.wait_for(lock, std::chrono::seconds(1),
                           [&] { return slots_done_ == slots; })) {
      const double elapsed = Seconds();
      std::cerr << absl::StrFormat("\r%6.1f s  %10d calls  %10.0f items/s  errors %d",
                                   elapsed, Calls(), items_.load() / elapsed, Errors())
                << std::flush;
    }
    std::cerr << "\n";
  }
  double Seconds() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }
  int64_t Calls() const {
    int64_t total = 0;
    for (const auto& count : by_code_) total += count.load();
    return total;
  }
  int64_t Errors() const { return Calls() - by_code_[0].load(); }
  int64_t Items() const { return items_.load(); }
  const std::array<std::atomic<int64_t>, 17>& by_code() const { return by_code_; }
  std::string first_error() {
    std::lock_guard<std::mutex> lock(mutex_);
    return first_error_;
  }
  const Settings& settings() const { return settings_; }

 private:
  const Settings settings_;
  const Clock::time_point start_;
  const Clock::time_point end_;
  std::atomic<int64_t> issued_{0};
  std::atomic<int64_t> items_{0};
  std::array<std::atomic<int64_t>, 17> by_code_{};
  std::mutex mutex_;
  std::condition_variable done_;
  int slots_done_ = 0;
  std::string first_error_;
};

// One call in flight at a time, chained from each completion.
class UnarySlot {
 public:
  UnarySlot(Load* load, v1::TrialRules::Stub* stub,
            const std::vector<v1::EvaluateRequest>* requests, size_t offset)
      : load_(load), stub_(stub), requests_(requests), next_(offset) {}

  void Start() {
    if (!load_->Next()) {
      load_->SlotDone();
      return;
    }
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(absl::ToChronoTime(absl::Now() + load_->settings().deadline));
    response_.Clear();
    started_ = Clock::now();
    const v1::EvaluateRequest& request = (*requests_)[next_++ % requests_->size()];
    stub_->async()->CheckEligibility(context_.get(), &request, &response_,
                                     [this](grpc::Status status) {
                                       latencies_us_.push_back(
                                           std::chrono::duration<double, std::micro>(
                                               Clock::now() - started_)
                                               .count());
                                       load_->Record(status, 1);
                                       Start();
                                     });
  }
  const std::vector<double>& latencies_us() const { return latencies_us_; }

 private:
  Load* load_;
  v1::TrialRules::Stub* stub_;
  const std::vector<v1::EvaluateRequest>* requests_;
  size_t next_;
  std::unique_ptr<grpc::ClientContext> context_;
  v1::EvaluateResponse response_;
  Clock::time_point started_;
  std::vector<double> latencies_us_;
};

// One ScreenPatients stream per slot, one batch in flight on it.
void RunScreenSlot(Load* load, v1::TrialRules::Stub* stub, const v1::ScreenHeader& header,
                   const std::vector<v1::ScreenRequest>* batches, size_t offset,
                   std::vector<double>* latencies_us) {
  grpc::ClientContext context;
  auto stream = stub->ScreenPatients(&context);
  v1::ScreenResponse response;
  v1::ScreenRequest opening;
  *opening.mutable_header() = header;
  bool open = stream->Write(opening) && stream->Read(&response);
  size_t next = offset;
  while (open && load->Next()) {
    const v1::ScreenRequest& request = (*batches)[next++ % batches->size()];
    const auto started = Clock::now();
    if (!stream->Write(request) || !stream->Read(&response)) break;
    latencies_us->push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - started).count());
    load->Record(grpc::Status::OK, response.results_size());
  }
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  if (!status.ok()) load->Record(status, 0);
  load->SlotDone();
}

absl::StatusOr<Settings> ReadSettings(const Args& args) {
  Settings settings;
  settings.server = args.Get("server");
  settings.compare_server = args.Get("compare-server");
  settings.method = args.Get("method", settings.method);
  settings.protocol = args.Get("protocol", settings.protocol);
  settings.version = args.Get("version");
  bool ok = absl::SimpleAtod(args.Get("seconds", "10"), &settings.seconds) &&
            absl::SimpleAtoi(args.Get("calls", "0"), &settings.calls) &&
            absl::SimpleAtoi(args.Get("in-flight", "16"), &settings.in_flight) &&
            absl::SimpleAtoi(args.Get("channels", "2"), &settings.channels) &&
            absl::SimpleAtoi(args.Get("batch", "1000"), &settings.batch) &&
            absl::SimpleAtod(args.Get("missing", "0.2"), &settings.missing) &&
            absl::SimpleAtoi(args.Get("rounds", "4"), &settings.rounds);
  ok = ok && settings.seconds > 0 && settings.calls >= 0 && settings.in_flight > 0 &&
       settings.channels > 0 && settings.batch > 0 && settings.missing >= 0 && settings.rounds > 0 &&
       settings.missing <= 1;
  if (!ok || settings.server.empty() ||
      (settings.method != "CheckEligibility" && settings.method != "ScreenPatients")) {
    return absl::InvalidArgumentError("bad or missing option");
  }
  absl::StatusOr<absl::Duration> deadline = DeadlineFlag(args);
  if (!deadline.ok()) return deadline.status();
  settings.deadline = *deadline;
  return settings;
}

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()));
  return sorted[index];
}

}  // namespace

int RunBench(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(
      argv,
      WithServerOptions({"method", "seconds", "calls", "in-flight", "channels", "batch",
                         "rules", "protocol", "version", "missing", "compare-server",
                         "rounds"}),
      {});
  absl::StatusOr<Settings> settings =
      args.ok() ? ReadSettings(*args) : absl::StatusOr<Settings>(args.status());
  if (!settings.ok()) {
    std::cerr << settings.status().message() << "\n" << kUsage << kServerUsage;
    return kExitUsage;
  }

  // The population comes from the local rule files of the same protocol.
  const std::shared_ptr<const Catalog> catalog =
      LoadLocalCatalog(args->Get("rules", "rules"), /*report_refusals=*/false);
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set = catalog->Select(
      {settings->protocol, settings->version, *ParseIsoDate(kSyntheticAssessmentDate), ""},
      TodayUtc());
  if (!rule_set.ok()) {
    std::cerr << "error: no local rule set for the population: "
              << rule_set.status().message() << "\n";
    return kExitProblems;
  }
  constexpr int kPopulation = 4096;
  const auto population = SyntheticPopulation(**rule_set, EvaluationKind::kEligibility,
                                              kPopulation, settings->missing, 1);

  const bool screen = settings->method == "ScreenPatients";
  std::vector<v1::EvaluateRequest> requests;
  v1::ScreenHeader header;
  std::vector<v1::ScreenRequest> batches;
  if (!screen) {
    requests.resize(population.size());
    for (size_t i = 0; i < population.size(); ++i) {
      requests[i].set_protocol_id(settings->protocol);
      requests[i].set_version(settings->version);
      requests[i].set_subject_ref(absl::StrFormat("BENCH-%06d", i));
      requests[i].set_site_id("BENCH");
      AddFacts(population[i], &requests[i]);
    }
  } else {
    header.set_protocol_id(settings->protocol);
    header.set_version(settings->version);
    header.set_as_of_date(std::string(kSyntheticAssessmentDate));
    header.set_site_id("BENCH");
    std::vector<std::string> columns;
    std::vector<bool> is_date;
    for (int f : (*rule_set)->FactsFor(EvaluationKind::kEligibility)) {
      columns.push_back((*rule_set)->facts()[f].name);
      is_date.push_back((*rule_set)->facts()[f].type == ValueType::kDate);
      header.add_fact_names(columns.back());
    }
    // Compact rows (numbers and dates in column order), as a bulk loader
    // would send them.
    batches.resize((kPopulation + settings->batch - 1) / settings->batch);
    for (size_t i = 0; i < population.size(); ++i) {
      v1::ScreenPatient* patient = batches[i / settings->batch].add_patients();
      patient->set_subject_ref(absl::StrFormat("BENCH-%06d", i));
      for (size_t c = 0; c < columns.size(); ++c) {
        const std::string& column = columns[c];
        double number = std::numeric_limits<double>::quiet_NaN();
        std::string date;
        for (const FactInput& fact : population[i]) {
          if (fact.name != column) continue;
          if (const double* n = std::get_if<double>(&fact.value)) number = *n;
          if (const bool* b = std::get_if<bool>(&fact.value)) number = *b ? 1 : 0;
          if (const auto* d = std::get_if<std::string>(&fact.value)) date = *d;
        }
        if (is_date[c]) {
          patient->add_dates(date);
        } else {
          patient->add_numbers(number);
        }
      }
    }
  }

  // One target: its channels (each its own connection, kept across rounds)
  // and what its phases measured.
  struct Target {
    std::string address;
    std::vector<std::unique_ptr<v1::TrialRules::Stub>> stubs;
    double seconds = 0;
    int64_t calls = 0, items = 0, errors = 0;
    std::array<int64_t, 17> by_code{};
    std::string first_error;
    std::vector<double> latencies_us;
  };
  std::vector<Target> targets(settings->compare_server.empty() ? 1 : 2);
  targets[0].address = settings->server;
  if (targets.size() == 2) targets[1].address = settings->compare_server;
  for (Target& target : targets) {
    Args for_target = *args;
    for_target.options["server"] = target.address;
    for (int c = 0; c < settings->channels; ++c) {
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          ServerChannel(for_target, /*own_connection=*/true);
      if (!channel.ok()) {
        std::cerr << "error: " << channel.status().message() << "\n";
        return kExitUsage;
      }
      target.stubs.push_back(v1::TrialRules::NewStub(*channel));
    }
  }

  auto run_phase = [&](Target& target, double seconds) {
    Settings phase = *settings;
    phase.seconds = seconds;
    Load load(phase);
    std::cerr << absl::StrFormat("%s on %s: %d in flight over %d channels%s\n",
                                 settings->method, target.address, settings->in_flight,
                                 settings->channels,
                                 screen ? absl::StrFormat(", %d patients per message",
                                                          settings->batch)
                                        : "");
    std::vector<std::vector<double>> latencies;
    if (!screen) {
      std::vector<std::unique_ptr<UnarySlot>> slots;
      for (int s = 0; s < settings->in_flight; ++s) {
        slots.push_back(std::make_unique<UnarySlot>(
            &load, target.stubs[s % target.stubs.size()].get(), &requests, s * 997));
      }
      for (auto& slot : slots) slot->Start();
      load.WaitWithProgress(settings->in_flight);
      for (auto& slot : slots) latencies.push_back(slot->latencies_us());
    } else {
      latencies.resize(settings->in_flight);
      std::vector<std::thread> threads;
      for (int s = 0; s < settings->in_flight; ++s) {
        threads.emplace_back(RunScreenSlot, &load, target.stubs[s % target.stubs.size()].get(),
                             header, &batches, s, &latencies[s]);
      }
      load.WaitWithProgress(settings->in_flight);
      for (std::thread& thread : threads) thread.join();
    }
    target.seconds += load.Seconds();
    target.calls += load.Calls();
    target.items += load.Items();
    target.errors += load.Errors();
    for (int code = 0; code <= 16; ++code) target.by_code[code] += load.by_code()[code].load();
    if (target.first_error.empty()) target.first_error = load.first_error();
    for (const auto& slot : latencies) {
      target.latencies_us.insert(target.latencies_us.end(), slot.begin(), slot.end());
    }
  };
  if (targets.size() == 1) {
    run_phase(targets[0], settings->seconds);
  } else {
    // A B, B A, A B, ...: neither server always runs first or last.
    for (int round = 0; round < settings->rounds; ++round) {
      run_phase(targets[round % 2], settings->seconds);
      run_phase(targets[1 - round % 2], settings->seconds);
    }
  }

  int64_t errors = 0;
  std::vector<double> per_second;
  for (Target& target : targets) {
    std::vector<double>& all = target.latencies_us;
    std::sort(all.begin(), all.end());
    per_second.push_back(target.items / target.seconds);
    errors += target.errors;
    std::cout << absl::StrFormat(
        "%s on %s: %d calls in %.2f s, %d errors\n"
        "throughput: %.0f %s/s\n"
        "latency: p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms\n",
        settings->method, target.address, target.calls, target.seconds, target.errors,
        per_second.back(), screen ? "patients" : "calls", Percentile(all, 0.50) / 1000,
        Percentile(all, 0.99) / 1000, Percentile(all, 0.999) / 1000);
    for (int code = 0; code <= 16; ++code) {
      if (target.by_code[code] > 0) {
        std::cout << "  status " << code << ": " << target.by_code[code] << "\n";
      }
    }
    if (target.errors > 0) std::cout << "  first error: " << target.first_error << "\n";
    std::cout << absl::StrFormat(
        "RESULT method=%s server=%s per_second=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f "
        "errors=%d\n",
        settings->method, target.address, per_second.back(), Percentile(all, 0.50) / 1000,
        Percentile(all, 0.99) / 1000, Percentile(all, 0.999) / 1000, target.errors);
  }
  if (targets.size() == 2) {
    std::cout << absl::StrFormat("COMPARE ratio=%.3f (%s / %s)\n",
                                 per_second[1] / per_second[0], targets[1].address,
                                 targets[0].address);
  }
  return errors == 0 ? kExitOk : kExitProblems;
}

}  // namespace trialrules::cli
