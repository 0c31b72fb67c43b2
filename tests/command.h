// Runs a shell command for a test: its exit code and its output.
#ifndef TRIALRULES_TESTS_COMMAND_H_
#define TRIALRULES_TESTS_COMMAND_H_

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace trialrules::testing {

struct CommandRun {
  int exit_code;       // -1 when it did not exit normally
  std::string output;  // stdout (and stderr when the command redirects it)
};

inline CommandRun RunCommand(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// The trialrules CLI run from the source directory, stderr with stdout.
inline CommandRun RunCli(const std::string& arguments) {
  return RunCommand(std::string("cd ") + TRIALRULES_SOURCE_DIR + " && " + TRIALRULES_CLI +
                    " " + arguments + " 2>&1");
}

}  // namespace trialrules::testing

#endif  // TRIALRULES_TESTS_COMMAND_H_
