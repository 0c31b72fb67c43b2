#include "service/engine/coverage.h"

#include "absl/strings/ascii.h"

namespace trialrules {
namespace {

bool IsComparisonAt(absl::string_view text, size_t i, size_t* length) {
  const char c = text[i];
  const char next = i + 1 < text.size() ? text[i + 1] : '\0';
  if ((c == '<' || c == '>' || c == '=' || c == '!') && next == '=') {
    *length = 2;
    return true;
  }
  if (c == '<' || c == '>') {
    *length = 1;
    return true;
  }
  return false;
}

// Where an operand that starts (or ends) at `from` stops, scanning in
// `step` direction at its own nesting depth.
size_t OperandEnd(absl::string_view text, size_t from, int step) {
  int depth = 0;
  size_t i = from;
  while (i < text.size()) {
    const char c = text[i];
    if (c == (step > 0 ? '(' : ')')) ++depth;
    if (c == (step > 0 ? ')' : '(')) {
      if (depth == 0) return i;
      --depth;
    }
    if (depth == 0) {
      if (c == ',') return i;
      const char other = step > 0 ? (i + 1 < text.size() ? text[i + 1] : '\0')
                                  : (i > 0 ? text[i - 1] : '\0');
      if ((c == '&' && other == '&') || (c == '|' && other == '|')) return i;
    }
    if (i == 0 && step < 0) return static_cast<size_t>(-1);
    i += step;
  }
  return text.size();
}

}  // namespace

std::vector<Comparison> ComparisonsIn(absl::string_view expression) {
  std::vector<Comparison> comparisons;
  for (size_t i = 0; i < expression.size(); ++i) {
    size_t length = 0;
    if (!IsComparisonAt(expression, i, &length)) continue;
    const size_t before = i == 0 ? static_cast<size_t>(-1) : OperandEnd(expression, i - 1, -1);
    const size_t start = before == static_cast<size_t>(-1) ? 0 : before + 1;
    const size_t end = OperandEnd(expression, i + length, +1);
    Comparison comparison;
    comparison.lhs = std::string(absl::StripAsciiWhitespace(expression.substr(start, i - start)));
    comparison.rhs = std::string(
        absl::StripAsciiWhitespace(expression.substr(i + length, end - i - length)));
    comparison.text = std::string(absl::StripAsciiWhitespace(expression.substr(start, end - start)));
    // A leading '!' binds to the left operand alone: `!a < b` is not `a < b`.
    if (!comparison.lhs.empty() && !comparison.rhs.empty() && comparison.lhs[0] != '!') {
      comparisons.push_back(std::move(comparison));
    }
    i += length - 1;
  }
  return comparisons;
}

}  // namespace trialrules
