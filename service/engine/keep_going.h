// Asked by long work (loading a rule file) between its steps: a status other
// than OK stops the work there and is returned, e.g. because the caller
// that asked for it went away or its deadline passed.
#ifndef TRIALRULES_SERVICE_ENGINE_KEEP_GOING_H_
#define TRIALRULES_SERVICE_ENGINE_KEEP_GOING_H_

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace trialrules {

using KeepGoing = absl::FunctionRef<absl::Status()>;

inline absl::Status AlwaysKeepGoing() { return absl::OkStatus(); }

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_KEEP_GOING_H_
