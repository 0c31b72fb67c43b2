// Numbers as their shortest round-trip text.
#include <charconv>
#include <cstdint>

#include "gtest/gtest.h"
#include "service/util/number_text.h"

namespace trialrules {
namespace {

// Whole numbers and numbers with up to three decimals take shortcuts; they
// must print exactly what std::to_chars prints, over their ranges and just
// outside them.
TEST(NumberTextTest, ShortcutsAgreeWithToChars) {
  auto to_chars = [](double value) {
    char buffer[64];
    return std::string(buffer, std::to_chars(buffer, buffer + sizeof buffer, value).ptr);
  };
  auto canonical = [](double value) { return ShortestNumber(value); };
  for (int n = -100001; n <= 100001; ++n) {
    ASSERT_EQ(canonical(n), to_chars(n)) << n;
    ASSERT_EQ(canonical(n + 0.5), to_chars(n + 0.5)) << n;
  }
  for (double scale : {10.0, 100.0, 1000.0, 10000.0}) {
    for (int m = -300000; m <= 300000; ++m) {
      ASSERT_EQ(canonical(m / scale), to_chars(m / scale)) << m << "/" << scale;
    }
    // Large values, where a double's spacing nears the decimals.
    const int64_t low = 999000000LL * static_cast<int64_t>(scale);
    const int64_t high = 1001000000LL * static_cast<int64_t>(scale);
    for (int64_t m = low; m < high; m += (high - low) / 200000 + 1) {
      ASSERT_EQ(canonical(m / scale), to_chars(m / scale)) << m << "/" << scale;
    }
  }
  for (double value : {-0.0, 0.1, 0.001, -0.001, 0.0005, 1e5, 1e6, 2e9, 1e300, 5e-324,
                       99999.99999999999, 0.1 + 0.2, 1.0 / 3, 123456789.125, -987654321.5}) {
    EXPECT_EQ(canonical(value), to_chars(value)) << value;
  }
}

}  // namespace
}  // namespace trialrules
