// The JSON Canonicalization Scheme (RFC 8785, JCS): one text for every
// JSON value, so that an audit record's hash or signature does not depend
// on the whitespace, member order, escapes or number spelling of whoever
// wrote it. The log writes its records in this form and an offline
// verifier checks that each one is already canonical.
//
// Input is read as I-JSON (RFC 7493), as JCS requires: valid UTF-8, no
// duplicate member names, numbers that are IEEE doubles. Integers are read
// as doubles too, so that 9007199254740993 becomes 9007199254740992 as it
// would in a JavaScript verifier; callers that need exact large integers
// must send them as strings.
#ifndef TRIALRULES_SERVICE_AUDIT_JCS_H_
#define TRIALRULES_SERVICE_AUDIT_JCS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trialrules {

// The RFC 8785 form of the JSON text `json`. INVALID_ARGUMENT, naming the
// problem and where it is (a byte offset, or the member's JSON Pointer),
// for text that is not JSON, invalid UTF-8 (including escaped lone
// surrogates), duplicate member names in one object, and numbers beyond
// the range of a double (1e400).
absl::StatusOr<std::string> CanonicalJson(absl::string_view json);

// True when `json` is JSON and already in its RFC 8785 form, byte for byte.
bool IsCanonicalJson(absl::string_view json);

// ECMAScript's Number::toString of `value` (RFC 8785 section 3.2.2.3),
// appended to `out`: the shortest digits that read back as `value`, plain
// from 1e-6 up to 1e21 and as d.ddde+N beyond. -0 is "0". `value` must be
// finite: JSON has no NaN or Infinity, and CanonicalJson refuses them
// before they get here.
void AppendJcsNumber(double value, std::string* out);

// `utf8` as a JCS string literal appended to `out`: only '"', '\' and
// U+0000 to U+001F are escaped (\b \t \n \f \r, others as \u00xx), every
// other character is written as itself. `utf8` must be valid UTF-8; the
// output is not checked and would not be canonical otherwise.
void AppendJcsString(absl::string_view utf8, std::string* out);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_AUDIT_JCS_H_
