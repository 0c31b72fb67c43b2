#include "service/util/dates.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/civil_time.h"

namespace trialrules {
namespace {

bool IsLeapYear(int year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

bool ParseDigits(absl::string_view text, int* out) {
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *out = value;
  return true;
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian,
// eras of 400 years): a few integer operations, where absl::CivilDay
// normalises field by field. Audit lines and bulk screening convert a date
// per date fact per patient.
DayNumber DaysFromCivil(int year, int month, int day) {
  year -= month <= 2;
  const int era = (year >= 0 ? year : year - 399) / 400;
  const int year_of_era = year - era * 400;
  const int day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return static_cast<DayNumber>(era) * 146097 + day_of_era - 719468;
}

struct CivilDate {
  int64_t year;
  int month;
  int day;
};

CivilDate CivilFromDays(DayNumber days) {
  const int64_t z = static_cast<int64_t>(days) + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t day_of_era = z - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t mp = (5 * day_of_year + 2) / 153;
  const int day = static_cast<int>(day_of_year - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {year_of_era + era * 400 + (month <= 2), month, day};
}

}  // namespace

absl::StatusOr<DayNumber> ParseIsoDate(absl::string_view text) {
  int year = 0, month = 0, day = 0;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' ||
      !ParseDigits(text.substr(0, 4), &year) ||
      !ParseDigits(text.substr(5, 2), &month) ||
      !ParseDigits(text.substr(8, 2), &day)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a date of the form YYYY-MM-DD"));
  }
  if (year < 1000 || month < 1 || month > 12 || day < 1 ||
      day > DaysInMonth(year, month)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a real calendar date"));
  }
  return DaysFromCivil(year, month, day);
}

void AppendIsoDate(DayNumber day, std::string* out) {
  const CivilDate civil = CivilFromDays(day);
  if (civil.year < 0 || civil.year > 9999) {
    absl::StrAppendFormat(out, "%04d-%02d-%02d", civil.year, civil.month, civil.day);
    return;
  }
  // Formatted by hand: audit lines format a date per fact per decision.
  const int year = static_cast<int>(civil.year);
  const char text[10] = {static_cast<char>('0' + year / 1000),
                         static_cast<char>('0' + year / 100 % 10),
                         static_cast<char>('0' + year / 10 % 10),
                         static_cast<char>('0' + year % 10),
                         '-',
                         static_cast<char>('0' + civil.month / 10),
                         static_cast<char>('0' + civil.month % 10),
                         '-',
                         static_cast<char>('0' + civil.day / 10),
                         static_cast<char>('0' + civil.day % 10)};
  out->append(text, sizeof text);
}

std::string FormatIsoDate(DayNumber day) {
  std::string text;
  AppendIsoDate(day, &text);
  return text;
}

DayNumber TodayUtc() {
  return static_cast<DayNumber>(absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) -
                                absl::CivilDay(1970, 1, 1));
}

}  // namespace trialrules
