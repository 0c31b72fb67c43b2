// What `trialrules screen` prints, offline or from servers: a line per
// patient (a table, or JSON lines), then per protocol the counts and the
// screen-failure funnel.
#ifndef TRIALRULES_CLIENT_CLI_SCREEN_OUTPUT_H_
#define TRIALRULES_CLIENT_CLI_SCREEN_OUTPUT_H_

#include <map>
#include <string>
#include <vector>

namespace trialrules::cli {

// One protocol's tally over the patients.
struct Tally {
  std::map<std::string, int> decisions;    // ELIGIBLE, INELIGIBLE, INDETERMINATE, REFUSED
  std::map<std::string, int> excluded_by;  // rule id → patients it excluded
  std::vector<std::string> rule_order;

  // A rule's outcome for one patient: `excluded` when it kept the patient
  // out (an inclusion criterion not met, an exclusion criterion met).
  void CountRule(const std::string& rule_id, bool excluded);
};

// One patient under one protocol: the decision word (or REFUSED and why).
struct Screened {
  std::string version;
  std::string decision;
  std::string error;
};

class ScreenPrinter {
 public:
  // Prints the table's heading unless `json`.
  ScreenPrinter(std::vector<std::string> protocols, bool json);

  // A patient's line, `screened` one per protocol (in the constructor's
  // order); refusals go to stderr too unless `json`. Counts into `tallies`.
  void Patient(const std::string& subject_ref, const std::vector<Screened>& screened);
  // The counts and funnel per protocol. `extra_json` (members, e.g.
  // "\"replicas\":{...}") follows "summary" in the JSON summary's line.
  void Summary(const std::string& extra_json = "");

  std::map<std::string, Tally>& tallies() { return tallies_; }

 private:
  const std::vector<std::string> protocols_;
  const bool json_;
  std::map<std::string, Tally> tallies_;
};

}  // namespace trialrules::cli

#endif  // TRIALRULES_CLIENT_CLI_SCREEN_OUTPUT_H_
