// `trialrules trial` output: a trial evaluation as the stable JSON other
// tools read, or as tables and sentences a trial team reads.
#ifndef TRIALRULES_CLIENT_TRIAL_RENDER_H_
#define TRIALRULES_CLIENT_TRIAL_RENDER_H_

#include <string>

#include "trialrules/v1/trial.pb.h"

namespace trialrules {

std::string RenderTrialJson(const v1::TrialEvaluation& evaluation);
std::string RenderTrialText(const v1::TrialEvaluation& evaluation);

}  // namespace trialrules

#endif  // TRIALRULES_CLIENT_TRIAL_RENDER_H_
