#include "service/engine/dates.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
  return static_cast<DayNumber>(absl::CivilDay(year, month, day) -
                                absl::CivilDay(1970, 1, 1));
}

std::string FormatIsoDate(DayNumber day) {
  const absl::CivilDay civil = absl::CivilDay(1970, 1, 1) + day;
  const int year = static_cast<int>(civil.year());
  if (year < 0 || year > 9999) {
    return absl::StrFormat("%04d-%02d-%02d", year, civil.month(), civil.day());
  }
  // Formatted by hand: audit lines format a date per fact per decision.
  char text[10] = {static_cast<char>('0' + year / 1000),
                   static_cast<char>('0' + year / 100 % 10),
                   static_cast<char>('0' + year / 10 % 10),
                   static_cast<char>('0' + year % 10),
                   '-',
                   static_cast<char>('0' + civil.month() / 10),
                   static_cast<char>('0' + civil.month() % 10),
                   '-',
                   static_cast<char>('0' + civil.day() / 10),
                   static_cast<char>('0' + civil.day() % 10)};
  return std::string(text, sizeof text);
}

}  // namespace trialrules
