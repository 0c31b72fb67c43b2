// Label values that cannot break a scrape. Prometheus rejects the whole page
// when one label value is not valid UTF-8, and protocol ids, versions, rule
// ids and file names come from rule files and directory listings.
#ifndef TRIALRULES_SERVICE_METRICS_LABEL_VALUE_H_
#define TRIALRULES_SERVICE_METRICS_LABEL_VALUE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace trialrules {

// `value` with every byte sequence that is not well-formed UTF-8 (overlong
// forms, surrogates and code points above U+10FFFF included) replaced by
// U+FFFD, and control characters by '?', cut to at most `max_bytes` on a
// character boundary.
std::string SafeLabelValue(absl::string_view value, size_t max_bytes = 128);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_METRICS_LABEL_VALUE_H_
