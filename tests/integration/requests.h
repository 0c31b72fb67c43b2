// Requests the integration tests share.
#ifndef TRIALRULES_TESTS_INTEGRATION_REQUESTS_H_
#define TRIALRULES_TESTS_INTEGRATION_REQUESTS_H_

#include <string>

#include "client/client.h"
#include "client/facts_file.h"
#include "gtest/gtest.h"
#include "tests/integration/server_process.h"

namespace trialrules::testing {

// tests/data/facts/eligible_patient.json, protocol NCT04094766, as SUBJ-0001
// at SITE-07.
inline v1::EvaluateRequest EligiblePatient() {
  v1::EvaluateRequest request;
  request.set_protocol_id("NCT04094766");
  request.set_subject_ref("SUBJ-0001");
  request.set_site_id("SITE-07");
  auto facts = ParseFactsJson(ReadText(std::string(TRIALRULES_SOURCE_DIR) + "/tests/data/facts/eligible_patient.json"));
  EXPECT_TRUE(facts.ok());
  AddFacts(*facts, &request);
  return request;
}

inline void SetFact(v1::EvaluateRequest* request, const std::string& name, double number,
             const std::string& unit = "") {
  for (v1::FactValue& fact : *request->mutable_facts()) {
    if (fact.name() == name) {
      fact.set_number(number);
      fact.set_unit(unit);
      return;
    }
  }
  v1::FactValue* fact = request->add_facts();
  fact->set_name(name);
  fact->set_number(number);
  fact->set_unit(unit);
}

// Version 1.0 requests whose answers are known: a withdrawal (WITHDRAW), a
// dose level's cohort (EXPAND), the trial's safety counts (S2 TRIGGERED).
inline v1::EvaluateRequest Version10(
    std::initializer_list<std::pair<const char*, double>> facts) {
  v1::EvaluateRequest request;
  request.set_protocol_id("NCT04094766");
  request.set_version("1.0");
  for (const auto& [name, value] : facts) SetFact(&request, name, value);
  return request;
}
inline v1::EvaluateRequest WithdrawingPatient() {
  return Version10({{"grade4_nonheme_toxicity_days", 15}});
}
inline v1::EvaluateRequest ExpandingCohort() {
  return Version10({{"n_treated", 3}, {"n_dlt", 1}});
}
inline v1::EvaluateRequest TrialStoppedByS2() {
  return Version10({{"n_infused", 3},
                    {"n_treatment_related_deaths", 0},
                    {"n_grade4plus_crs", 2},
                    {"n_grade4plus_icans", 0}});
}

}  // namespace trialrules::testing

#endif  // TRIALRULES_TESTS_INTEGRATION_REQUESTS_H_
