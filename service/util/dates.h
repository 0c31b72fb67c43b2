// Calendar dates as day numbers, the form date facts take in expressions.
#ifndef TRIALRULES_SERVICE_UTIL_DATES_H_
#define TRIALRULES_SERVICE_UTIL_DATES_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace trialrules {

// Days since 1970-01-01 (proleptic Gregorian, no time zone).
using DayNumber = int32_t;

// Parses a strict ISO 8601 calendar date "YYYY-MM-DD" (years 1000-9999).
// Impossible dates such as 2023-02-29 are InvalidArgument.
absl::StatusOr<DayNumber> ParseIsoDate(absl::string_view text);

// Today's date in UTC: the as-of date of a request that names none.
DayNumber TodayUtc();

// The inverse of ParseIsoDate; AppendIsoDate writes it at the end of `out`.
std::string FormatIsoDate(DayNumber day);
void AppendIsoDate(DayNumber day, std::string* out);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_UTIL_DATES_H_
