#include "service/util/file.h"

#include <fstream>
#include <sstream>

namespace trialrules {

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return absl::NotFoundError("cannot open the file");
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::UnavailableError("cannot read the file");
  return bytes.str();
}

}  // namespace trialrules
