#include "service/util/dates.h"

#include "absl/time/civil_time.h"

#include "gtest/gtest.h"

namespace trialrules {
namespace {

TEST(DatesTest, EpochIsDayZero) {
  EXPECT_EQ(*ParseIsoDate("1970-01-01"), 0);
  EXPECT_EQ(*ParseIsoDate("1969-12-31"), -1);
}

TEST(DatesTest, DifferencesCountLeapDays) {
  // 2020 is a leap year: 29 February exists and counts.
  EXPECT_EQ(*ParseIsoDate("2020-03-01") - *ParseIsoDate("2020-02-28"), 2);
  EXPECT_EQ(*ParseIsoDate("2019-03-01") - *ParseIsoDate("2019-02-28"), 1);
  EXPECT_EQ(*ParseIsoDate("2021-01-01") - *ParseIsoDate("2020-01-01"), 366);
  EXPECT_EQ(*ParseIsoDate("2020-01-01") - *ParseIsoDate("2019-01-01"), 365);
  // 2000 is a leap year (divisible by 400); 1900 and 2100 are not.
  EXPECT_EQ(*ParseIsoDate("2000-03-01") - *ParseIsoDate("2000-02-28"), 2);
  EXPECT_EQ(*ParseIsoDate("2100-03-01") - *ParseIsoDate("2100-02-28"), 1);
}

TEST(DatesTest, RefusesImpossibleDates) {
  for (const char* text : {"2019-02-29", "1900-02-29", "2100-02-29",
                            "2020-04-31", "2020-13-01", "2020-00-10",
                            "2020-01-00", "2020-01-32"}) {
    absl::StatusOr<DayNumber> day = ParseIsoDate(text);
    ASSERT_FALSE(day.ok()) << text;
    EXPECT_EQ(day.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(day.status().message(),
              std::string("\"") + text + "\" is not a real calendar date");
  }
  EXPECT_TRUE(ParseIsoDate("2020-02-29").ok());
  EXPECT_TRUE(ParseIsoDate("2000-02-29").ok());
}

TEST(DatesTest, RefusesOtherShapes) {
  for (const char* text : {"2020-1-01", "20200101", "2020/01/01", "",
                           "2020-01-01T00:00", " 2020-01-01", "+020-01-01"}) {
    EXPECT_FALSE(ParseIsoDate(text).ok()) << text;
  }
}

TEST(DatesTest, FormatsWhatItParses) {
  for (const char* text : {"1900-01-01", "2020-02-29", "2199-12-31", "1970-01-01"}) {
    EXPECT_EQ(FormatIsoDate(*ParseIsoDate(text)), text);
  }
}

// The day arithmetic is done by hand (for speed): it must agree with
// Abseil's civil time on every day a date fact can take.
TEST(DatesTest, AgreesWithAbseilOnEveryDayOfYears1000To9999) {
  const absl::CivilDay epoch(1970, 1, 1);
  int checked = 0;
  for (absl::CivilDay day(1000, 1, 1); day <= absl::CivilDay(9999, 12, 31); ++day) {
    const std::string text = absl::FormatCivilTime(day);
    const absl::StatusOr<DayNumber> parsed = ParseIsoDate(text);
    ASSERT_TRUE(parsed.ok()) << text;
    ASSERT_EQ(*parsed, day - epoch) << text;
    ASSERT_EQ(FormatIsoDate(static_cast<DayNumber>(day - epoch)), text);
    ++checked;
  }
  EXPECT_EQ(checked, 3287182);
}

}  // namespace
}  // namespace trialrules
