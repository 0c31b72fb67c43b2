#include "service/metrics/label_value.h"

#include "gtest/gtest.h"

namespace trialrules {
namespace {

TEST(SafeLabelValueTest, ValidUtf8IsKept) {
  EXPECT_EQ(SafeLabelValue("NCT04094766"), "NCT04094766");
  EXPECT_EQ(SafeLabelValue("Amendement n\xC2\xB0 3 \xE2\x80\x94 Z\xC3\xBCrich \xF0\x9F\xA7\xAC"),
            "Amendement n\xC2\xB0 3 \xE2\x80\x94 Z\xC3\xBCrich \xF0\x9F\xA7\xAC");
}

TEST(SafeLabelValueTest, EveryMalformedSequenceBecomesTheReplacementCharacter) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(SafeLabelValue("a\xFF" "b"), "a" + r + "b");          // never valid
  EXPECT_EQ(SafeLabelValue("\xC3"), r);                            // truncated
  EXPECT_EQ(SafeLabelValue("\xC3" "A"), r + "A");                  // bad continuation
  EXPECT_EQ(SafeLabelValue("\xC0\xAF"), r + r);                    // overlong '/'
  EXPECT_EQ(SafeLabelValue("\xE0\x80\xAF"), r + r + r);            // overlong, 3 bytes
  EXPECT_EQ(SafeLabelValue("\xED\xA0\x80"), r + r + r);            // surrogate
  EXPECT_EQ(SafeLabelValue("\xF4\x90\x80\x80"), r + r + r + r);    // above U+10FFFF
  EXPECT_EQ(SafeLabelValue("\x80"), r);                            // lone continuation
}

TEST(SafeLabelValueTest, ControlCharactersAreReplaced) {
  EXPECT_EQ(SafeLabelValue(std::string("a\nb\0c\x7F", 6)), "a?b?c?");
}

TEST(SafeLabelValueTest, CutOnACharacterBoundary) {
  EXPECT_EQ(SafeLabelValue("abcdef", 4), "abcd");
  EXPECT_EQ(SafeLabelValue("ab\xC3\xBC", 3), "ab");  // ü would straddle the limit
}

}  // namespace
}  // namespace trialrules
