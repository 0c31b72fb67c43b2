// Reading an audit log's files back: which files make up a log, and the
// parts of one line. Shared by the log itself (resuming its tree at open)
// and by the tools that verify and prove it.
#ifndef TRIALRULES_SERVICE_AUDIT_LOG_FILES_H_
#define TRIALRULES_SERVICE_AUDIT_LOG_FILES_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trialrules {

// The files of the log at `path`, oldest first: the rotated ones
// (`path`.<20 digits>, by number), then `path` itself when it exists.
std::vector<std::string> LogFiles(const std::string& path);

// One line of a log file, without its newline.
struct LogLine {
  const std::string* file = nullptr;
  uint64_t line_number = 0;  // 1-based, within the file
  absl::string_view text;
  bool ends_with_newline = true;
};
// Calls `visit` with every line of every file of the log, in order; stops
// at the first status that is not OK and returns it. NOT_FOUND when the log
// has no file.
absl::Status ForEachLogLine(const std::string& path,
                            const std::function<absl::Status(const LogLine&)>& visit);

// A line's envelope. A signed log's line is, in this exact canonical form,
//   {"leaf_index":N,"prev_leaf_hash":"HEX","record":{…},"time":"…Z"}
// (prev_leaf_hash empty for the first leaf); an unsigned log's
//   {"record":{…},"time":"…Z"}.
struct LogEnvelope {
  bool indexed = false;
  uint64_t leaf_index = 0;
  absl::string_view prev_leaf_hash;
  absl::string_view record;  // the record's JSON text
  absl::string_view time;
};
// INVALID_ARGUMENT, saying which part is wrong, for a line that is not
// valid JSON or not of either form.
absl::StatusOr<LogEnvelope> ParseLogLine(absl::string_view line);

// The string member `key` of a record object; empty when absent or not a
// string.
std::string RecordString(absl::string_view record, absl::string_view key);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_AUDIT_LOG_FILES_H_
