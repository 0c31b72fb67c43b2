// A small command-line reader shared by the subcommands: `--name value`,
// `--name=value`, boolean `--name`, and positional arguments.
#ifndef TRIALRULES_CLIENT_CLI_ARGS_H_
#define TRIALRULES_CLIENT_CLI_ARGS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "service/engine/compare.h"
#include "service/catalog/reload.h"

namespace trialrules::cli {

struct Args {
  std::map<std::string, std::string> options;
  std::set<std::string> switches;
  std::vector<std::string> positional;

  std::string Get(const std::string& name, const std::string& fallback = "") const {
    const auto it = options.find(name);
    return it == options.end() ? fallback : it->second;
  }
  bool Has(const std::string& name) const { return switches.count(name) > 0; }
};

// `valued` lists the options that take a value, `flags` those that don't;
// anything else starting with "--" is a usage error.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const std::set<std::string>& valued,
                               const std::set<std::string>& flags);

// The patients file at `path` ({"patients": [...]}, facts_file.h); a file
// that cannot be read is an error naming it.
absl::StatusOr<std::vector<PatientFacts>> ReadPatientsFile(const std::string& path);

// Exit codes of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitProblems = 1;
inline constexpr int kExitUsage = 2;

// --deadline-ms (default 10000) as a duration.
absl::StatusOr<absl::Duration> DeadlineFlag(const Args& args);

// The options of every subcommand that talks to a server.
inline const std::set<std::string> kServerOptions = {
    "server", "deadline-ms", "tls-ca", "tls-cert", "tls-key", "tls-server-name"};
inline constexpr char kServerUsage[] =
    "  --server HOST:PORT or dns:///NAME:PORT (round-robin over its addresses);\n"
    "  plaintext unless --tls-ca CA.pem (verify the server), with --tls-cert and\n"
    "  --tls-key for mutual TLS; --tls-server-name NAME when the certificate names\n"
    "  another host; --deadline-ms N per call (default 10000).\n";
// `valued` plus kServerOptions.
std::set<std::string> WithServerOptions(std::set<std::string> valued);

// The channel --server and the TLS options ask for.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ServerChannel(const Args& args,
                                                             bool own_connection = false);
// A client on ServerChannel with --deadline-ms.
absl::StatusOr<std::unique_ptr<TrialRulesClient>> ServerClient(const Args& args);

// The rule files at `path` (a file or a directory) loaded as the server
// loads its rules directory; refused files are printed to stderr when
// `report_refusals`.
std::shared_ptr<const Catalog> LoadLocalCatalog(const std::string& path,
                                                bool report_refusals);

int RunCheck(const std::vector<std::string>& argv);
int RunEval(const std::vector<std::string>& argv);
int RunBench(const std::vector<std::string>& argv);
int RunDiff(const std::vector<std::string>& argv);
int RunGrade(const std::vector<std::string>& argv);
int RunTrial(const std::vector<std::string>& argv);
int RunScreen(const std::vector<std::string>& argv);
// screen --fhir-ndjson with --server: the export spread over every replica
// the target resolves to (screen_servers.cc).
int ScreenExportOnServers(const Args& args, const std::vector<std::string>& protocols);
int RunDesign(const std::vector<std::string>& argv);
int RunAudit(const std::vector<std::string>& argv);
int RunReplay(const std::vector<std::string>& argv);

}  // namespace trialrules::cli

#endif  // TRIALRULES_CLIENT_CLI_ARGS_H_
