// JSON text helpers for the few places that write JSON by hand (the audit
// log, the CLI's --json output), where key order must be stable.
#ifndef TRIALRULES_SERVICE_UTIL_JSON_H_
#define TRIALRULES_SERVICE_UTIL_JSON_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace trialrules {

// `text` as a JSON string literal. Bytes that are not valid UTF-8 become
// U+FFFD, so a line stays valid JSON whatever a caller sent.
std::string JsonQuote(absl::string_view text);
// The same, written at the end of `out`.
void AppendJsonQuoted(absl::string_view text, std::string* out);

// ["a","b"]
std::string JsonList(const std::vector<std::string>& items);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_UTIL_JSON_H_
