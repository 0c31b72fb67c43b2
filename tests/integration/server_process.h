// Runs the real trialrules-server binary for a test: an ephemeral loopback
// port (read from --port-file), its own audit log and stderr log in a fresh
// temporary directory.
#ifndef TRIALRULES_TESTS_INTEGRATION_SERVER_PROCESS_H_
#define TRIALRULES_TESTS_INTEGRATION_SERVER_PROCESS_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include <grpcpp/grpcpp.h>

extern char** environ;

namespace trialrules::testing {

inline std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A loopback TCP connection to `port`, or -1; reads time out after
// `timeout_seconds`.
inline int ConnectLoopback(int port, int timeout_seconds = 10) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval timeout{timeout_seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// GET `path` over HTTP/1.0; the whole response (status line, headers,
// body), or "" on failure.
inline std::string HttpGet(int port, const std::string& path, int timeout_seconds = 10) {
  const int fd = ConnectLoopback(port, timeout_seconds);
  if (fd < 0) return "";
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  std::string response;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    char buffer[65536];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) response.append(buffer, n);
  }
  ::close(fd);
  return response;
}

// The value of the sample whose name and labels (in the page's order,
// which is sorted) are exactly `series`, or -1 when absent.
inline double Sample(const std::string& page, const std::string& series) {
  size_t at = 0;
  while ((at = page.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || page[at - 1] == '\n') {
      return std::stod(page.substr(at + series.size() + 1));
    }
    at += series.size();
  }
  return -1;
}

// The series counting `method`'s calls that ended with `code` ("OK").
inline std::string HandledSeries(const std::string& method, const std::string& code) {
  return "trialrules_grpc_server_handled_total{grpc_code=\"" + code + "\",grpc_method=\"" +
         method + "\",grpc_service=\"trialrules.v1.TrialRules\"}";
}

class ServerProcess {
 public:
  // `extra` flags are appended after the defaults; without `plaintext`
  // they must set up TLS.
  explicit ServerProcess(std::vector<std::string> extra = {},
                         std::string rules_dir = std::string(TRIALRULES_SOURCE_DIR) + "/rules",
                         bool plaintext = true) {
    dir_ = std::filesystem::temp_directory_path() /
           ("trialrules-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::vector<std::string> args = {TRIALRULES_SERVER, "--listen=127.0.0.1:0",
                                     "--rules-dir=" + rules_dir,
                                     "--audit-log=" + (dir_ / "audit.jsonl").string(),
                                     "--port-file=" + (dir_ / "port").string(),
                                     "--metrics-address=127.0.0.1:0",
                                     "--drain-seconds=10"};
    if (plaintext) args.push_back("--plaintext");
    args.insert(args.end(), extra.begin(), extra.end());
    Spawn(args);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Waits for the port file (written whole: gRPC, metrics and health-only
  // ports); false if the process exited first.
  bool WaitForPort() {
    for (int i = 0; i < 500; ++i) {
      std::istringstream text(ReadText(dir_ / "port"));
      if (text >> port_ >> metrics_port_ >> health_port_) return true;
      if (Exited()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Health status of `service` ("": the whole server; SERVING = 1) on the
  // gRPC port, or on `channel`; -1 when the call fails.
  int Health(const std::string& service = "",
             std::shared_ptr<grpc::Channel> channel = nullptr) {
    auto stub = grpc::health::v1::Health::NewStub(channel != nullptr ? channel : Channel());
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status = stub->Check(&context, request, &response);
    return status.ok() ? response.status() : -1;
  }

  // Waits until the whole server's health is `wanted`, asked on the gRPC
  // port or on `channel` (e.g. the health-only port).
  bool WaitForHealth(int wanted, std::shared_ptr<grpc::Channel> channel = nullptr) {
    for (int i = 0; i < 500; ++i) {
      if (Health("", channel) == wanted) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(Target(), grpc::InsecureChannelCredentials());
  }
  std::string Target() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  int health_port() const { return health_port_; }
  pid_t pid() const { return pid_; }
  std::filesystem::path dir() const { return dir_; }
  // The body of GET /metrics, or "" when the scrape failed.
  std::string Scrape() const {
    const std::string response = HttpGet(metrics_port_, "/metrics");
    const size_t body = response.find("\r\n\r\n");
    if (body == std::string::npos || response.find(" 200 ") > response.find("\r\n")) return "";
    return response.substr(body + 4);
  }
  std::string AuditLog() const { return ReadText(dir_ / "audit.jsonl"); }
  std::string Stderr() const { return ReadText(dir_ / "stderr.log"); }

  void Signal(int signal_number) { ::kill(pid_, signal_number); }

  // CPU time the process has used (user and system), in seconds.
  double CpuSeconds() const {
    std::string stat = ReadText("/proc/" + std::to_string(pid_) + "/stat");
    // Fields after the command name (which may hold spaces) start at ") ".
    std::istringstream fields(stat.substr(stat.rfind(") ") + 2));
    std::string skip;
    for (int field = 3; field < 14; ++field) fields >> skip;
    double user_ticks = 0, system_ticks = 0;
    fields >> user_ticks >> system_ticks;
    return (user_ticks + system_ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }

  // Waits for exit (up to `seconds`); returns the exit code, or -1.
  int WaitForExit(int seconds = 30) {
    for (int i = 0; i < seconds * 50; ++i) {
      if (Exited()) return exit_code_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

 private:
  void Spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = (dir_ / "stderr.log").string();
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
  }
  bool Exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      pid_ = -1;
      return true;
    }
    return false;
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  int health_port_ = 0;
  int exit_code_ = -1;
};

// Waits (up to 20 s) until the scrape's `series` reaches `wanted`; its last
// value.
inline double WaitForSample(const ServerProcess& server, const std::string& series,
                            double wanted) {
  double value = -1;
  for (int i = 0; i < 200 && (value = Sample(server.Scrape(), series)) < wanted; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return value;
}

}  // namespace trialrules::testing

#endif  // TRIALRULES_TESTS_INTEGRATION_SERVER_PROCESS_H_
