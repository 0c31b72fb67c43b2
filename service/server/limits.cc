#include "service/server/limits.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace trialrules {

absl::Status CheckLength(absl::string_view field, absl::string_view value, size_t limit) {
  if (value.size() <= limit) return absl::OkStatus();
  // The quoted start ends on a character boundary: a proto3 string (the
  // error may travel in one) must be valid UTF-8.
  size_t shown = std::min<size_t>(32, value.size());
  while (shown > 0 && shown < value.size() && (value[shown] & 0xC0) == 0x80) --shown;
  return absl::InvalidArgumentError(absl::StrCat(
      field, " \"", value.substr(0, shown), "...\" is ", value.size(),
      " characters long; the limit is ", limit));
}

}  // namespace trialrules
