// When a PEM certificate stops being valid.
#ifndef TRIALRULES_SERVICE_UTIL_CERTIFICATE_H_
#define TRIALRULES_SERVICE_UTIL_CERTIFICATE_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace trialrules {

// The notAfter time of the first certificate in `pem` (a chain's leaf).
absl::StatusOr<absl::Time> CertificateNotAfter(absl::string_view pem);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_UTIL_CERTIFICATE_H_
