// RFC 8785 canonical JSON against the RFC's own number samples and the test
// data of its authors' repository, github.com/cyberphone/json-canonicalization:
//   RFC 8785 Appendix B      IEEE-754 doubles and their ES6 serialization;
//   testdata/README.md       sample lines of the 100-million-line ES6 number
//                            file (hex-ieee,expected);
//   testdata/input, output   arrays, french, structures, unicode, values,
//                            weird.
// Then what I-JSON refuses, UTF-16 member order above U+FFFF, and the
// number layout over random doubles against a printf-based reference.
#include "service/audit/jcs.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace trialrules {
namespace {

std::string Number(double value) {
  std::string out;
  AppendJcsNumber(value, &out);
  return out;
}

std::string String(absl::string_view utf8) {
  std::string out;
  AppendJcsString(utf8, &out);
  return out;
}

std::string Canonical(absl::string_view json) {
  absl::StatusOr<std::string> canonical = CanonicalJson(json);
  EXPECT_TRUE(canonical.ok()) << json << ": " << canonical.status();
  return canonical.value_or("");
}

// The error CanonicalJson gives `json`; fails the test unless it is
// INVALID_ARGUMENT.
std::string Refusal(absl::string_view json) {
  absl::StatusOr<std::string> canonical = CanonicalJson(json);
  EXPECT_FALSE(canonical.ok()) << json << " gave " << canonical.value_or("");
  EXPECT_EQ(canonical.status().code(), absl::StatusCode::kInvalidArgument)
      << json << ": " << canonical.status();
  return std::string(canonical.status().message());
}

struct NumberSample {
  uint64_t bits;
  const char* expected;
};

// RFC 8785 Appendix B (its NaN and Infinity rows are errors: see
// NotJsonNumbersAreRefused).
TEST(JcsNumber, Rfc8785AppendixB) {
  const NumberSample samples[] = {
      {0x0000000000000000, "0"},
      {0x8000000000000000, "0"},
      {0x0000000000000001, "5e-324"},
      {0x8000000000000001, "-5e-324"},
      {0x7fefffffffffffff, "1.7976931348623157e+308"},
      {0xffefffffffffffff, "-1.7976931348623157e+308"},
      {0x4340000000000000, "9007199254740992"},
      {0xc340000000000000, "-9007199254740992"},
      {0x4430000000000000, "295147905179352830000"},
      {0x44b52d02c7e14af5, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6, "1e+23"},
      {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4e, "999999999999999700000"},
      {0x444b1ae4d6e2ef4f, "999999999999999900000"},
      {0x444b1ae4d6e2ef50, "1e+21"},
      {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8d, "0.000001"},
      {0x41b3de4355555553, "333333333.3333332"},
      {0x41b3de4355555554, "333333333.33333325"},
      {0x41b3de4355555555, "333333333.3333333"},
      {0x41b3de4355555556, "333333333.3333334"},
      {0x41b3de4355555557, "333333333.33333343"},
      {0xbecbf647612f3696, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959, "1424953923781206.2"},  // round to even
  };
  for (const NumberSample& sample : samples) {
    EXPECT_EQ(Number(std::bit_cast<double>(sample.bits)), sample.expected)
        << std::hex << sample.bits;
  }
}

// testdata/README.md sample lines of the ES6 number test file, and the
// draft's 444b1ae4d6e2ef51 row.
TEST(JcsNumber, Es6TestFileSamples) {
  const NumberSample samples[] = {
      {0x4340000000000001, "9007199254740994"},
      {0x4340000000000002, "9007199254740996"},
      {0x444b1ae4d6e2ef50, "1e+21"},
      {0x3eb0c6f7a0b5ed8d, "0.000001"},
      {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
      {0x8000000000000000, "0"},
      {0x0, "0"},
      {0x444b1ae4d6e2ef51, "1.0000000000000001e+21"},
  };
  for (const NumberSample& sample : samples) {
    EXPECT_EQ(Number(std::bit_cast<double>(sample.bits)), sample.expected)
        << std::hex << sample.bits;
  }
}

// The edges of ECMAScript's layouts: plain up to n = 21 digits before the
// point, 0.000001 down to n = -5, exponent form beyond.
TEST(JcsNumber, LayoutBoundaries) {
  EXPECT_EQ(Number(1), "1");
  EXPECT_EQ(Number(-1.5), "-1.5");
  EXPECT_EQ(Number(100), "100");
  EXPECT_EQ(Number(123.456), "123.456");
  EXPECT_EQ(Number(0.1), "0.1");
  EXPECT_EQ(Number(1e20), "100000000000000000000");
  EXPECT_EQ(Number(1e21), "1e+21");
  EXPECT_EQ(Number(1.5e21), "1.5e+21");
  EXPECT_EQ(Number(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(Number(1e-6), "0.000001");
  EXPECT_EQ(Number(1.25e-6), "0.00000125");
  EXPECT_EQ(Number(1e-7), "1e-7");
  EXPECT_EQ(Number(-1.25e-7), "-1.25e-7");
  EXPECT_EQ(Number(1e300), "1e+300");
  EXPECT_EQ(Number(2.2250738585072014e-308), "2.2250738585072014e-308");
  EXPECT_EQ(Number(-0.0), "0");
}

// The digits and layout of Number::toString, worked out another way:
// the fewest %.*e digits that read back as the value (glibc rounds
// correctly), laid out by the same ES rules. At a power of two the closest
// short decimal can fall outside the narrower lower half-interval, so
// there the reference may not be shortest; those values are only checked
// for reading back.
std::string ReferenceNumber(double value) {
  if (value == 0) return "0";
  std::string sign = value < 0 ? "-" : "";
  value = std::fabs(value);
  char text[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*e", precision - 1, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  std::string digits;
  const char* p = text;
  for (; *p != 'e'; ++p) {
    if (*p != '.') digits.push_back(*p);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int n = std::atoi(p + 1) + 1;
  const int k = static_cast<int>(digits.size());
  if (k <= n && n <= 21) return sign + digits + std::string(n - k, '0');
  if (0 < n && n <= 21) return sign + digits.substr(0, n) + "." + digits.substr(n);
  if (-6 < n && n <= 0) return sign + "0." + std::string(-n, '0') + digits;
  const std::string mantissa = k == 1 ? digits : digits.substr(0, 1) + "." + digits.substr(1);
  return sign + mantissa + "e" + (n - 1 >= 0 ? "+" : "-") + std::to_string(std::abs(n - 1));
}

TEST(JcsNumber, RandomDoublesMatchReferenceAndReadBack) {
  std::mt19937_64 random(8785);
  int compared = 0;
  for (int i = 0; i < 200000; ++i) {
    uint64_t bits = random();
    // Half the draws over every double, half over the range of clinical
    // values, where the plain layouts are.
    if (i % 2 == 1) {
      bits = std::bit_cast<uint64_t>(std::ldexp(static_cast<double>(bits >> 11), -53) *
                                     std::pow(10.0, static_cast<int>(bits % 30) - 10));
    }
    const double value = std::bit_cast<double>(bits);
    if (!std::isfinite(value)) continue;
    const std::string text = Number(value);
    double back = 0;
    ASSERT_EQ(std::from_chars(text.data(), text.data() + text.size(), back).ec, std::errc())
        << text;
    ASSERT_EQ(back, value == 0 ? 0.0 : value) << std::hex << bits << " " << text;
    if ((bits & 0x000fffffffffffff) == 0) continue;
    ASSERT_EQ(text, ReferenceNumber(value)) << std::hex << bits;
    ++compared;
  }
  EXPECT_GT(compared, 190000);
}

TEST(JcsNumber, InCanonicalJson) {
  EXPECT_EQ(Canonical("-0"), "0");
  EXPECT_EQ(Canonical("-0.0"), "0");
  EXPECT_EQ(Canonical("[0e10,-0E-3]"), "[0,0]");
  EXPECT_EQ(Canonical("1E30"), "1e+30");
  EXPECT_EQ(Canonical("4.50"), "4.5");
  EXPECT_EQ(Canonical("1e-400"), "0");  // underflows to 0, as in JSON.parse
  EXPECT_EQ(Canonical("0.000000000000000000000000001"), "1e-27");
  // Integers are doubles too: past 2^53 they round to the nearest one.
  EXPECT_EQ(Canonical("9007199254740993"), "9007199254740992");
  EXPECT_EQ(Canonical("-9007199254740995"), "-9007199254740996");
  EXPECT_EQ(Canonical("9223372036854775807"), "9223372036854776000");  // int64 max
  EXPECT_EQ(Canonical("-9223372036854775808"), "-9223372036854776000");
  EXPECT_EQ(Canonical("18446744073709551615"), "18446744073709552000");  // uint64 max
  // Beyond 64 bits simdjson refuses them; they are read as doubles instead.
  EXPECT_EQ(Canonical("18446744073709551616"), "18446744073709552000");
  EXPECT_EQ(Canonical("-9999999999999999999"), "-10000000000000000000");
  EXPECT_EQ(Canonical("[1, 123456789012345678901234, {\"n\": -1000000000000000000000000}]"),
            "[1,1.2345678901234569e+23,{\"n\":-1e+24}]");
  EXPECT_EQ(Canonical("[\"123456789012345678901234\",123456789012345678901234]"),
            "[\"123456789012345678901234\",1.2345678901234569e+23]");
}

TEST(JcsNumber, NotJsonNumbersAreRefused) {
  EXPECT_NE(Refusal("[1, 1e400]").find("\"1e400\" at byte 4 is beyond the range of a double"),
            std::string::npos);
  EXPECT_NE(Refusal("-1E+999").find("beyond the range"), std::string::npos);
  EXPECT_NE(Refusal("[01]").find("malformed number \"01\" at byte 1"), std::string::npos);
  EXPECT_NE(Refusal("{\"a\": 1.}").find("malformed number \"1.\" at byte 6"),
            std::string::npos);
  EXPECT_NE(Refusal("[-Infinity]").find("malformed number"), std::string::npos);
  Refusal("NaN");
  Refusal("Infinity");
  Refusal("[.5]");
  Refusal("[+1]");
  Refusal("[0x10]");
  Refusal("[1e]");
}

TEST(JcsString, EscapesOnlyQuoteBackslashAndControls) {
  EXPECT_EQ(String(""), "\"\"");
  EXPECT_EQ(String("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
  EXPECT_EQ(String("\b\t\n\f\r"), "\"\\b\\t\\n\\f\\r\"");
  EXPECT_EQ(String(absl::string_view("\0\x01\x0b\x0e\x1f", 5)),
            "\"\\u0000\\u0001\\u000b\\u000e\\u001f\"");
  EXPECT_EQ(String("\x7f"), "\"\x7f\"");  // DEL is not a JSON control
  EXPECT_EQ(String("€ö😂\xe2\x80\xa8"), "\"€ö😂\xe2\x80\xa8\"");  // U+2028 too
  for (int c = 0; c < 0x20; ++c) {
    const std::string escaped = String(std::string(1, static_cast<char>(c)));
    EXPECT_EQ(escaped.front(), '"');
    EXPECT_EQ(escaped[1], '\\') << c;
    EXPECT_TRUE(escaped.size() == 4 || escaped.size() == 8) << c;
  }
}

TEST(JcsString, InCanonicalJson) {
  EXPECT_EQ(Canonical(R"("\u0041\/\u00e9\u20AC\ud83d\ude00")"), "\"A/é€😀\"");
  EXPECT_EQ(Canonical(R"("\u0000\u001F\u007f")"), "\"\\u0000\\u001f\x7f\"");
  EXPECT_EQ(Canonical(R"("\"\\")"), R"("\"\\")");
  EXPECT_EQ(Canonical(R"({"\u0000":"x"})"), R"({"\u0000":"x"})");
}

struct TestFile {
  const char* name;
  const char* input;
  const char* output;
};

// testdata/input/*.json and testdata/output/*.json. The copy read had no
// output/arrays.json; its text follows from the rules ("1" < "10" < "d").
// In weird.json the key "\u0080" and the value's trailing "\u007f" are
// raw in the output.
const TestFile kTestFiles[] = {
    {"arrays",
     "[\n  56,\n  {\n    \"d\": true,\n    \"10\": null,\n    \"1\": [ ]\n  }\n]",
     R"([56,{"1":[],"10":null,"d":true}])"},
    {"french",
     "{\n  \"peach\": \"This sorting order\",\n  \"péché\": \"is wrong according to "
     "French\",\n  \"pêche\": \"but canonicalization MUST\",\n  \"sin\":   \"ingnore "
     "locale\"\n}\n",
     R"({"peach":"This sorting order","péché":"is wrong according to French",)"
     R"("pêche":"but canonicalization MUST","sin":"ingnore locale"})"},
    {"structures",
     "{\n  \"1\": {\"f\": {\"f\": \"hi\",\"F\": 5} ,\"\\n\": 56.0},\n  \"10\": { },\n  "
     "\"\": \"empty\",\n  \"a\": { },\n  \"111\": [ { } ],\n  \"A\": { }\n}",
     R"({"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}})"},
    {"unicode", "{\n  \"Unnormalized Unicode\":\"\\u1e0d\\u0307\"\n}\n",
     "{\"Unnormalized Unicode\":\"\xe1\xb8\x8d\xcc\x87\"}"},
    {"values",
     "{\n  \"numbers\": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],\n"
     "  \"escaping\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
     "  \"literals\": [null, true, false]\n}",
     R"({"escaping":"€$\u000f\nA'B\"\\\\\"/","literals":[null,true,false],)"
     R"("numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]})"},
    {"weird",
     "{\n  \"\\u20ac\": \"Euro Sign\",\n  \"1\": \"One\",\n  \"\\u0080\": \"Control\\u007f\",\n"
     "  \"\\ud83d\\ude02\": \"Smiley\",\n  \"\\u00f6\": \"Latin Small Letter O With "
     "Diaeresis\",\n  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n  \"</script>\": "
     "\"Browser Challenge\"\n}\n",
     "{\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\xc2\x80\":\"Control\x7f\","
     "\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\","
     "\"😂\":\"Smiley\",\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}"},
};

TEST(CanonicalJson, CyberphoneTestData) {
  for (const TestFile& file : kTestFiles) {
    EXPECT_EQ(Canonical(file.input), file.output) << file.name;
    EXPECT_EQ(Canonical(file.output), file.output) << file.name;
    EXPECT_TRUE(IsCanonicalJson(file.output)) << file.name;
    EXPECT_FALSE(IsCanonicalJson(file.input)) << file.name;
  }
}

TEST(CanonicalJson, ScalarsAtTheTopLevel) {
  EXPECT_EQ(Canonical(" true "), "true");
  EXPECT_EQ(Canonical("false"), "false");
  EXPECT_EQ(Canonical("\nnull\t"), "null");
  EXPECT_EQ(Canonical("\"x\""), "\"x\"");
  EXPECT_EQ(Canonical("[ ]"), "[]");
  EXPECT_EQ(Canonical("{ }"), "{}");
}

TEST(CanonicalJson, NestedObjectsAreSortedAndArraysKeepTheirOrder) {
  EXPECT_EQ(Canonical(R"({"b": [3, 1, {"z": 1, "y": {"d": 0, "c": 0}}], "a": {"b": 1, "a": 2}})"),
            R"({"a":{"a":2,"b":1},"b":[3,1,{"y":{"c":0,"d":0},"z":1}]})");
  // A name sorts before every longer name it begins.
  EXPECT_EQ(Canonical(R"({"ab":1,"a":2,"abc":3,"":4})"), R"({"":4,"a":2,"ab":1,"abc":3})");
}

// UTF-16 code units, not code points or UTF-8 bytes: U+10000 and above are
// surrogate pairs, D800-DBFF, and so sort between U+D7FF and U+E000.
TEST(CanonicalJson, MembersSortByUtf16CodeUnits) {
  EXPECT_EQ(Canonical(R"({"\uffff":1,"\ud800\udc00":2,"\ue000":3,"\ud7ff":4,"\u0080":5,"z":6})"),
            "{\"z\":6,\"\xc2\x80\":5,\"\xed\x9f\xbf\":4,\"\xf0\x90\x80\x80\":2,"
            "\"\xee\x80\x80\":3,\"\xef\xbf\xbf\":1}");
  // The difference inside a shared lead byte, and after a shared prefix.
  EXPECT_EQ(Canonical(R"({"x\ufb33":1,"x\ud83d\ude02":2,"x\ue001":3,"x\ue000":4})"),
            "{\"x😂\":2,\"x\xee\x80\x80\":4,\"x\xee\x80\x81\":3,\"x\xef\xac\xb3\":1}");
  EXPECT_EQ(Canonical(R"({"\ud83d\ude03":1,"\ud83d\ude02":2,"\ud83c\udf00":3})"),
            "{\"\xf0\x9f\x8c\x80\":3,\"😂\":2,\"\xf0\x9f\x98\x83\":1}");
}

TEST(CanonicalJson, DuplicateMemberNamesAreRefused) {
  EXPECT_EQ(Refusal(R"({"a":1,"b":2,"a":3})"),
            "duplicate member name \"a\" in the object at the top level");
  // The same name however it was escaped.
  EXPECT_EQ(Refusal(R"({"\u00e9":1,"é":2})"),
            "duplicate member name \"é\" in the object at the top level");
  EXPECT_EQ(Refusal(R"({"x":[0,{"a/b":{"n":1,"n":1}}]})"),
            "duplicate member name \"n\" in the object at /x/1/a~1b");
  EXPECT_EQ(Canonical(R"({"a":{"a":1},"b":{"a":1}})"), R"({"a":{"a":1},"b":{"a":1}})");
}

TEST(CanonicalJson, InvalidUtf8IsRefused) {
  EXPECT_EQ(Refusal("\"ab\xff\""), "invalid UTF-8 at byte 3");
  EXPECT_EQ(Refusal("{\"a\":\"\xc0\xaf\"}"), "invalid UTF-8 at byte 6");  // overlong '/'
  EXPECT_EQ(Refusal("[\"\xed\xa0\x80\"]"), "invalid UTF-8 at byte 2");    // a surrogate
  EXPECT_EQ(Refusal("\"\xf4\x90\x80\x80\""), "invalid UTF-8 at byte 1");  // above U+10FFFF
  EXPECT_EQ(Refusal("\"\xe2\x82\""), "invalid UTF-8 at byte 1");          // cut short
  // Escaped lone surrogates are no UTF-8 either.
  EXPECT_NE(Refusal(R"("\ud800")").find("lone surrogate"), std::string::npos);
  EXPECT_NE(Refusal(R"("\udc00\ud800")").find("lone surrogate"), std::string::npos);
}

TEST(CanonicalJson, MalformedJsonIsRefused) {
  for (const char* json : {"", "  ", "[1,]", "{\"a\"}", "{\"a\":1,}", "{a:1}", "[1] x", "1 2",
                           "'a'", "\"a", "[", "tru", "\xef\xbb\xbf{}", "\"\x01\"",
                           R"("\x41")"}) {
    EXPECT_NE(Refusal(json).find("malformed"), std::string::npos) << json;
  }
}

TEST(IsCanonicalJson, OnlyTheCanonicalTextItself) {
  EXPECT_TRUE(IsCanonicalJson(R"({"a":[1,2.5,"x"],"b":{"c":null}})"));
  EXPECT_TRUE(IsCanonicalJson("0"));
  EXPECT_TRUE(IsCanonicalJson(R"("\u001f")"));
  EXPECT_FALSE(IsCanonicalJson(R"({"a": [1,2.5,"x"],"b":{"c":null}})"));   // whitespace
  EXPECT_FALSE(IsCanonicalJson("{\"a\":1}\n"));                               // trailing newline
  EXPECT_FALSE(IsCanonicalJson(R"({"b":{"c":null},"a":[1,2.5,"x"]})"));     // unsorted
  EXPECT_FALSE(IsCanonicalJson(R"({"a":{"d":1,"c":2}})"));                   // nested unsorted
  EXPECT_FALSE(IsCanonicalJson(R"("\u0041")"));                              // needless escape
  EXPECT_FALSE(IsCanonicalJson(R"("a\/b")"));
  EXPECT_FALSE(IsCanonicalJson(R"("\u001F")"));                              // upper-case hex
  EXPECT_FALSE(IsCanonicalJson(R"("\u000a")"));                              // not \n
  EXPECT_FALSE(IsCanonicalJson("[1.0]"));
  EXPECT_FALSE(IsCanonicalJson("[1E2]"));
  EXPECT_FALSE(IsCanonicalJson("-0"));
  EXPECT_FALSE(IsCanonicalJson(R"({"a":1,"a":1})"));                         // duplicate
  EXPECT_FALSE(IsCanonicalJson("\"\xff\""));
  EXPECT_FALSE(IsCanonicalJson(""));
}

}  // namespace
}  // namespace trialrules
