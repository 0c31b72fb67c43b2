// trialrules-server: flags (each with an environment-variable twin), signals,
// wiring. SIGTERM/SIGINT are taken by a thread with sigwait, never by a
// handler: shutdown runs as ordinary code.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "service/server/server.h"
#include "service/util/malloc_tuning.h"

namespace {

struct Flag {
  const char* name;
  const char* env;
  std::string value;
  const char* help;
  bool boolean = false;  // "--name" alone means true
};

std::vector<Flag> DefaultFlags() {
  return {
      {"listen", "TRIALRULES_LISTEN", "127.0.0.1:50051", "gRPC listen address (port 0: any free port)"},
      {"plaintext", "TRIALRULES_PLAINTEXT", "false", "serve gRPC without TLS (else --tls-cert and --tls-key are required)", true},
      {"tls-cert", "TRIALRULES_TLS_CERT", "", "PEM certificate chain of the gRPC port (re-read on change)"},
      {"tls-key", "TRIALRULES_TLS_KEY", "", "PEM private key of the gRPC port (re-read on change)"},
      {"tls-client-ca", "TRIALRULES_TLS_CLIENT_CA", "", "PEM CA certificates: require and verify client certificates (mutual TLS)"},
      {"tls-reload-seconds", "TRIALRULES_TLS_RELOAD_SECONDS", "60", "how often the TLS files are read again"},
      {"health-listen", "TRIALRULES_HEALTH_LISTEN", "", "optional plaintext address serving only grpc.health.v1 (probes)"},
      {"rules-dir", "TRIALRULES_RULES_DIR", "rules", "directory of rule files (*.textproto)"},
      {"reload-interval-ms", "TRIALRULES_RELOAD_INTERVAL_MS", "2000", "how often the rules directory is read again (SIGHUP: at once)"},
      {"rules-settle-ms", "TRIALRULES_RULES_SETTLE_MS", "1000", "a new or changed rule file is loaded once its bytes have read the same for this long"},
      {"rules-archive", "TRIALRULES_RULES_ARCHIVE", "", "directory keeping every rule file and decision table ever loaded, by SHA-256 (for trialrules replay); empty: none"},
      {"metrics-address", "TRIALRULES_METRICS_ADDRESS", "127.0.0.1:9464", "Prometheus /metrics address (\":PORT\" for every interface; empty: no metrics)"},
      {"audit-log", "TRIALRULES_AUDIT_LOG", "trialrules-audit.jsonl", "decision audit log (JSON lines, appended); \"-\": standard output"},
      {"audit-include-facts", "TRIALRULES_AUDIT_INCLUDE_FACTS", "false", "also write the canonical facts (patient data) to the audit log", true},
      {"audit-signing-key", "TRIALRULES_AUDIT_SIGNING_KEY", "", "Ed25519 private key (PKCS#8 PEM): the log becomes a Merkle tree with signed checkpoints; empty: not provable"},
      {"audit-log-origin", "TRIALRULES_AUDIT_LOG_ORIGIN", "", "the log's name in its checkpoints, one per replica (default trialrules/HOSTNAME)"},
      {"audit-checkpoints", "TRIALRULES_AUDIT_CHECKPOINTS", "", "signed checkpoints file (default: the audit log's path + .checkpoints)"},
      {"audit-checkpoint-records", "TRIALRULES_AUDIT_CHECKPOINT_RECORDS", "1000", "a checkpoint after this many records"},
      {"audit-checkpoint-seconds", "TRIALRULES_AUDIT_CHECKPOINT_SECONDS", "10", "a checkpoint after this long with records not in one (and at shutdown)"},
      {"audit-log-max-bytes", "TRIALRULES_AUDIT_LOG_MAX_BYTES", "268435456", "rotate the audit log file at this size (the tree goes on); 0: never"},
      {"drain-seconds", "TRIALRULES_DRAIN_SECONDS", "20", "on SIGTERM, time for calls in flight to finish"},
      {"max-message-bytes", "TRIALRULES_MAX_MESSAGE_BYTES", "16777216", "largest request or response"},
      {"max-facts", "TRIALRULES_MAX_FACTS", "1000", "facts per request, columns per screen"},
      {"max-concurrent-calls", "TRIALRULES_MAX_CONCURRENT_CALLS", "1000", "calls handled at once (open streams count); beyond: RESOURCE_EXHAUSTED at once"},
      {"max-concurrent-streams", "TRIALRULES_MAX_CONCURRENT_STREAMS", "100", "HTTP/2 streams per connection"},
      {"max-stream-seconds", "TRIALRULES_MAX_STREAM_SECONDS", "300", "a stream without a client deadline ends after this long"},
      {"max-call-seconds", "TRIALRULES_MAX_CALL_SECONDS", "30", "the longest a unary call may work, whatever its deadline (DEADLINE_EXCEEDED)"},
      {"validation-threads", "TRIALRULES_VALIDATION_THREADS", "1", "threads checking rule files sent to ValidateRuleSet (lowest CPU priority); 4 calls per thread may wait, more get RESOURCE_EXHAUSTED"},
      {"port-file", "TRIALRULES_PORT_FILE", "", "write the bound gRPC, metrics and health-only ports (one a line, 0: none) here once listening"},
  };
}

void Usage(const std::vector<Flag>& flags) {
  std::cerr << "usage: trialrules-server [--FLAG=VALUE]...\n";
  for (const Flag& flag : flags) {
    std::cerr << "  --" << flag.name << " (env " << flag.env << ", default \"" << flag.value
              << "\")\n      " << flag.help << "\n";
  }
}

// A request whose string field is not UTF-8 is answered INVALID_ARGUMENT
// and counted (unparseable_request.h); protobuf's own line about it would
// let any caller write to the server's log.
void LogProtobufMessage(google::protobuf::LogLevel level, const char* file, int line,
                        const std::string& message) {
  if (level < google::protobuf::LOGLEVEL_FATAL &&
      message.find("when parsing a protocol buffer") != std::string::npos) {
    return;
  }
  std::cerr << "[libprotobuf " << file << ":" << line << "] " << message << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  trialrules::KeepFreedMemory();
  google::protobuf::SetLogHandler(LogProtobufMessage);
  // Debian's Abseil is built without NDEBUG, which leaves absl::Mutex's
  // deadlock detection (a graph update on every lock gRPC takes) switched on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<Flag> flags = DefaultFlags();
  for (Flag& flag : flags) {
    if (const char* env = std::getenv(flag.env)) flag.value = env;
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      Usage(flags);
      return 0;
    }
    bool matched = false;
    for (Flag& flag : flags) {
      const std::string prefix = absl::StrCat("--", flag.name);
      if (arg == prefix && flag.boolean) {
        flag.value = "true";
      } else if (arg == prefix && i + 1 < argc) {
        flag.value = argv[++i];
      } else if (arg.rfind(prefix + "=", 0) == 0) {
        flag.value = arg.substr(prefix.size() + 1);
      } else {
        continue;
      }
      matched = true;
      break;
    }
    if (!matched) {
      std::cerr << "unknown argument \"" << arg << "\"\n";
      Usage(flags);
      return 2;
    }
  }
  auto get = [&](absl::string_view name) -> const std::string& {
    for (const Flag& flag : flags) {
      if (flag.name == name) return flag.value;
    }
    std::abort();
  };
  trialrules::ServerOptions options;
  options.listen_address = get("listen");
  options.rules_dir = get("rules-dir");
  options.rules_archive_dir = get("rules-archive");
  options.metrics_address = get("metrics-address");
  options.audit_log_path = get("audit-log");
  for (const Flag& flag : flags) {
    if (flag.boolean && flag.value != "true" && flag.value != "false") {
      std::cerr << "--" << flag.name << " takes true or false, not \"" << flag.value << "\"\n";
      return 2;
    }
  }
  options.audit_include_facts = get("audit-include-facts") == "true";
  options.audit_signing_key_path = get("audit-signing-key");
  options.audit_log_origin = get("audit-log-origin");
  if (options.audit_log_origin.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    options.audit_log_origin = absl::StrCat("trialrules/", host);
  }
  options.audit_checkpoints_path = get("audit-checkpoints");
  options.plaintext = get("plaintext") == "true";
  options.tls.cert_path = get("tls-cert");
  options.tls.key_path = get("tls-key");
  options.tls.client_ca_path = get("tls-client-ca");
  options.health_listen_address = get("health-listen");
  // A whole-number flag of at least `minimum`; 0 after printing why not.
  bool numbers_ok = true;
  auto number = [&](absl::string_view name, int minimum) {
    int value = 0;
    if (!absl::SimpleAtoi(get(name), &value) || value < minimum) {
      std::cerr << "--" << name << " takes a whole number >= " << minimum << ", not \""
                << get(name) << "\"\n";
      numbers_ok = false;
    }
    return value;
  };
  options.tls.refresh = absl::Seconds(number("tls-reload-seconds", 1));
  options.reload_interval = absl::Milliseconds(number("reload-interval-ms", 10));
  options.rules_settle = absl::Milliseconds(number("rules-settle-ms", 0));
  const int drain_seconds = number("drain-seconds", 0);
  options.max_message_bytes = number("max-message-bytes", 1024);
  options.limits.max_facts = static_cast<size_t>(number("max-facts", 1));
  options.limits.max_concurrent_calls = number("max-concurrent-calls", 1);
  options.max_concurrent_streams = number("max-concurrent-streams", 1);
  options.limits.max_stream_duration = absl::Seconds(number("max-stream-seconds", 1));
  options.limits.max_call_duration = absl::Seconds(number("max-call-seconds", 1));
  options.limits.validation_threads = number("validation-threads", 1);
  options.limits.validation_queue = 4 * options.limits.validation_threads;
  options.audit_checkpoint_records = number("audit-checkpoint-records", 1);
  options.audit_checkpoint_interval = absl::Seconds(number("audit-checkpoint-seconds", 1));
  if (uint64_t max_bytes = 0; absl::SimpleAtoi(get("audit-log-max-bytes"), &max_bytes)) {
    options.audit_log_max_bytes = max_bytes;
  } else {
    std::cerr << "--audit-log-max-bytes takes a whole number, not \""
              << get("audit-log-max-bytes") << "\"\n";
    numbers_ok = false;
  }
  if (!numbers_ok) return 2;

