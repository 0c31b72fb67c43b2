#include "service/metrics/label_value.h"

#include "service/util/utf8.h"

namespace trialrules {
std::string SafeLabelValue(absl::string_view value, size_t max_bytes) {
  static constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(value.size(), max_bytes));
  for (size_t i = 0; i < value.size();) {
    const size_t length = Utf8SequenceLength(value, i);
    absl::string_view piece =
        length == 0 ? kReplacement : value.substr(i, length);
    if (length == 1 && (static_cast<unsigned char>(value[i]) < 0x20 || value[i] == 0x7F)) {
      piece = "?";
    }
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece.data(), piece.size());
    i += length == 0 ? 1 : length;
  }
  return out;
}

}  // namespace trialrules
