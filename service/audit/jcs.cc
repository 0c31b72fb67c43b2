#include "service/audit/jcs.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "service/util/utf8.h"
#include "simdjson.h"

namespace trialrules {
namespace {

namespace dom = simdjson::dom;

// Debian's Abseil has its own string_view; simdjson hands out std's.
absl::string_view View(std::string_view text) { return {text.data(), text.size()}; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// RFC 8785 3.2.3 sorts member names by UTF-16 code units, as JavaScript
// does. Sorting UTF-8 bytes gives code point order, which is the same but
// for one thing: characters above U+FFFF are surrogate pairs (D800-DBFF
// first) in UTF-16, so they sort before U+E000-U+FFFF there and after them
// in UTF-8. Two names that agree up to a byte are at the same character
// boundary, so the first differing bytes are either lead bytes or inside
// characters with the same lead byte (the same range); only a four-byte
// lead (F0-F4) against a lead of U+E000-U+FFFF (EE, EF) reverses.
bool Utf16Less(absl::string_view a, absl::string_view b) {
  const size_t common = std::min(a.size(), b.size());
  const auto [in_a, in_b] = std::mismatch(a.begin(), a.begin() + common, b.begin());
  if (in_a == a.begin() + common) return a.size() < b.size();
  const auto x = static_cast<unsigned char>(*in_a);
  const auto y = static_cast<unsigned char>(*in_b);
  const auto above_ffff = [](unsigned char lead) { return lead >= 0xF0; };
  const auto e000_to_ffff = [](unsigned char lead) { return lead == 0xEE || lead == 0xEF; };
  if (above_ffff(x) && e000_to_ffff(y)) return true;
  if (e000_to_ffff(x) && above_ffff(y)) return false;
  return x < y;
}

// A member name or an array index on the way down to a value, kept only so
// that an error can say where it is.
struct PathStep {
  absl::string_view member;
  size_t index = 0;
  bool is_index = false;
};

class Canonicalizer {
 public:
  explicit Canonicalizer(std::string* out) : out_(out) {}

  absl::Status Append(dom::element value) {
    switch (value.type()) {
      case dom::element_type::OBJECT:
        return AppendObject(value.get_object().value_unsafe());
      case dom::element_type::ARRAY:
        return AppendArray(value.get_array().value_unsafe());
      case dom::element_type::STRING:
        AppendJcsString(View(value.get_string().value_unsafe()), out_);
        return absl::OkStatus();
      // JCS reads every number as a double, so an integer beyond 2^53
      // comes out as its nearest double, as in JavaScript (the conversion
      // rounds to nearest, ties to even, on every target we build for).
      case dom::element_type::INT64:
        return AppendNumber(static_cast<double>(value.get_int64().value_unsafe()));
      case dom::element_type::UINT64:
        return AppendNumber(static_cast<double>(value.get_uint64().value_unsafe()));
      case dom::element_type::DOUBLE:
        return AppendNumber(value.get_double().value_unsafe());
      case dom::element_type::BOOL:
        out_->append(value.get_bool().value_unsafe() ? "true" : "false");
        return absl::OkStatus();
      case dom::element_type::NULL_VALUE:
        out_->append("null");
        return absl::OkStatus();
    }
    return absl::InternalError(absl::StrCat("JSON value of unknown type ", Where()));
  }

 private:
  absl::Status AppendObject(dom::object object) {
    std::vector<std::pair<absl::string_view, dom::element>> members;
    members.reserve(object.size());
    for (dom::key_value_pair member : object) {
      members.emplace_back(View(member.key), member.value);
    }
    std::sort(members.begin(), members.end(),
              [](const auto& a, const auto& b) { return Utf16Less(a.first, b.first); });
    // simdjson keeps every member of an object; I-JSON refuses repeats,
    // which readers resolve differently (first wins, last wins) and so
    // could read a signed record as something it does not say.
    const auto repeat = std::adjacent_find(
        members.begin(), members.end(),
        [](const auto& a, const auto& b) { return a.first == b.first; });
    if (repeat != members.end()) {
      std::string name;
      AppendJcsString(repeat->first, &name);
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate member name ", name, " in the object ", Where()));
    }
    out_->push_back('{');
    for (size_t i = 0; i < members.size(); ++i) {
      if (i > 0) out_->push_back(',');
      AppendJcsString(members[i].first, out_);
      out_->push_back(':');
      path_.push_back({.member = members[i].first, .index = 0, .is_index = false});
      if (absl::Status status = Append(members[i].second); !status.ok()) return status;
      path_.pop_back();
    }
    out_->push_back('}');
    return absl::OkStatus();
  }

  absl::Status AppendArray(dom::array array) {
    out_->push_back('[');
    size_t index = 0;
    for (dom::element element : array) {
      if (index > 0) out_->push_back(',');
      path_.push_back({.member = {}, .index = index, .is_index = true});
      if (absl::Status status = Append(element); !status.ok()) return status;
      path_.pop_back();
      ++index;
    }
    out_->push_back(']');
    return absl::OkStatus();
  }

  absl::Status AppendNumber(double value) {
    // simdjson already refuses numbers that overflow a double; kept so
    // that no other source of doubles can write NaN or Infinity, which
    // JSON cannot carry.
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("number ", Where(), " is not a finite double"));
    }
    AppendJcsNumber(value, out_);
    return absl::OkStatus();
  }

