// `trialrules screen --fhir-ndjson EXPORT --server TARGET`: a FHIR Bulk Data
// export screened by servers. The export is cut into messages of whole
// patients (fhir_export.h); every address the target resolves to gets its
// own connections and streams, which take the next message as they finish
// the last, so each replica screens in proportion to its speed. Answers
// are printed in the export's order.
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/cli/args.h"
#include "client/cli/screen_output.h"
#include "client/fhir_export.h"
#include "service/util/json.h"

namespace trialrules::cli {
namespace {

// One server to screen on: a single address, and the name its TLS
// certificate should carry when the address came from a DNS name.
struct Replica {
  std::string target;
  std::string tls_name;
  size_t patients = 0;  // screened there
};

// The replicas `target` names: every address of a "dns:///NAME:PORT" (as
// gRPC's resolver would give them), every entry of an "ipv4:"/"ipv6:"
// list, else the target itself.
absl::StatusOr<std::vector<Replica>> ResolveReplicas(const std::string& target) {
  for (absl::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (!absl::StartsWith(target, scheme)) continue;
    std::vector<Replica> replicas;
    for (absl::string_view address :
         absl::StrSplit(absl::string_view(target).substr(scheme.size()), ',', absl::SkipEmpty())) {
      replicas.push_back({absl::StrCat(scheme, address), "", 0});
    }
    return replicas;
  }
  absl::string_view name = target;
  if (!absl::ConsumePrefix(&name, "dns:")) return std::vector<Replica>{{target, "", 0}};
  if (absl::ConsumePrefix(&name, "//")) {  // an authority (a DNS server) may come first
    const size_t slash = name.find('/');
    if (slash == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--server \"", target, "\": expected dns:///NAME:PORT"));
    }
    name.remove_prefix(slash + 1);
  }
  const size_t colon = name.rfind(':');
  const size_t bracket = name.rfind(']');
  if (colon == absl::string_view::npos || (bracket != absl::string_view::npos && colon < bracket)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--server \"", target, "\": expected dns:///NAME:PORT (a port is needed)"));
  }
  std::string host(name.substr(0, colon));
  const std::string port(name.substr(colon + 1));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int error = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); error != 0) {
    return absl::UnavailableError(
        absl::StrCat("--server \"", target, "\": ", host, " does not resolve: ",
                     gai_strerror(error)));
  }
  std::vector<std::string> addresses;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr, text,
                sizeof text);
      addresses.push_back(absl::StrCat("ipv4:", text, ":", port));
    } else if (a->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr, text,
                sizeof text);
      addresses.push_back(absl::StrCat("ipv6:[", text, "]:", port));
    }
  }
  freeaddrinfo(found);
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  std::vector<Replica> replicas;
  for (std::string& address : addresses) replicas.push_back({std::move(address), host, 0});
  return replicas;
}

// What a protocol's first answer says, and which of its rules exclude.
struct Protocol {
  std::string id;
  v1::RuleSetRef rule_set;
  std::vector<std::string> rule_ids;
  std::vector<bool> exclusion;      // per rule id: an exclusion criterion
  std::vector<bool> informational;  // per rule id
};

struct Screening {
  const ExportBatches* export_batches = nullptr;
  const std::vector<Protocol>* protocols = nullptr;
  v1::ScreenHeader header;  // protocol_id filled per stream
  absl::Duration batch_deadline;
  std::atomic<size_t> next_batch{0};
  std::atomic<size_t> screened{0};  // patients
  std::atomic<bool> failed{false};
  bool progress_shown = false;  // a progress line is on the terminal

  std::mutex mu;
  // Workers still opening their streams: none takes a batch before every
  // replica has shown it screens under the same rules.
  int opening = 0;
  std::condition_variable opened;
  // Per batch, once answered: one response per protocol.
  std::vector<std::optional<std::vector<v1::ScreenResponse>>> answers;
  size_t next_printed = 0;
  std::string error;  // the first failure
};

std::string DecisionWord(v1::Decision decision) {
  return std::string(absl::StripPrefix(v1::Decision_Name(decision), "DECISION_"));
}

