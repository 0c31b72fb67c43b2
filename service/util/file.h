// Reading a whole file, the one way every part of trialrules does it.
#ifndef TRIALRULES_SERVICE_UTIL_FILE_H_
#define TRIALRULES_SERVICE_UTIL_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace trialrules {

// The file's bytes. NotFound "cannot open the file" when it cannot be
// opened (missing, dangling symlink, no permission); Unavailable "cannot
// read the file" when reading fails part-way.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_UTIL_FILE_H_
