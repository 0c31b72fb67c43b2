// Numbers as text: the shortest form that reads back as the same double.
// Error messages name the value a caller sent, not a rounding of it; the
// audit log's canonical facts hash equal numbers to equal text.
#ifndef TRIALRULES_SERVICE_UTIL_NUMBER_TEXT_H_
#define TRIALRULES_SERVICE_UTIL_NUMBER_TEXT_H_

#include <cstddef>
#include <string>

namespace trialrules {

// The longest text WriteShortestNumber gives: a shortest round-trip double
// is at most 24 characters ("-2.2250738585072014e-308").
inline constexpr size_t kMaxNumberText = 32;

// Writes at `out`, which has room for kMaxNumberText; returns the end.
// The same text as std::to_chars(value), faster for the whole numbers and
// the numbers of up to three decimals that clinical values mostly are.
char* WriteShortestNumber(double value, char* out);
void AppendShortestNumber(double value, std::string* out);
std::string ShortestNumber(double value);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_UTIL_NUMBER_TEXT_H_
