#include "service/util/number_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>

namespace trialrules {

// std::to_chars's shortest round-trip search costs more than the rest of a
// decision's audit record, and most clinical values are whole or have one to
// three decimals. For those the shortest text is known without it:
//  - whole numbers below 10^5: no exponent form is shorter;
//  - below 10^9 with k = 1..3 decimals: if the decimal m / 10^k, correctly
//    rounded (one IEEE division), is the value, then k decimals read back as
//    the value, fewer do not (tried first), and the fixed form is never
//    longer than the exponent form (ties go to fixed, as in to_chars).
// number_text_test compares both ways over these ranges.
char* WriteShortestNumber(double value, char* out) {
  if (value > -1e5 && value < 1e5 && value == static_cast<int32_t>(value) &&
      !(value == 0 && std::signbit(value))) {
    return std::to_chars(out, out + kMaxNumberText, static_cast<int32_t>(value)).ptr;
  }
  if (value > -1e9 && value < 1e9 && value != std::trunc(value)) {
    int64_t scale = 1;
    for (int decimals = 1; decimals <= 3; ++decimals) {
      scale *= 10;
      const double scaled = std::nearbyint(value * static_cast<double>(scale));
      if (scaled / static_cast<double>(scale) != value) continue;
      const int64_t m = static_cast<int64_t>(scaled);
      uint64_t magnitude = m < 0 ? static_cast<uint64_t>(-m) : static_cast<uint64_t>(m);
      char digits[24];
      char* end = digits + sizeof digits;
      char* p = end;
      for (int d = 0; d < decimals; ++d, magnitude /= 10) {
        *--p = static_cast<char>('0' + magnitude % 10);
      }
      *--p = '.';
      do {
        *--p = static_cast<char>('0' + magnitude % 10);
        magnitude /= 10;
      } while (magnitude != 0);
      if (value < 0) *--p = '-';
      return std::copy(p, end, out);
    }
  }
  return std::to_chars(out, out + kMaxNumberText, value).ptr;
}

void AppendShortestNumber(double value, std::string* out) {
  char buffer[kMaxNumberText];
  out->append(buffer, WriteShortestNumber(value, buffer));
}

std::string ShortestNumber(double value) {
  std::string text;
  AppendShortestNumber(value, &text);
  return text;
}

}  // namespace trialrules
