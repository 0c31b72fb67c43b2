// SHA-256 of bytes, as lowercase hex: identifies a rule file's exact content.
#ifndef TRIALRULES_SERVICE_UTIL_SHA256_H_
#define TRIALRULES_SERVICE_UTIL_SHA256_H_

#include <string>
#include "absl/strings/string_view.h"

namespace trialrules {

std::string Sha256Hex(absl::string_view bytes);
// The same, written at the end of `out`.
void AppendSha256Hex(absl::string_view bytes, std::string* out);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_UTIL_SHA256_H_