  // Block the shutdown signals in every thread (gRPC's threads inherit the
  // mask); this thread takes them with sigwait.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGTERM);
  sigaddset(&shutdown_signals, SIGINT);
  sigaddset(&shutdown_signals, SIGHUP);  // reload the rules now
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);
  // The audit log may be a pipe (stdout in a container): a reader that went
  // away must make the write fail (and the call fail closed), not kill us.
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<trialrules::TrialRulesServer>> server =
      trialrules::TrialRulesServer::Start(options);
  if (!server.ok()) {
    std::cerr << "trialrules-server: " << server.status().message() << "\n";
    return server.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::cerr << "trialrules-server: listening on " << options.listen_address << " (port "
            << (*server)->port() << ", "
            << (options.plaintext ? "plaintext"
                                  : options.tls.client_ca_path.empty() ? "TLS" : "mutual TLS")
            << ")"
            << ((*server)->health_port() == 0
                    ? std::string()
                    : absl::StrCat(", health only on port ", (*server)->health_port()))
            << ", metrics "
            << ((*server)->metrics_port() == 0
                    ? std::string("off")
                    : absl::StrCat("on port ", (*server)->metrics_port(), " /metrics"))
            << ", audit log " << options.audit_log_path << "\n";
  if (const std::string& port_file = get("port-file"); !port_file.empty()) {
    // Whole or not at all: whoever waits for the file never reads half of it.
    std::ofstream(port_file + ".tmp") << (*server)->port() << "\n"
                                      << (*server)->metrics_port() << "\n"
                                      << (*server)->health_port() << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  const int loaded = (*server)->Reload();
  std::cerr << "trialrules-server: " << loaded << " rule sets loaded from "
            << options.rules_dir << (loaded == 0 ? "; answering UNAVAILABLE" : "") << "\n";
  (*server)->StartReloading();

  int signal_number = 0;
  while (sigwait(&shutdown_signals, &signal_number) == 0 && signal_number == SIGHUP) {
    std::cerr << "trialrules-server: SIGHUP, reloading the rules\n";
    (*server)->RequestReload();
  }
  std::cerr << "trialrules-server: signal " << signal_number << ", draining for up to "
            << drain_seconds << " s (a second signal: exit at once)\n";
  // The drain deadline is hard: whatever still runs a moment after it (a
  // write stuck on a full pipe, a slow disk) does not hold the exit, and a
  // second signal exits at once. Every answered decision's record is on
  // disk already; a line cut short is kept as a torn tail at the next start.
  std::thread([shutdown_signals, drain_seconds] {
    const absl::Time hard_deadline = absl::Now() + absl::Seconds(drain_seconds + 1);
    while (true) {
      const timespec wait =
          absl::ToTimespec(std::max(absl::ZeroDuration(), hard_deadline - absl::Now()));
      const int signal_number = sigtimedwait(&shutdown_signals, nullptr, &wait);
      if (signal_number == SIGHUP || (signal_number < 0 && errno == EINTR)) continue;
      std::cerr << (signal_number > 0
                        ? absl::StrCat("trialrules-server: signal ", signal_number,
                                       " again, exiting now\n")
                        : std::string("trialrules-server: the drain deadline passed with "
                                      "calls still running, exiting now\n"));
      std::_Exit(1);
    }
  }).detach();
  (*server)->Shutdown(absl::Seconds(drain_seconds));
  std::cerr << "trialrules-server: stopped\n";
  return 0;
}
