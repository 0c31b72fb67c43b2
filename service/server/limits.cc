#include "service/server/limits.h"

#include "absl/strings/str_cat.h"

namespace trialrules {

absl::Status CheckLength(absl::string_view field, absl::string_view value, size_t limit) {
  if (value.size() <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, " \"", value.substr(0, 32), "...\" is ", value.size(),
      " characters long; the limit is ", limit));
}

}  // namespace trialrules
