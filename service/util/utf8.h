// UTF-8 checks. Every string a proto3 message carries must be valid UTF-8 or
// the message does not parse on the other side, and rule files, protobuf's
// own error messages and file names can all bring other bytes.
#ifndef TRIALRULES_SERVICE_UTIL_UTF8_H_
#define TRIALRULES_SERVICE_UTIL_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace trialrules {

// Length of the well-formed UTF-8 sequence starting at `text[at]` (no
// overlong forms, surrogates or code points above U+10FFFF), or 0.
size_t Utf8SequenceLength(absl::string_view text, size_t at);

bool IsValidUtf8(absl::string_view text);

// `text` with every byte that starts no well-formed sequence replaced by
// U+FFFD.
std::string ToValidUtf8(absl::string_view text);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_UTIL_UTF8_H_