// Prints answered batches in the export's order, as far as they reach.
void PrintReady(Screening* screening, ScreenPrinter* printer) {
  const std::vector<Protocol>& protocols = *screening->protocols;
  std::vector<Screened> screened(protocols.size());
  if (screening->progress_shown && screening->next_printed < screening->answers.size() &&
      screening->answers[screening->next_printed].has_value()) {
    std::cerr << "\r\033[K" << std::flush;  // the progress line, redrawn later
    screening->progress_shown = false;
  }
  while (screening->next_printed < screening->answers.size() &&
         screening->answers[screening->next_printed].has_value()) {
    std::vector<v1::ScreenResponse>& responses = *screening->answers[screening->next_printed];
    for (const std::string& error : responses[0].fhir_line_errors()) {
      std::cerr << "skipped: " << error << "\n";
    }
    for (int p = 0; p < responses[0].results_size(); ++p) {
      for (size_t i = 0; i < protocols.size(); ++i) {
        const v1::ScreenResult& result = responses[i].results(p);
        Screened& one = screened[i];
        one.error = result.error();
        if (!one.error.empty()) {
          one.version.clear();
          one.decision = "REFUSED";
          continue;
        }
        one.version = protocols[i].rule_set.version();
        one.decision = DecisionWord(result.decision());
        Tally& tally = printer->tallies()[protocols[i].id];
        for (int r = 0; r < result.outcomes_size(); ++r) {
          const bool excluding = protocols[i].exclusion[r]
                                     ? result.outcomes(r) == v1::OUTCOME_TRUE
                                     : result.outcomes(r) == v1::OUTCOME_FALSE;
          tally.CountRule(protocols[i].rule_ids[r], excluding && !protocols[i].informational[r]);
        }
      }
      printer->Patient(responses[0].results(p).subject_ref(), screened);
    }
    screening->answers[screening->next_printed].reset();
    ++screening->next_printed;
  }
}

void Fail(Screening* screening, std::string error) {
  std::lock_guard<std::mutex> lock(screening->mu);
  if (screening->error.empty()) screening->error = std::move(error);
  screening->failed = true;
}

// One stream per protocol on `replica`, taking batches until none is left.
void ScreenOnReplica(Screening* screening, ScreenPrinter* printer, Replica* replica,
                     const Args& args) {
  const std::vector<Protocol>& protocols = *screening->protocols;
  const std::vector<ExportBatch>& batches = screening->export_batches->batches;
  bool arrived = false;
  auto arrive = [&] {
    if (arrived) return;
    arrived = true;
    std::lock_guard<std::mutex> lock(screening->mu);
    --screening->opening;
    screening->opened.notify_all();
  };
  absl::Cleanup arrive_on_return = arrive;
  Args for_replica = args;
  for_replica.options["server"] = replica->target;
  if (!replica->tls_name.empty() && args.Get("tls-server-name").empty()) {
    for_replica.options["tls-server-name"] = replica->tls_name;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ServerChannel(for_replica, /*own_connection=*/true);
  if (!channel.ok()) return Fail(screening, std::string(channel.status().message()));
  std::unique_ptr<v1::TrialRules::Stub> stub = v1::TrialRules::NewStub(*channel);
  // A stream lasts as long as the batches it may take, each within the
  // per-call deadline.
  const absl::Duration deadline = screening->batch_deadline * (1 + batches.size());
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<v1::ScreenRequest, v1::ScreenResponse>>>
      streams;
  // Streams an early return leaves open are cancelled and finished.
  std::vector<bool> finished;
  absl::Cleanup cancel_open = [&] {
    for (size_t i = 0; i < streams.size(); ++i) {
      if (finished[i]) continue;
      contexts[i]->TryCancel();
      static_cast<void>(streams[i]->Finish());
    }
  };
  auto finish = [&](size_t i) {
    finished[i] = true;
    return streams[i]->Finish();
  };
  auto stream_failed = [&](size_t i, const std::string& what) {
    const grpc::Status status = finish(i);
    Fail(screening, absl::StrCat(replica->target, ", ", protocols[i].id, ": ", what,
                                 status.ok() ? "" : absl::StrCat(": ", status.error_message())));
  };
  for (size_t i = 0; i < protocols.size(); ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    streams.push_back(stub->ScreenPatients(contexts.back().get()));
    finished.push_back(false);
    v1::ScreenRequest opening;
    *opening.mutable_header() = screening->header;
    opening.mutable_header()->set_protocol_id(protocols[i].id);
    v1::ScreenResponse answer;
    if (!streams[i]->Write(opening) || !streams[i]->Read(&answer)) {
      const grpc::Status status = finish(i);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE) {
        return Fail(screening, absl::StrCat(replica->target, ", ", protocols[i].id, ": ",
                                            status.error_message()));
      }
      // The others take its share: an address a name resolves to may not
      // be listening (e.g. ::1 for a server on 127.0.0.1).
      std::lock_guard<std::mutex> lock(screening->mu);
      std::cerr << "skipping " << replica->target << ": " << status.error_message() << "\n";
      return;
    }
    // Every replica must screen under the same rule file.
    if (answer.rule_set().SerializeAsString() != protocols[i].rule_set.SerializeAsString()) {
      return Fail(screening,
                  absl::StrCat(replica->target, " screens ", protocols[i].id, " under version ",
                               answer.rule_set().version(), " (sha256 ",
                               answer.rule_set().sha256(), "), another replica under ",
                               protocols[i].rule_set.version(), " (sha256 ",
                               protocols[i].rule_set.sha256(),
                               "); screen when every replica serves the same rules"));
    }
  }
  arrive();
  {
    std::unique_lock<std::mutex> lock(screening->mu);
    screening->opened.wait(lock, [&] { return screening->opening == 0; });
  }
  v1::ScreenRequest request;  // reused: its buffers keep their capacity
  for (size_t b = screening->next_batch++; b < batches.size() && !screening->failed;
       b = screening->next_batch++) {
    batches[b].WriteNdjson(request.mutable_fhir_ndjson());
    request.clear_fhir_line_numbers();
    request.mutable_fhir_line_numbers()->Add(batches[b].line_numbers.begin(),
                                             batches[b].line_numbers.end());
    for (size_t i = 0; i < protocols.size(); ++i) {
      if (!streams[i]->Write(request)) return stream_failed(i, "a batch could not be sent");
    }
    std::vector<v1::ScreenResponse> responses(protocols.size());
    for (size_t i = 0; i < protocols.size(); ++i) {
      if (!streams[i]->Read(&responses[i])) return stream_failed(i, "a batch was not answered");
      if (responses[i].results_size() != responses[0].results_size()) {
        return Fail(screening, absl::StrCat(replica->target, ": ", protocols[i].id,
                                            " answered ", responses[i].results_size(),
                                            " patients of a batch, ", protocols[0].id, " ",
                                            responses[0].results_size()));
      }
    }
    const size_t patients = responses[0].results_size();
    replica->patients += patients;
    std::lock_guard<std::mutex> lock(screening->mu);
    screening->answers[b] = std::move(responses);
    PrintReady(screening, printer);
    screening->screened += patients;
  }
  for (size_t i = 0; i < protocols.size(); ++i) {
    streams[i]->WritesDone();
    if (const grpc::Status status = finish(i); !status.ok()) {
      Fail(screening, absl::StrCat(replica->target, ", ", protocols[i].id, ": ",
                                   status.error_message()));
    }
  }
}