  // The RFC 6901 JSON Pointer of the value being written.
  std::string Where() const {
    if (path_.empty()) return "at the top level";
    std::string where = "at ";
    for (const PathStep& step : path_) {
      where.push_back('/');
      if (step.is_index) {
        absl::StrAppend(&where, step.index);
        continue;
      }
      for (char c : step.member) {
        if (c == '~') {
          where.append("~0");
        } else if (c == '/') {
          where.append("~1");
        } else {
          where.push_back(c);
        }
      }
    }
    return where;
  }

  std::string* out_;
  std::vector<PathStep> path_;
};

// A maximal run of number characters outside string literals, at byte `at`.
struct NumberToken {
  size_t at;
  absl::string_view text;
};

// The number-like tokens of `json`, found without parsing it: only for
// explaining a number simdjson refused (it names no position), so a
// string literal is skipped by its quotes and escapes alone.
std::vector<NumberToken> NumberTokens(absl::string_view json) {
  const auto in_token = [](char c) {
    return IsDigit(c) || IsLetter(c) || c == '.' || c == '+' || c == '-';
  };
  std::vector<NumberToken> tokens;
  size_t i = 0;
  while (i < json.size()) {
    const char c = json[i];
    if (c == '"') {
      for (++i; i < json.size() && json[i] != '"'; ++i) {
        if (json[i] == '\\') ++i;
      }
      ++i;
    } else if (IsDigit(c) || c == '-' || IsLetter(c)) {
      size_t end = i + 1;
      while (end < json.size() && in_token(json[end])) ++end;
      if (!IsLetter(c)) tokens.push_back({i, json.substr(i, end - i)});
      i = end;
    } else {
      ++i;
    }
  }
  return tokens;
}

// RFC 8259 section 6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(absl::string_view text, bool* is_integer) {
  size_t i = 0;
  const auto digits = [&] {
    const size_t start = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    return i - start;
  };
  if (i < text.size() && text[i] == '-') ++i;
  const size_t integer_start = i;
  const size_t integer_digits = digits();
  if (integer_digits == 0 || (integer_digits > 1 && text[integer_start] == '0')) return false;
  *is_integer = i == text.size();
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == text.size();
}

bool FitsInt64OrUint64(absl::string_view integer) {
  const char* end = integer.data() + integer.size();
  if (integer.front() == '-') {
    int64_t value;
    return std::from_chars(integer.data(), end, value).ec == std::errc();
  }
  uint64_t value;
  return std::from_chars(integer.data(), end, value).ec == std::errc();
}

std::string Excerpt(absl::string_view text) {
  constexpr size_t kMax = 40;
  if (text.size() <= kMax) return std::string(text);
  return absl::StrCat(text.substr(0, kMax), "...");
}

// simdjson refuses integers beyond 64 bits, which JCS reads as doubles like
// any other number. Returns `json` with "e0" after each such integer, which
// simdjson then reads as the correctly rounded double; or the error to
// report for the number simdjson refused.
absl::StatusOr<std::string> WithLargeIntegersAsDoubles(absl::string_view json,
                                                       dom::parser& parser) {
  std::string rewritten;
  size_t copied = 0;
  for (const NumberToken& token : NumberTokens(json)) {
    bool is_integer = false;
    if (!IsJsonNumber(token.text, &is_integer)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed number \"", Excerpt(token.text), "\" at byte ", token.at));
    }
    if (is_integer) {
      if (FitsInt64OrUint64(token.text)) continue;
      const size_t end = token.at + token.text.size();
      absl::StrAppend(&rewritten, json.substr(copied, end - copied), "e0");
      copied = end;
      continue;
    }
    const simdjson::padded_string alone(token.text.data(), token.text.size());
    if (parser.parse(alone).error() == simdjson::NUMBER_ERROR) {
      return absl::InvalidArgumentError(absl::StrCat(
          "number \"", Excerpt(token.text), "\" at byte ", token.at,
          " is beyond the range of a double"));
    }
  }
  if (copied == 0) {
    return absl::InvalidArgumentError("malformed JSON: a number simdjson could not read");
  }
  absl::StrAppend(&rewritten, json.substr(copied));
  return rewritten;
}