// Each protocol's rule set as the first replica answers for it.
absl::StatusOr<std::vector<Protocol>> Describe(const std::vector<std::string>& ids,
                                               const v1::ScreenHeader& header,
                                               const Replica& replica, const Args& args) {
  Args for_replica = args;
  for_replica.options["server"] = replica.target;
  if (!replica.tls_name.empty() && args.Get("tls-server-name").empty()) {
    for_replica.options["tls-server-name"] = replica.tls_name;
  }
  absl::StatusOr<std::unique_ptr<TrialRulesClient>> client = ServerClient(for_replica);
  if (!client.ok()) return client.status();
  std::vector<Protocol> protocols;
  for (const std::string& id : ids) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + (*client)->deadline()));
    auto stream = (*client)->stub()->ScreenPatients(&context);
    v1::ScreenRequest opening;
    *opening.mutable_header() = header;
    opening.mutable_header()->set_protocol_id(id);
    v1::ScreenResponse answer;
    const bool answered = stream->Write(opening) && stream->Read(&answer);
    stream->WritesDone();
    const grpc::Status status = stream->Finish();
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          absl::StrCat(id, " on ", replica.target, ": ", status.error_message()));
    }
    if (!answered) {
      return absl::UnavailableError(absl::StrCat(id, " on ", replica.target, ": no answer"));
    }
    absl::StatusOr<v1::RuleSetInfo> info =
        (*client)->GetRuleSet(id, answer.rule_set().version());
    if (!info.ok()) return info.status();
    Protocol protocol{id, answer.rule_set(), {}, {}, {}};
    for (const std::string& rule : answer.rule_ids()) {
      const auto it = std::find_if(info->rules().begin(), info->rules().end(),
                                   [&](const v1::RuleInfo& r) { return r.id() == rule; });
      protocol.rule_ids.push_back(rule);
      protocol.exclusion.push_back(it != info->rules().end() && it->kind() == "exclusion");
      protocol.informational.push_back(it != info->rules().end() && it->informational());
    }
    protocols.push_back(std::move(protocol));
  }
  return protocols;
}

// Redraws the progress line on the terminal (stderr) until `done`.
void ShowProgress(Screening* screening, size_t total, const std::atomic<bool>* done) {
  const absl::Time start = absl::Now();
  while (!*done) {
    {
      std::lock_guard<std::mutex> lock(screening->mu);
      const size_t screened = screening->screened;
      const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
      constexpr size_t kWidth = 30;
      const size_t filled = total == 0 ? kWidth : kWidth * screened / total;
      std::cerr << absl::StrFormat("\r\033[K[%s%s] %d/%d patients, %.0f/s",
                                   std::string(filled, '#'), std::string(kWidth - filled, ' '),
                                   screened, total, seconds > 0 ? screened / seconds : 0.0)
                << std::flush;
      screening->progress_shown = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::cerr << "\r\033[K" << std::flush;
}

}  // namespace

int ScreenExportOnServers(const Args& args, const std::vector<std::string>& protocol_ids) {
  absl::StatusOr<absl::Duration> batch_deadline = DeadlineFlag(args);
  int batch_patients = 0, streams_per_server = 0;
  if (!batch_deadline.ok() ||
      !absl::SimpleAtoi(args.Get("batch", "150"), &batch_patients) || batch_patients <= 0 ||
      !absl::SimpleAtoi(args.Get("streams-per-server", "3"), &streams_per_server) ||
      streams_per_server <= 0) {
    std::cerr << "error: "
              << (batch_deadline.ok() ? "--batch and --streams-per-server take a positive number"
                                      : batch_deadline.status().message())
              << "\n";
    return kExitUsage;
  }
  absl::StatusOr<std::vector<Replica>> replicas = ResolveReplicas(args.Get("server"));
  if (replicas.ok() && replicas->empty()) {
    replicas = absl::UnavailableError(
        absl::StrCat("--server \"", args.Get("server"), "\" resolves to no address"));
  }
  if (!replicas.ok()) {
    std::cerr << "error: " << replicas.status().message() << "\n";
    return kExitProblems;
  }
  absl::StatusOr<std::string> text = ReadNdjsonExport(args.Get("fhir-ndjson"));
  if (!text.ok()) {
    std::cerr << "error: " << text.status().message() << "\n";
    return kExitProblems;
  }
  // Well under the server's 16 MiB message limit.
  constexpr size_t kBatchBytes = 4 << 20;
  const ExportBatches batches = BatchExportByPatient(*text, batch_patients, kBatchBytes);

  Screening screening;
  screening.export_batches = &batches;
  screening.batch_deadline = *batch_deadline;
  screening.header.set_as_of_date(args.Get("assessment-date"));
  // As offline: each protocol takes the facts it declares.
  screening.header.set_ignore_unknown_facts(true);
  screening.answers.resize(batches.batches.size());
  absl::StatusOr<std::vector<Protocol>> protocols =
      Describe(protocol_ids, screening.header, replicas->front(), args);
  if (!protocols.ok()) {
    std::cerr << "error: " << protocols.status().message() << "\n";
    return kExitProblems;
  }
  screening.protocols = &*protocols;

  ScreenPrinter printer(protocol_ids, args.Has("json"));
  std::atomic<bool> done{false};
  std::thread progress;
  if (isatty(STDERR_FILENO)) progress = std::thread(ShowProgress, &screening, batches.patients, &done);
  const absl::Time start = absl::Now();
  std::vector<std::thread> workers;
  // Per replica and stream: its own count, summed per replica after.
  std::vector<Replica> slots;
  for (const Replica& replica : *replicas) {
    for (int s = 0; s < streams_per_server; ++s) slots.push_back(replica);
  }
  screening.opening = static_cast<int>(slots.size());
  for (Replica& slot : slots) {
    workers.emplace_back(ScreenOnReplica, &screening, &printer, &slot, std::cref(args));
  }
  for (std::thread& worker : workers) worker.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  done = true;
  if (progress.joinable()) progress.join();
  if (!screening.failed && screening.next_printed < screening.answers.size()) {
    screening.error = absl::StrCat("no server of \"", args.Get("server"),
                                   "\" could be reached");
    screening.failed = true;
  }
  if (screening.failed) {
    std::cerr << "error: " << screening.error << "\n";
    return kExitProblems;
  }
  std::map<std::string, size_t> per_replica;
  for (const Replica& slot : slots) per_replica[slot.target] += slot.patients;
  std::vector<std::string> counts;
  for (const auto& [target, patients] : per_replica) {
    counts.push_back(absl::StrCat(JsonQuote(target), ":", patients));
  }
  printer.Summary(absl::StrCat("\"replicas\":{", absl::StrJoin(counts, ","), "}"));
  std::vector<std::string> shares;
  for (const auto& [target, patients] : per_replica) shares.push_back(absl::StrCat(target, " ", patients));
  std::cerr << absl::StrFormat("screened %d patients in %.2f s (%.0f patients/s) on %d %s: %s\n",
                               batches.patients, seconds,
                               seconds > 0 ? batches.patients / seconds : 0.0, per_replica.size(),
                               per_replica.size() == 1 ? "server" : "servers",
                               absl::StrJoin(shares, ", "));
  return kExitOk;
}

}  // namespace trialrules::cli