absl::Status ParseError(absl::string_view json, simdjson::error_code error) {
  if (error == simdjson::UTF8_ERROR) {
    size_t at = 0;
    while (at < json.size()) {
      const size_t length = Utf8SequenceLength(json, at);
      if (length == 0) break;
      at += length;
    }
    return absl::InvalidArgumentError(absl::StrCat("invalid UTF-8 at byte ", at));
  }
  if (error == simdjson::STRING_ERROR) {
    return absl::InvalidArgumentError(
        "malformed JSON: a string has an invalid escape (an unknown escape, or a \\u "
        "escape of a lone surrogate, which is not UTF-8)");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("malformed JSON: ", simdjson::error_message(error)));
}

}  // namespace

absl::StatusOr<std::string> CanonicalJson(absl::string_view json) {
  // One parser per thread: a new parser allocates (and the kernel zeroes)
  // buffers for its maximum depth, which cost more than the parse of a
  // record when a verifier reads a million of them.
  thread_local dom::parser parser;
  dom::element root;
  simdjson::padded_string padded(json.data(), json.size());
  simdjson::error_code error = parser.parse(padded).get(root);
  if (error == simdjson::NUMBER_ERROR) {
    absl::StatusOr<std::string> rewritten = WithLargeIntegersAsDoubles(json, parser);
    if (!rewritten.ok()) return rewritten.status();
    padded = simdjson::padded_string(*rewritten);
    error = parser.parse(padded).get(root);
  }
  if (error != simdjson::SUCCESS) return ParseError(json, error);

  std::string out;
  out.reserve(json.size());
  if (absl::Status status = Canonicalizer(&out).Append(root); !status.ok()) return status;
  return out;
}

bool IsCanonicalJson(absl::string_view json) {
  absl::StatusOr<std::string> canonical = CanonicalJson(json);
  return canonical.ok() && absl::string_view(*canonical) == json;
}

void AppendJcsNumber(double value, std::string* out) {
  if (value == 0) {  // -0 too: ECMAScript prints it as "0"
    out->push_back('0');
    return;
  }
  if (value < 0) {
    out->push_back('-');
    value = -value;
  }
  // The shortest digits that read back as `value`, nearest to it when
  // several are as short, which is the digit string ECMAScript asks for;
  // only the layout differs. Scientific form is d[.ddd]e(+|-)xx.
  char text[32];
  char* const end =
      std::to_chars(text, text + sizeof(text), value, std::chars_format::scientific).ptr;
  const char* const e = std::find(text, end, 'e');
  char digit_buffer[20];
  size_t digit_count = 0;
  digit_buffer[digit_count++] = text[0];
  for (const char* p = text + 2; p < e; ++p) digit_buffer[digit_count++] = *p;
  const absl::string_view digits(digit_buffer, digit_count);
  int exponent = 0;
  for (const char* p = e + 2; p < end; ++p) exponent = exponent * 10 + (*p - '0');
  if (e[1] == '-') exponent = -exponent;

  // ECMAScript's k and n: value = digits × 10^(n−k).
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;
  if (k <= n && n <= 21) {
    absl::StrAppend(out, digits);
    out->append(n - k, '0');
  } else if (0 < n && n <= 21) {
    absl::StrAppend(out, digits.substr(0, n), ".", digits.substr(n));
  } else if (-6 < n && n <= 0) {
    out->append("0.");
    out->append(-n, '0');
    absl::StrAppend(out, digits);
  } else {
    out->push_back(digits[0]);
    if (k > 1) {
      absl::StrAppend(out, ".", digits.substr(1));
    }
    out->push_back('e');
    out->push_back(n - 1 >= 0 ? '+' : '-');
    absl::StrAppend(out, std::abs(n - 1));
  }
}

void AppendJcsString(absl::string_view utf8, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t unescaped = 0;  // start of the run not yet written
  for (size_t i = 0; i < utf8.size(); ++i) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(utf8.data() + unescaped, i - unescaped);
    unescaped = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\f': out->append("\\f"); break;
      case '\r': out->append("\\r"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
    }
  }
  out->append(utf8.data() + unescaped, utf8.size() - unescaped);
  out->push_back('"');
}

}  // namespace trialrules
