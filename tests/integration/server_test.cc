// The real server binary on an ephemeral loopback port, called through the
// real C++ client library over real sockets.
#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_split.h"
#include "client/client.h"
#include "client/facts_file.h"
#include "client/population.h"
#include "client/records_file.h"
#include "service/engine/loader.h"
#include "gtest/gtest.h"
#include "service/util/sha256.h"
#include "tests/command.h"
#include "tests/integration/requests.h"
#include "tests/integration/server_process.h"

namespace trialrules {
namespace {

using testing::ReadText;
using testing::ServerProcess;
using testing::EligiblePatient;
using testing::SetFact;

const std::string kSource = TRIALRULES_SOURCE_DIR;

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess();
    ASSERT_TRUE(server_->WaitForPort()) << server_->Stderr();
    ASSERT_TRUE(server_->WaitForHealth(grpc::health::v1::HealthCheckResponse::SERVING))
        << server_->Stderr();
    client_ = new TrialRulesClient(server_->Target(), absl::Seconds(5));
  }
  static void TearDownTestSuite() {
    delete client_;
    delete server_;
  }
  static ServerProcess* server_;
  static TrialRulesClient* client_;
};
ServerProcess* ServerTest::server_ = nullptr;
TrialRulesClient* ServerTest::client_ = nullptr;

TEST_F(ServerTest, CheckEligibilityAnswersWithVersionAndExplanation) {
  const auto response = client_->Evaluate(EvaluationKind::kEligibility, EligiblePatient());
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->decision(), v1::DECISION_ELIGIBLE);
  EXPECT_EQ(response->rule_set().protocol_id(), "NCT04094766");
  EXPECT_EQ(response->rule_set().version(), "1.0");  // assessment_date 2020-01-15
  EXPECT_EQ(response->rule_set().sha256(),
            Sha256Hex(ReadText(kSource + "/rules/NCT04094766-v1.0.textproto")));
  EXPECT_EQ(response->rules_size(), 20);
  EXPECT_EQ(response->subject_ref(), "SUBJ-0001");
  EXPECT_EQ(response->site_id(), "SITE-07");
  EXPECT_EQ(response->as_of_date(), "2020-01-15");
  EXPECT_EQ(response->decision_id().size(), 32u);
  EXPECT_TRUE(response->missing_facts().empty());
}

TEST_F(ServerTest, DecisionIdsAreUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    ids.insert(client_->Evaluate(EvaluationKind::kEligibility, EligiblePatient())->decision_id());
  }
  EXPECT_EQ(ids.size(), 50u);
}

TEST_F(ServerTest, MissingFactsAreNamedPerRuleAndInUnion) {
  v1::EvaluateRequest request = EligiblePatient();
  request.set_version("2.0");  // adds E11 (prior_car_t), not sent
  const auto response = client_->Evaluate(EvaluationKind::kEligibility, request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->decision(), v1::DECISION_INDETERMINATE);
  ASSERT_EQ(response->missing_facts_size(), 1);
  EXPECT_EQ(response->missing_facts(0), "prior_car_t");
  const v1::RuleOutcome& e11 = response->rules(response->rules_size() - 1);
  EXPECT_EQ(e11.id(), "E11");
  EXPECT_EQ(e11.outcome(), v1::OUTCOME_UNKNOWN);
  EXPECT_EQ(e11.missing_facts(0), "prior_car_t");
}

TEST_F(ServerTest, WithdrawalEscalationAndStopping) {
  auto answer = client_->Evaluate(EvaluationKind::kWithdrawal, testing::WithdrawingPatient());
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->decision(), v1::DECISION_WITHDRAW);

  v1::EvaluateRequest cohort = testing::ExpandingCohort();
  cohort.set_dose_level("DL2");
  answer = client_->Evaluate(EvaluationKind::kEscalation, cohort);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->decision(), v1::DECISION_EXPAND);
  EXPECT_EQ(answer->dose_level(), "DL2");

  answer = client_->Evaluate(EvaluationKind::kStopping, testing::TrialStoppedByS2());
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->decision(), v1::DECISION_TRIGGERED);
  EXPECT_EQ(answer->rules(1).id(), "S2");
  EXPECT_EQ(answer->rules(1).outcome(), v1::OUTCOME_TRUE);
}

TEST_F(ServerTest, ScreenPatientsStreamsBatches) {
  grpc::ClientContext context;
  auto stream = client_->stub()->ScreenPatients(&context);
  v1::ScreenRequest request;
  v1::ScreenHeader* header = request.mutable_header();
  header->set_protocol_id("NCT04094766");
  header->set_as_of_date("2020-07-01");  // version 2.0
  header->add_fact_names("informed_consent");
  header->add_fact_names("karnofsky");
  header->add_fact_names("creatinine_mg_dl");
  header->add_units("");
  header->add_units("");
  header->add_units("umol/L");
  v1::ScreenPatient* refused = request.add_patients();
  refused->set_subject_ref("P1");
  refused->add_values()->set_boolean(true);
  refused->add_values()->set_number(150);  // out of range
  v1::ScreenPatient* no_consent = request.add_patients();
  no_consent->set_subject_ref("P2");
  no_consent->add_values()->set_boolean(false);
  no_consent->add_values();  // missing
  no_consent->add_values()->set_number(80);
  ASSERT_TRUE(stream->Write(request));
  v1::ScreenResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.rule_set().version(), "2.0");
  EXPECT_EQ(response.rule_ids_size(), 21);
  ASSERT_EQ(response.results_size(), 2);
  EXPECT_EQ(response.results(0).error(),
            "patients[0]: fact \"karnofsky\" = 150: outside the valid range 0 to 100");
  EXPECT_EQ(response.results(1).decision(), v1::DECISION_INELIGIBLE);
  EXPECT_EQ(response.results(1).outcomes(0), v1::OUTCOME_FALSE);   // I1
  EXPECT_EQ(response.results(1).outcomes(5), v1::OUTCOME_UNKNOWN);  // I6

  v1::ScreenRequest more;
  v1::ScreenPatient* p3 = more.add_patients();
  p3->set_subject_ref("P3");
  p3->add_values()->set_boolean(true);
  ASSERT_TRUE(stream->Write(more));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).decision(), v1::DECISION_INDETERMINATE);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// Compact rows (packed numbers and dates) are another encoding of the same
// rows: a synthetic population sent both ways in one stream must get the
// same answer, patient by patient.
TEST_F(ServerTest, ScreenPatientsCompactRowsAnswerAsValueRows) {
  const std::shared_ptr<const RuleSet> rule_set =
      LoadRuleSet(ReadText(kSource + "/rules/NCT04094766-v2.0.textproto"),
                  "NCT04094766-v2.0.textproto")
          .rule_set;
  ASSERT_NE(rule_set, nullptr);
  grpc::ClientContext context;
  auto stream = client_->stub()->ScreenPatients(&context);
  v1::ScreenRequest as_values;
  v1::ScreenHeader* header = as_values.mutable_header();
  header->set_protocol_id("NCT04094766");
  header->set_version("2.0");
  header->set_ignore_unknown_facts(true);
  std::vector<int> columns;
  for (int f : rule_set->FactsFor(EvaluationKind::kEligibility)) {
    columns.push_back(f);
    header->add_fact_names(rule_set->facts()[f].name);
    if (columns.size() == 3) {  // an ignored column takes a numbers slot
      columns.push_back(-1);
      header->add_fact_names("not_a_fact_of_this_protocol");
    }
  }
  v1::ScreenRequest as_compact;
  std::vector<uint32_t> expected_date_columns;
  for (size_t c = 0; c < columns.size(); ++c) {
    if (columns[c] >= 0 && rule_set->facts()[columns[c]].type == ValueType::kDate) {
      expected_date_columns.push_back(c);
    }
  }
  ASSERT_FALSE(expected_date_columns.empty());
  const auto population =
      SyntheticPopulation(*rule_set, EvaluationKind::kEligibility, 300, 0.2, 11);
  for (size_t i = 0; i < population.size(); ++i) {
    v1::ScreenPatient* values = as_values.add_patients();
    v1::ScreenPatient* compact = as_compact.add_patients();
    values->set_subject_ref(absl::StrCat("P", i));
    compact->set_subject_ref(absl::StrCat("P", i));
    for (int fact : columns) {
      const FactInput* input = nullptr;
      for (const FactInput& candidate : population[i]) {
        if (fact >= 0 && candidate.name == rule_set->facts()[fact].name) input = &candidate;
      }
      v1::ScreenValue* value = values->add_values();
      const bool is_date = fact >= 0 && rule_set->facts()[fact].type == ValueType::kDate;
      if (fact < 0) {
        value->set_number(7);
        compact->add_numbers(7);
      } else if (input == nullptr) {
        if (is_date) {
          compact->add_dates("");
        } else {
          compact->add_numbers(std::nan(""));
        }
      } else if (const double* n = std::get_if<double>(&input->value)) {
        value->set_number(*n);
        compact->add_numbers(*n);
      } else if (const bool* b = std::get_if<bool>(&input->value)) {
        value->set_boolean(*b);
        compact->add_numbers(*b ? 1 : 0);
      } else {
        value->set_date(std::get<std::string>(input->value));
        compact->add_dates(std::get<std::string>(input->value));
      }
    }
  }
  v1::ScreenResponse by_values, by_compact;
  ASSERT_TRUE(stream->Write(as_values));
  ASSERT_TRUE(stream->Read(&by_values));
  ASSERT_TRUE(stream->Write(as_compact));
  ASSERT_TRUE(stream->Read(&by_compact));
  stream->WritesDone();
  ASSERT_TRUE(stream->Finish().ok());

  EXPECT_EQ(std::vector<uint32_t>(by_values.date_columns().begin(),
                                  by_values.date_columns().end()),
            expected_date_columns);
  ASSERT_EQ(by_values.results_size(), 300);
  ASSERT_EQ(by_compact.results_size(), 300);
  std::set<std::vector<int>> outcome_patterns;
  for (int p = 0; p < 300; ++p) {
    const v1::ScreenResult& a = by_values.results(p);
    const v1::ScreenResult& b = by_compact.results(p);
    ASSERT_EQ(a.error(), "") << p;
    ASSERT_EQ(b.error(), "") << p;
    EXPECT_EQ(a.subject_ref(), b.subject_ref());
    EXPECT_EQ(a.decision(), b.decision()) << p;
    EXPECT_EQ(std::vector<int>(a.outcomes().begin(), a.outcomes().end()),
              std::vector<int>(b.outcomes().begin(), b.outcomes().end())) << p;
    EXPECT_EQ(std::vector<uint32_t>(a.missing_fact_indexes().begin(),
                                    a.missing_fact_indexes().end()),
              std::vector<uint32_t>(b.missing_fact_indexes().begin(),
                                    b.missing_fact_indexes().end())) << p;
    EXPECT_NE(a.decision_id(), b.decision_id());
    outcome_patterns.insert(std::vector<int>(a.outcomes().begin(), a.outcomes().end()));
  }
  EXPECT_GE(outcome_patterns.size(), 100u);  // varied patients, not one answer
}

TEST_F(ServerTest, ScreenPatientsCompactRowsRefusalsNameThePatientAndValue) {
  grpc::ClientContext context;
  auto stream = client_->stub()->ScreenPatients(&context);
  v1::ScreenRequest request;
  v1::ScreenHeader* header = request.mutable_header();
  header->set_protocol_id("NCT04094766");
  header->set_version("2.0");
  for (const char* name : {"informed_consent", "assessment_date", "creatinine_mg_dl"}) {
    header->add_fact_names(name);
  }
  header->add_units("");
  header->add_units("");
  header->add_units("umol/L");
  auto add = [&](std::vector<double> numbers, std::vector<std::string> dates) {
    v1::ScreenPatient* patient = request.add_patients();
    for (double n : numbers) patient->add_numbers(n);
    for (const std::string& d : dates) patient->add_dates(d);
    return patient;
  };
  add({1, 80}, {"2020-07-01"});             // 0: fine (creatinine 80 umol/L)
  add({2, 80}, {"2020-07-01"});             // 1: not a boolean
  add({1, 80}, {"2020-13-01"});             // 2: not a date
  add({1}, {"2020-07-01"});                 // 3: incomplete
  add({1, 80}, {"2020-07-01"})->add_values()->set_boolean(true);  // 4: both forms
  add({1, -5}, {""});                       // 5: out of range once converted
  add({std::nan(""), std::nan("")}, {""});  // 6: all missing
  add({INFINITY, 80}, {""});                // 7: infinity is no boolean
  add({1, -INFINITY}, {""});                // 8: nor a creatinine
  ASSERT_TRUE(stream->Write(request));
  v1::ScreenResponse response;
  ASSERT_TRUE(stream->Read(&response));
  stream->WritesDone();
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(response.results_size(), 9);
  EXPECT_EQ(std::vector<uint32_t>(response.date_columns().begin(),
                                  response.date_columns().end()),
            std::vector<uint32_t>{1});
  EXPECT_EQ(response.results(0).error(), "");
  EXPECT_NE(response.results(0).decision(), v1::DECISION_UNSPECIFIED);
  EXPECT_EQ(response.results(1).error(),
            "patients[1]: fact \"informed_consent\" = 2: a boolean column takes 1 or 0 in "
            "numbers (NaN: missing)");
  EXPECT_EQ(response.results(2).error(),
            "patients[2]: fact \"assessment_date\" = \"2020-13-01\": \"2020-13-01\" is not a "
            "real calendar date");
  EXPECT_EQ(response.results(3).error(),
            "patients[3]: 1 numbers and 1 dates for 2 number or boolean columns and 1 date "
            "columns (a compact row is complete: NaN or \"\" for missing)");
  EXPECT_EQ(response.results(4).error(),
            "patients[4]: values and numbers/dates are both set; send a row in one form");
  EXPECT_EQ(response.results(5).error().rfind("patients[5]: fact \"creatinine_mg_dl\" = -5 umol/L", 0),
            0u) << response.results(5).error();
  EXPECT_EQ(response.results(6).error(), "");
  EXPECT_EQ(response.results(6).decision(), v1::DECISION_INDETERMINATE);
  EXPECT_EQ(response.results(7).error(),
            "patients[7]: fact \"informed_consent\" = inf: a boolean column takes 1 or 0 in "
            "numbers (NaN: missing)");
  EXPECT_EQ(response.results(8).error(),
            "patients[8]: fact \"creatinine_mg_dl\" = -inf umol/L: not a finite number");
}

TEST_F(ServerTest, ScreenPatientsRefusesAStreamWithoutHeader) {
  grpc::ClientContext context;
  auto stream = client_->stub()->ScreenPatients(&context);
  v1::ScreenRequest request;
  request.add_patients()->set_subject_ref("P1");
  stream->Write(request);
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "header: the first ScreenRequest must carry a header");
}

TEST_F(ServerTest, ListAndGetRuleSetsDescribeWhatIsLoaded) {
  const auto list = client_->ListRuleSets();
  ASSERT_TRUE(list.ok()) << list.status();
  // By protocol, then effective date: both protocols side by side.
  ASSERT_EQ(list->rule_sets_size(), 3);
  EXPECT_EQ(list->rule_sets(0).rule_set().protocol_id(), "NCT03671460");
  EXPECT_EQ(list->rule_sets(0).effective_from(), "2018-09-07");
  EXPECT_EQ(list->rule_sets(1).effective_from(), "2019-09-01");
  EXPECT_EQ(list->rule_sets(2).effective_from(), "2020-06-01");
  EXPECT_TRUE(list->rule_sets(2).illustrative());

  const auto full = client_->GetRuleSet("NCT04094766", "2.0");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->rules_size(), 35);
  const auto creatinine = std::find_if(
      full->facts().begin(), full->facts().end(),
      [](const v1::Fact& f) { return f.name() == "creatinine_mg_dl"; });
  ASSERT_NE(creatinine, full->facts().end());
  EXPECT_EQ(creatinine->unit(), "mg/dL");
  EXPECT_EQ(creatinine->accepted_units(0).unit(), "umol/L");
  EXPECT_DOUBLE_EQ(creatinine->accepted_units(0).per_canonical_unit(), 88.42);
  EXPECT_DOUBLE_EQ(creatinine->min(), 0.01);

  EXPECT_EQ(client_->GetRuleSet("NCT04094766", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->GetRuleSet("NCT04094766", "3.0").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ServerTest, ValidateRuleSetReportsWhatCheckReports) {
  const std::string path = kSource + "/tests/data/bad_rules/unknown_fact.textproto";
  const auto bad = client_->ValidateRuleSet(ReadText(path), "unknown_fact.textproto");
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_FALSE(bad->valid());
  ASSERT_EQ(bad->problems_size(), 1);
  EXPECT_EQ(bad->problems(0).text() + "\n",
            ReadText(kSource + "/tests/data/bad_rules/unknown_fact.expected"));

  const auto good = client_->ValidateRuleSet(
      ReadText(kSource + "/rules/NCT04094766-v2.0.textproto"), "v2.textproto");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_TRUE(good->valid());
  EXPECT_EQ(good->test_cases_size(), 135);
  // What the file's test cases reach, per rule, as check --coverage shows it.
  ASSERT_EQ(good->coverage_size(), 35);
  for (const v1::RuleCoverage& rule : good->coverage()) {
    if (rule.rule() != "I8") continue;
    EXPECT_EQ(rule.outcomes_size(), 3);
    EXPECT_EQ(rule.tested_boundaries_size(), 10);
    EXPECT_EQ(rule.untested_boundaries_size(), 0);
  }
  // Nothing is activated.
  EXPECT_EQ(client_->ListRuleSets()->rule_sets_size(), 3);
}

struct Refusal {
  std::string name;
  std::function<void(v1::EvaluateRequest*)> change;
  grpc::StatusCode code;
  std::string message;
};

TEST_F(ServerTest, RefusedRequestsNameTheFieldAndValue) {
  const std::vector<Refusal> refusals = {
      {"no protocol", [](auto* r) { r->clear_protocol_id(); },
       grpc::StatusCode::INVALID_ARGUMENT, "protocol_id is required"},
      {"unknown protocol", [](auto* r) { r->set_protocol_id("NCT00000000"); },
       grpc::StatusCode::NOT_FOUND, "protocol_id \"NCT00000000\": no such protocol is loaded"},
      {"unknown version", [](auto* r) { r->set_version("9.9"); }, grpc::StatusCode::NOT_FOUND,
       "version \"9.9\": protocol NCT04094766 has no such version loaded"},
      {"no version in force",
       [](auto* r) {
         for (auto& f : *r->mutable_facts())
           if (f.name() == "assessment_date") f.set_date("2019-01-01");
       },
       grpc::StatusCode::FAILED_PRECONDITION,
       "protocol NCT04094766: no version is in force on 2019-01-01"},
      {"out of range", [](auto* r) { SetFact(r, "karnofsky", 150); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "fact \"karnofsky\" = 150: outside the valid range 0 to 100"},
      {"unsupported unit", [](auto* r) { SetFact(r, "creatinine_mg_dl", 0.1, "mmol/L"); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "fact \"creatinine_mg_dl\" = 0.1 mmol/L: unit \"mmol/L\" is not accepted (mg/dL, umol/L)"},
      {"unknown fact", [](auto* r) { SetFact(r, "ecog", 1); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "fact \"ecog\" = 1: unknown fact for protocol NCT04094766 version 1.0"},
      {"impossible date",
       [](auto* r) {
         auto* f = r->add_facts();
         f->set_name("last_anti_gvhd_date");
         f->set_date("2019-02-29");
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       "fact \"last_anti_gvhd_date\" = \"2019-02-29\": \"2019-02-29\" is not a real calendar date"},
      {"fact without value", [](auto* r) { r->add_facts()->set_name("pregnant"); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "fact \"pregnant\" has no value (set number, boolean, date or text; leave a missing "
       "fact out)"},
      {"fact twice", [](auto* r) { *r->add_facts() = r->facts(0); },
       grpc::StatusCode::INVALID_ARGUMENT, "fact \"active_autoimmune_disease\" is given more than once"},
      {"subject_ref too long", [](auto* r) { r->set_subject_ref(std::string(200, 'x')); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "subject_ref \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" is 200 characters long; the limit is 128"},
  };
  for (const Refusal& refusal : refusals) {
    v1::EvaluateRequest request = EligiblePatient();
    refusal.change(&request);
    grpc::ClientContext context;
    v1::EvaluateResponse response;
    const grpc::Status status = client_->stub()->CheckEligibility(&context, request, &response);
    EXPECT_EQ(status.error_code(), refusal.code) << refusal.name;
    EXPECT_EQ(status.error_message(), refusal.message) << refusal.name;
  }
  // A refusal changes nothing: the same patient is answered as before.
  EXPECT_EQ(client_->Evaluate(EvaluationKind::kEligibility, EligiblePatient())->decision(),
            v1::DECISION_ELIGIBLE);
}

TEST_F(ServerTest, UnknownFactsIgnoredWhenAskedAndListed) {
  v1::EvaluateRequest request = EligiblePatient();
  SetFact(&request, "ecog", 1);
  request.set_ignore_unknown_facts(true);
  const auto response = client_->Evaluate(EvaluationKind::kEligibility, request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->ignored_facts_size(), 1);
  EXPECT_EQ(response->ignored_facts(0), "ecog");
}

TEST_F(ServerTest, BadDoseLevelIsRefused) {
  v1::EvaluateRequest cohort;
  cohort.set_protocol_id("NCT04094766");
  cohort.set_dose_level("DL9");
  const auto response = client_->Evaluate(EvaluationKind::kEscalation, cohort);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(response.status().message(),
            "dose_level \"DL9\" is not a dose level of NCT04094766 version 2.0");
}

TEST_F(ServerTest, ExpiredDeadlineIsDeadlineExceeded) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  v1::EvaluateResponse response;
  const grpc::Status status =
      client_->stub()->CheckEligibility(&context, EligiblePatient(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(ServerTest, EveryAnswerHasItsAuditLineWithoutPatientData) {
  const auto response = client_->Evaluate(EvaluationKind::kEligibility, EligiblePatient());
  ASSERT_TRUE(response.ok());
  std::string line;
  for (absl::string_view candidate : absl::StrSplit(server_->AuditLog(), '\n')) {
    if (candidate.find(response->decision_id()) != absl::string_view::npos) {
      line = std::string(candidate);
    }
  }
  ASSERT_FALSE(line.empty());
  EXPECT_NE(line.find("\"method\":\"CheckEligibility\""), std::string::npos);
  EXPECT_NE(line.find("\"sha256\":\"" + response->rule_set().sha256() + "\""), std::string::npos);
  EXPECT_NE(line.find("\"site_id\":\"SITE-07\",\"subject_ref\":\"SUBJ-0001\""), std::string::npos);
  EXPECT_NE(line.find("\"decision\":\"ELIGIBLE\""), std::string::npos);
  EXPECT_NE(line.find("\"I8\":\"TRUE\""), std::string::npos);
  EXPECT_NE(line.find("\"facts_sha256\":\""), std::string::npos);
  EXPECT_EQ(line.find("karnofsky"), std::string::npos) << "no facts by default";
}

// The audit line of `decision_id`, or "" when none.
std::string AuditLineOf(const std::string& log, const std::string& decision_id) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (line.find(decision_id) != absl::string_view::npos) return std::string(line);
  }
  return "";
}

// The value of `"key":"..."` in a JSON line, or "".
std::string StringMember(const std::string& line, const std::string& key) {
  const std::string start = "\"" + key + "\":\"";
  const size_t at = line.find(start);
  if (at == std::string::npos) return "";
  const size_t from = at + start.size();
  return line.substr(from, line.find('"', from) - from);
}

// The eligible patient as a FHIR Bundle (tests/data/fhir/make_bundle.py)
// with only the assessment date typed: the request of a caller that holds
// the patient in FHIR.
v1::EvaluateRequest EligibleBundle() {
  v1::EvaluateRequest request;
  request.set_protocol_id("NCT04094766");
  request.set_subject_ref("SUBJ-0001");
  request.set_site_id("SITE-07");
  request.set_fhir_bundle_json(ReadText(kSource + "/tests/data/fhir/eligible_patient.json"));
  v1::FactValue* date = request.add_facts();
  date->set_name("assessment_date");
  date->set_date("2020-01-15");
  return request;
}

// A Bundle decides as its typed facts do, names each fact's resource, and
// is audited with the same facts_sha256: the record is of the facts, not of
// the form they came in.
TEST_F(ServerTest, BundleAnswersAsItsTypedFactsAndHashesEqual) {
  const auto typed = client_->Evaluate(EvaluationKind::kEligibility, EligiblePatient());
  ASSERT_TRUE(typed.ok()) << typed.status();
  const auto bundle = client_->Evaluate(EvaluationKind::kEligibility, EligibleBundle());
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(bundle->decision(), v1::DECISION_ELIGIBLE);
  EXPECT_EQ(bundle->decision(), typed->decision());
  EXPECT_EQ(bundle->as_of_date(), "2020-01-15");
  EXPECT_EQ(bundle->rule_set().version(), typed->rule_set().version());
  ASSERT_EQ(bundle->rules_size(), typed->rules_size());
  for (int i = 0; i < typed->rules_size(); ++i) {
    EXPECT_EQ(bundle->rules(i).outcome(), typed->rules(i).outcome()) << typed->rules(i).id();
  }
  EXPECT_TRUE(typed->provenance().empty());
  std::map<std::string, std::string> provenance;
  for (const v1::FactProvenance& given : bundle->provenance()) {
    provenance[given.fact()] = given.source();
  }
  EXPECT_EQ(provenance["age_years"], "Patient/p1");
  EXPECT_EQ(provenance["creatinine_mg_dl"], provenance["creatinine_uln_mg_dl"]);
  EXPECT_EQ(provenance["creatinine_mg_dl"].rfind("Observation/o", 0), 0u);
  EXPECT_EQ(provenance.count("assessment_date"), 0u) << "typed, not from the Bundle";

  const std::string log = server_->AuditLog();
  const std::string typed_line = AuditLineOf(log, typed->decision_id());
  const std::string bundle_line = AuditLineOf(log, bundle->decision_id());
  ASSERT_FALSE(typed_line.empty());
  ASSERT_FALSE(bundle_line.empty());
  EXPECT_EQ(StringMember(typed_line, "facts_sha256").size(), 64u) << typed_line;
  EXPECT_EQ(StringMember(bundle_line, "facts_sha256"), StringMember(typed_line, "facts_sha256"));
}

TEST_F(ServerTest, BundleRefusalsNameTheFactAndBothSources) {
  // A fact typed beside the Bundle that gives it too.
  v1::EvaluateRequest both = EligibleBundle();
  SetFact(&both, "karnofsky", 90);
  auto response = client_->Evaluate(EvaluationKind::kEligibility, both);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(response.status().message().find("fact \"karnofsky\" is given more than one way: "
                                             "Observation/"),
            std::string::npos)
      << response.status();
  EXPECT_NE(response.status().message().find("(fhir_bundle_json) and facts"), std::string::npos)
      << response.status();

  // A malformed resource: the refusal names the field.
  v1::EvaluateRequest malformed = EligibleBundle();
  std::string json = malformed.fhir_bundle_json();
  const size_t at = json.find("\"status\": \"final\"");
  ASSERT_NE(at, std::string::npos);
  json.replace(at, std::string("\"status\": \"final\"").size(), "\"status\": 7");
  malformed.set_fhir_bundle_json(json);
  response = client_->Evaluate(EvaluationKind::kEligibility, malformed);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(response.status().message().find("fhir_bundle_json: entry[1] (Observation/o1): "
                                             "status must be a string"),
            std::string::npos)
      << response.status();

  // Over the limit (4 MiB), refused before it is read.
  v1::EvaluateRequest oversized = EligibleBundle();
  oversized.set_fhir_bundle_json(std::string((4 << 20) + 1, ' '));
  response = client_->Evaluate(EvaluationKind::kEligibility, oversized);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(response.status().message(),
            "fhir_bundle_json: 4194305 bytes; the limit is 4194304");
}

// Grading over real gRPC: several assessments in one call, each graded or
// left open with what would decide it; refusals name the set and the
// observation; the call is audited and counted.
TEST_F(ServerTest, GradeEventsGradesEachObservationSetAndIsAuditedAndCounted) {
  v1::GradeRequest request;
  request.set_table_id("astct-crs-2019");
  request.set_subject_ref("SUBJ-0042");
  request.set_site_id("SITE-07");
  absl::StatusOr<std::vector<FactInput>> example = ParseObservationsJson(ReadText(
      kSource + "/tests/data/observations/crs_39_5_one_vasopressor_cannula.json"));
  ASSERT_TRUE(example.ok());
  AddObservations(*example, request.add_observation_sets());
  // Only a fever: grade 1 holds, the other domains may: 1 to 5.
  AddObservations({{"temp_c", 38.4, ""}, {"fever_other_cause", false, ""}},
                  request.add_observation_sets());
  const auto response = client_->GradeEvents(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->table().table_id(), "astct-crs-2019");
  EXPECT_EQ(response->table().version(), "1.0");
  EXPECT_EQ(response->table().term(), "cytokine_release_syndrome");
  EXPECT_EQ(response->table().sha256(),
            Sha256Hex(ReadText(kSource + "/rules/astct-crs-2019-1.0.table.textproto")));
  ASSERT_EQ(response->results_size(), 2);
  const v1::GradeResult& known = response->results(0);
  EXPECT_TRUE(known.known());
  EXPECT_EQ(known.grade(), 3);
  EXPECT_EQ(std::vector<std::string>(known.domains().begin(), known.domains().end()),
            std::vector<std::string>{"hypotension"});
  EXPECT_EQ(known.rows_size(), 8);
  const v1::GradeResult& open = response->results(1);
  EXPECT_FALSE(open.known());
  EXPECT_EQ(open.grade_min(), 1);
  EXPECT_EQ(open.grade_max(), 5);
  std::set<std::string> missing(open.missing().begin(), open.missing().end());
  EXPECT_TRUE(missing.count("hypotension") && missing.count("o2_device") &&
              missing.count("crs_death"))
      << open.DebugString();
  EXPECT_EQ(missing.count("temp_c") + missing.count("fever_other_cause"), 0u);

  std::string line;
  for (absl::string_view candidate : absl::StrSplit(server_->AuditLog(), '\n')) {
    if (candidate.find(response->decision_id()) != absl::string_view::npos) {
      line = std::string(candidate);
    }
  }
  ASSERT_FALSE(line.empty());
  EXPECT_NE(line.find("\"method\":\"GradeEvents\",\"sha256\":\"" + response->table().sha256() +
                      "\",\"site_id\":"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("\"table_id\":\"astct-crs-2019\",\"term\":\"cytokine_release_syndrome\","
                      "\"version\":\"1.0\"}"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("\"subject_ref\":\"SUBJ-0042\""), std::string::npos) << line;
  EXPECT_NE(line.find("\",\"grade\":3,\"rows\":{"), std::string::npos) << line;
  EXPECT_NE(line.find("\"fever_1\":\"TRUE\""), std::string::npos) << line;
  EXPECT_NE(line.find("\",\"grade\":null,\"grade_max\":5,\"grade_min\":1,"), std::string::npos)
      << line;
  EXPECT_NE(line.find("\"facts_sha256\":\""), std::string::npos) << line;
  EXPECT_EQ(line.find("39.5"), std::string::npos) << "no observations by default";

  const std::string metrics = server_->Scrape();
  EXPECT_NE(metrics.find("trialrules_grades_total{grade=\"3\",table_id=\"astct-crs-2019\","
                         "term=\"cytokine_release_syndrome\",version=\"1.0\"}"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("trialrules_grades_total{grade=\"UNKNOWN\",table_id=\"astct-crs-2019\""),
            std::string::npos);
}

// A trial's records over real gRPC: the events graded and judged, the
// pending ICANS making the 3+3 decision INDETERMINATE with what each
// resolution decides; the evaluation audited with the records' hash (not
// the records) and counted by decision.
TEST_F(ServerTest, EvaluateTrialDecidesFromRecordsOverPendingEventsAndIsAuditedAndCounted) {
  const std::string text = ReadText(kSource + "/tests/data/records/pending_icans.json");
  absl::StatusOr<v1::TrialRecords> records = ParseTrialRecordsJson(text);
  ASSERT_TRUE(records.ok()) << records.status();
  v1::EvaluateTrialRequest request;
  *request.mutable_records() = *records;
  request.set_site_id("SITE-07");
  const auto response = client_->EvaluateTrial(request);
  ASSERT_TRUE(response.ok()) << response.status();
  const v1::TrialEvaluation& evaluation = response->evaluation();
  EXPECT_EQ(evaluation.version(), "1.0");
  EXPECT_EQ(evaluation.sha256(),
            Sha256Hex(ReadText(kSource + "/rules/NCT04094766-v1.0.textproto")));
  ASSERT_EQ(evaluation.patients_size(), 6);
  // P01: the CRS graded 3 from its observations (no DLT), the febrile
  // neutropenia ongoing 70 days at grade 3 a DLT by D4.
  const v1::PatientAssessment& p01 = evaluation.patients(0);
  EXPECT_EQ(p01.dlt(), v1::TRUTH_TRUE);
  ASSERT_EQ(p01.events_size(), 2);
  EXPECT_EQ(p01.events(0).grade(), 3);
  EXPECT_EQ(p01.events(0).graded_by(), "astct-crs-2019@1.0");
  EXPECT_EQ(p01.events(0).dlt(), v1::TRUTH_FALSE);
  EXPECT_EQ(p01.events(1).criterion(), "D4");
  const v1::PatientAssessment& p05 = evaluation.patients(4);
  EXPECT_EQ(p05.dlt(), v1::TRUTH_UNKNOWN);
  EXPECT_EQ(p05.evaluable(), v1::TRUTH_TRUE);
  ASSERT_EQ(evaluation.dose_levels_size(), 3);
  EXPECT_EQ(evaluation.dose_levels(1).n_evaluable(), 3);
  EXPECT_EQ(evaluation.dose_levels(1).n_dlt(), 0);
  EXPECT_EQ(evaluation.dose_levels(1).n_dlt_unknown(), 1);
  EXPECT_EQ(evaluation.dose_levels(2).n_infused(), 0);

  const v1::EscalationOutcome& escalation = evaluation.escalation();
  EXPECT_EQ(escalation.design(), "3+3");
  EXPECT_EQ(escalation.decision(), "INDETERMINATE");
  ASSERT_EQ(escalation.pending_size(), 1);
  EXPECT_EQ(escalation.pending(0).subject_ref(), "P05");
  EXPECT_EQ(escalation.pending(0).event(), 0);
  EXPECT_EQ(std::vector<std::string>(escalation.pending(0).cleared_if().begin(),
                                     escalation.pending(0).cleared_if().end()),
            std::vector<std::string>{"resolves by 2020-03-31"});
  ASSERT_EQ(escalation.by_resolution_size(), 2);
  EXPECT_EQ(escalation.by_resolution(0).dlt_size(), 0);
  EXPECT_EQ(escalation.by_resolution(0).decision(), "ESCALATE");
  EXPECT_EQ(escalation.by_resolution(1).dlt(0), "P05");
  EXPECT_EQ(escalation.by_resolution(1).decision(), "EXPAND");
  EXPECT_EQ(evaluation.stopping().decision(), "NOT_TRIGGERED");
  EXPECT_FALSE(escalation.has_boin());

  std::string line;
  for (absl::string_view candidate : absl::StrSplit(server_->AuditLog(), '\n')) {
    if (candidate.find(response->decision_id()) != absl::string_view::npos) {
      line = std::string(candidate);
    }
  }
  ASSERT_FALSE(line.empty());
  EXPECT_NE(line.find("\"method\":\"EvaluateTrial\",\"patients\":"), std::string::npos) << line;
  EXPECT_NE(line.find("\"protocol_id\":\"NCT04094766\","), std::string::npos) << line;
  EXPECT_NE(line.find("\"sha256\":\"" + evaluation.sha256() + "\",\"site_id\":\"SITE-07\""),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("\"version\":\"1.0\"}"), std::string::npos) << line;
  EXPECT_NE(line.find("[\"P01\",\"TT\",\"- D4\"]"), std::string::npos) << line;
  EXPECT_NE(line.find("[\"P05\",\"UT\",\"?\"]"), std::string::npos) << line;
  EXPECT_NE(line.find("\"escalation\":{\"decision\":\"INDETERMINATE\",\"design\":\"3+3\","
                      "\"pending\":[\"P05\"]}"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("\"records_sha256\":\""), std::string::npos) << line;
  EXPECT_EQ(line.find("febrile_neutropenia"), std::string::npos) << "no records by default";

  const std::string metrics = server_->Scrape();
  EXPECT_NE(metrics.find("trialrules_trial_evaluations_total{escalation=\"INDETERMINATE\","
                         "protocol=\"NCT04094766\",stopping=\"NOT_TRIGGERED\",version=\"1.0\"} 1"),
            std::string::npos)
      << metrics;
}

TEST_F(ServerTest, EvaluateTrialRefusesBadRecordsNamingThePatientAndField) {
  absl::StatusOr<v1::TrialRecords> records =
      ParseTrialRecordsJson(ReadText(kSource + "/tests/data/records/pending_icans.json"));
  ASSERT_TRUE(records.ok());
  auto evaluate = [&](const v1::TrialRecords& r) {
    v1::EvaluateTrialRequest request;
    *request.mutable_records() = r;
    return client_->EvaluateTrial(request).status();
  };
  // The suite's server is shared: only what this test adds counts.
  const size_t audit_before = server_->AuditLog().size();
  v1::TrialRecords bad = *records;
  bad.mutable_patients(3)->set_dose_level("DL9");
  absl::Status status = evaluate(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "patients[3] (P04): dose_level \"DL9\" is not a dose level of "
                              "NCT04094766 1.0 (DL1, DL2, DL3)");
  bad = *records;
  bad.mutable_patients(4)->mutable_events(0)->set_onset_date("2020-04-02");
  status = evaluate(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "patients[4] (P05): events[0].onset_date \"2020-04-02\" is after "
                              "as_of_date 2020-03-30");
  bad = *records;
  bad.mutable_patients(0)->mutable_events(0)->mutable_observations(0)->set_number(80);
  status = evaluate(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("patients[0] (P01): events[0].observations "), std::string::npos)
      << status;
  bad = *records;
  bad.set_protocol_id("NCT03671460");
  bad.set_as_of_date("2024-01-01");
  status = evaluate(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  bad = *records;
  bad.mutable_patients(0)->set_subject_ref(std::string(200, 'x'));
  status = evaluate(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("records.patients[0].subject_ref"), std::string::npos) << status;
  EXPECT_EQ(server_->AuditLog().find("EvaluateTrial", audit_before), std::string::npos)
      << "nothing is recorded for a refused call";
}

TEST_F(ServerTest, GradeEventsRefusalsNameTheSetAndTheObservation) {
  auto grade = [&](const std::string& table, const std::string& term,
                   std::vector<std::vector<FactInput>> sets) {
    v1::GradeRequest request;
    request.set_table_id(table);
    request.set_term(term);
    for (const auto& set : sets) AddObservations(set, request.add_observation_sets());
    return client_->GradeEvents(request).status();
  };
  absl::Status status = grade("astct-crs-2019", "",
                              {{{"temp_c", 38.0, ""}}, {{"o2_device", std::string("tent"), ""}}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "observation_sets[1]: observation \"o2_device\" = \"tent\": not an allowed value "
            "(none, nasal_cannula, blow_by, hfnc, facemask, nonrebreather, venturi, cpap, "
            "bipap, mechanical_ventilation)");
  v1::GradeRequest in_date;
  in_date.set_table_id("astct-crs-2019");
  v1::FactValue* device = in_date.add_observation_sets()->add_observations();
  device->set_name("o2_device");
  device->set_date("hfnc");
  status = client_->GradeEvents(in_date).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "observation_sets[0]: observation \"o2_device\" = \"hfnc\": a word "
                              "goes in `text`, not `date`");
  status = grade("astct-crs-2019", "", {{{"temp_c", 60.0, ""}}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(
                "observation_sets[0]: observation \"temp_c\" = 60: outside the valid range 25 Cel"),
            std::string::npos)
      << status;
  status = grade("astct-icans-2019", "", {{{"ice_score", 9.0, ""}}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("\"age_years\" is required"), std::string::npos) << status;
  status = grade("ctcae-5.0", "bilirubin", {{{"value", 1.0, ""}}});
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("term \"bilirubin\" is not graded by table ctcae-5.0"),
            std::string::npos)
      << status;
  status = grade("ctcae-4.03", "", {{{"value", 1.0, ""}}});
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("unknown decision table \"ctcae-4.03\""), std::string::npos);
  status = grade("astct-crs-2019", "", {});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "observation_sets: at least one is required");
}

TEST_F(ServerTest, ListRuleSetsShowsTheDecisionTablesAndWhichAVersionUses) {
  const auto listed = client_->ListRuleSets();
  ASSERT_TRUE(listed.ok());
  std::set<std::string> tables;
  for (const v1::TableInfo& table : listed->tables()) {
    tables.insert(table.table_id() + " " + table.version());
    if (table.table_id() == "ctcae-5.0") {
      EXPECT_EQ(table.terms_size(), 6);
      EXPECT_EQ(table.terms(0).hit_policy(), "MAX");
    }
  }
  EXPECT_EQ(tables, (std::set<std::string>{"astct-crs-2019 1.0", "astct-icans-2019 1.0",
                                           "ctcae-5.0 1.0"}));
  for (const v1::RuleSetInfo& rule_set : listed->rule_sets()) {
    EXPECT_EQ(rule_set.decision_tables_size(),
              rule_set.rule_set().protocol_id() == "NCT04094766" ? 3 : 0)
        << rule_set.rule_set().protocol_id();
  }
}

TEST_F(ServerTest, ValidateRuleSetChecksADecisionTableFileByItsName) {
  const std::string text = ReadText(kSource + "/rules/ctcae-5.0-1.0.table.textproto");
  auto response = client_->ValidateRuleSet(text, "ctcae-5.0-1.0.table.textproto");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(response->valid());
  EXPECT_EQ(response->table().table_id(), "ctcae-5.0");
  EXPECT_EQ(response->table().sha256(), Sha256Hex(text));
  EXPECT_GT(response->test_cases_size(), 100);
  // The same text as a rule file is not one.
  response = client_->ValidateRuleSet(text, "candidate.textproto");
  ASSERT_TRUE(response.ok());
  EXPECT_FALSE(response->valid());
}

// Two protocols on one server, with same-named facts (age_years, alt_u_l,
// ...) and the same rule ids (I1-I5, E1-E8): each request is answered by
// its own protocol's rules only.
v1::EvaluateRequest Nct03671460Patient() {
  v1::EvaluateRequest request;
  request.set_protocol_id("NCT03671460");
  request.set_subject_ref("SUBJ-0460");
  request.set_site_id("SITE-07");
  auto facts = ParseFactsJson(ReadText(kSource + "/tests/data/facts/nct03671460_eligible.json"));
  EXPECT_TRUE(facts.ok());
  AddFacts(*facts, &request);
  return request;
}

TEST_F(ServerTest, TwoProtocolsSideBySideEachAnswerComesFromItsOwnRules) {
  // 2.0 mg/dL of bilirubin is exactly 34.2 umol/L: within this protocol's limit.
  auto response = client_->Evaluate(EvaluationKind::kEligibility, Nct03671460Patient());
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->decision(), v1::DECISION_ELIGIBLE);
  EXPECT_EQ(response->rule_set().protocol_id(), "NCT03671460");
  EXPECT_EQ(response->rule_set().sha256(),
            Sha256Hex(ReadText(kSource + "/rules/NCT03671460-v1.0.textproto")));
  std::vector<std::string> ids;
  for (const v1::RuleOutcome& rule : response->rules()) ids.push_back(rule.id());
  EXPECT_EQ(ids, (std::vector<std::string>{"I1", "I2", "I3", "I4", "I5", "E1", "E2", "E3", "E4",
                                           "E5", "E6", "E7", "E8"}));

  // One protocol's facts are unknown to the other, both ways.
  v1::EvaluateRequest crossed = EligiblePatient();
  crossed.set_protocol_id("NCT03671460");
  absl::Status status = client_->Evaluate(EvaluationKind::kEligibility, crossed).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("unknown fact for protocol NCT03671460 version 1.0"),
            std::string::npos)
      << status;
  v1::EvaluateRequest other_way = Nct03671460Patient();
  other_way.set_protocol_id("NCT04094766");
  other_way.set_version("1.0");  // its assessment date precedes NCT04094766's first version
  status = client_->Evaluate(EvaluationKind::kEligibility, other_way).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("unknown fact for protocol NCT04094766"), std::string::npos)
      << status;

  // ALT exactly 5 x ULN: met by NCT03671460 (<=), not by NCT04094766 (<).
  v1::EvaluateRequest at_limit = Nct03671460Patient();
  SetFact(&at_limit, "alt_u_l", 200);
  response = client_->Evaluate(EvaluationKind::kEligibility, at_limit);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->rules(2).outcome(), v1::OUTCOME_TRUE);  // I3
  v1::EvaluateRequest strict = EligiblePatient();
  SetFact(&strict, "alt_u_l", 200);
  response = client_->Evaluate(EvaluationKind::kEligibility, strict);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->decision(), v1::DECISION_INELIGIBLE);

  // No withdrawal rules: refused, never answered from none.
  status = client_->Evaluate(EvaluationKind::kWithdrawal, Nct03671460Patient()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            "NCT03671460 version 1.0 has no withdrawal rules: it cannot decide withdrawal");

  // The funnel and the audit log name the protocol.
  v1::EvaluateRequest child = Nct03671460Patient();
  SetFact(&child, "age_years", 12, "mo");  // exactly 1 year: not "more than 1 year"
  response = client_->Evaluate(EvaluationKind::kEligibility, child);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->decision(), v1::DECISION_INELIGIBLE);
  EXPECT_NE(server_->Scrape().find("trialrules_rule_outcomes_total{outcome=\"FALSE\","
                                   "protocol=\"NCT03671460\",rule=\"I1\",rule_kind=\"inclusion\","
                                   "version=\"1.0\"}"),
            std::string::npos);
  bool audited = false;
  for (absl::string_view line : absl::StrSplit(server_->AuditLog(), '\n')) {
    if (line.find(response->decision_id()) == absl::string_view::npos) continue;
    audited = line.find("\"protocol_id\":\"NCT03671460\",") != absl::string_view::npos &&
              line.find("\"version\":\"1.0\"}") != absl::string_view::npos;
  }
  EXPECT_TRUE(audited);
}

TEST(ServerLifecycleTest, UnavailableAndNotServingBeforeAnyRulesAreLoaded) {
  const std::filesystem::path empty =
      std::filesystem::temp_directory_path() / ("trialrules-empty-" + std::to_string(getpid()));
  std::filesystem::create_directories(empty);
  ServerProcess server({}, empty.string());
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  EXPECT_TRUE(server.WaitForHealth(grpc::health::v1::HealthCheckResponse::NOT_SERVING));
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  const auto response = client.Evaluate(EvaluationKind::kEligibility, EligiblePatient());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(response.status().message(), "no rule sets are loaded yet; retry shortly");
  std::filesystem::remove_all(empty);
}

// A protocol with eligibility criteria only refuses the other questions
// (FAILED_PRECONDITION naming it and the kind) instead of answering them
// from no rules as CONTINUE or NOT_TRIGGERED.
TEST(ServerLifecycleTest, AProtocolWithoutRulesOfAKindRefusesThatKind) {
  const std::filesystem::path rules =
      std::filesystem::temp_directory_path() / ("trialrules-elig-only-" + std::to_string(getpid()));
  std::filesystem::create_directories(rules);
  std::ofstream(rules / "ELIG-v1.textproto") << R"(protocol_id: "ELIG" version: "1"
effective_from: "2020-01-01"
facts { name: "karnofsky" type: NUMBER min: 0 max: 100 }
inclusion { id: "I1" text: "Karnofsky at least 70" expression: "karnofsky >= 70" }
test_cases { name: "in" kind: ELIGIBILITY expect_decision: "ELIGIBLE"
  facts { name: "karnofsky" number: 80 } }
test_cases { name: "out" kind: ELIGIBILITY expect_decision: "INELIGIBLE"
  facts { name: "karnofsky" number: 60 } }
)";
  ServerProcess server({}, rules.string());
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(grpc::health::v1::HealthCheckResponse::SERVING))
      << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  v1::EvaluateRequest request;
  request.set_protocol_id("ELIG");
  v1::FactValue* karnofsky = request.add_facts();
  karnofsky->set_name("karnofsky");
  karnofsky->set_number(80);
  const auto eligible = client.Evaluate(EvaluationKind::kEligibility, request);
  ASSERT_TRUE(eligible.ok()) << eligible.status();
  EXPECT_EQ(eligible->decision(), v1::DECISION_ELIGIBLE);
  for (EvaluationKind kind :
       {EvaluationKind::kWithdrawal, EvaluationKind::kEscalation, EvaluationKind::kStopping}) {
    const auto refused = client.Evaluate(kind, request);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(refused.status().message(),
              absl::StrCat("ELIG version 1 has no ", EvaluationKindName(kind),
                           " rules: it cannot decide ", EvaluationKindName(kind)));
  }
  EXPECT_EQ(server.AuditLog().find("\"method\":\"CheckWithdrawal\""), std::string::npos);
  std::filesystem::remove_all(rules);
}

TEST(ServerLifecycleTest, TakenPortIsAClearErrorAndNonZeroExit) {
  ServerProcess first;
  ASSERT_TRUE(first.WaitForPort());
  ServerProcess second({"--listen=127.0.0.1:" + std::to_string(first.port())});
  EXPECT_EQ(second.WaitForExit(), 1);
  EXPECT_NE(second.Stderr().find("cannot listen on 127.0.0.1:" + std::to_string(first.port()) +
                                 ": the address is in use or invalid"),
            std::string::npos)
      << second.Stderr();
}

TEST(ServerLifecycleTest, AuditLogFailureFailsClosed) {
  ServerProcess server({"--audit-log=/dev/full"});
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  TrialRulesClient client(server.Target(), absl::Seconds(5));
  for (int i = 0; i < 100; ++i) {  // wait for the rules
    if (client.ListRuleSets().ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto response = client.Evaluate(EvaluationKind::kEligibility, EligiblePatient());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(response.status().message().find("could not be recorded in the audit log"),
            absl::string_view::npos);
  EXPECT_TRUE(server.WaitForHealth(grpc::health::v1::HealthCheckResponse::NOT_SERVING));
  EXPECT_NE(server.Stderr().find("audit log /dev/full: write failed"), std::string::npos);
}

TEST(ServerLifecycleTest, SigtermWhileCallsAreInFlightLosesNoAnswer) {
  ServerProcess server;
  ASSERT_TRUE(server.WaitForPort());
  ASSERT_TRUE(server.WaitForHealth(grpc::health::v1::HealthCheckResponse::SERVING));
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::mutex mutex;
  std::vector<std::string> decision_ids;
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      TrialRulesClient client(server.Target(), absl::Seconds(5));
      const v1::EvaluateRequest request = EligiblePatient();
      while (!stop) {
        const auto response = client.Evaluate(EvaluationKind::kEligibility, request);
        if (!response.ok()) {
          // After shutdown starts, calls are refused; never answered wrongly.
          EXPECT_TRUE(response.status().code() == absl::StatusCode::kUnavailable ||
                      response.status().code() == absl::StatusCode::kCancelled)
              << response.status();
          continue;
        }
        ++answered;
        std::lock_guard<std::mutex> lock(mutex);
        decision_ids.push_back(response->decision_id());
      }
    });
  }
  while (answered < 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server.Signal(SIGTERM);
  const int exit_code = server.WaitForExit();
  stop = true;
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(exit_code, 0) << server.Stderr();
  const std::string audit = server.AuditLog();
  int missing = 0;
  for (const std::string& id : decision_ids) {
    if (audit.find("\"decision_id\":\"" + id + "\"") == std::string::npos) ++missing;
  }
  EXPECT_EQ(missing, 0) << "of " << decision_ids.size() << " answers";
  EXPECT_GE(decision_ids.size(), 200u);
}

}  // namespace
}  // namespace trialrules

namespace trialrules {
namespace {

// A rules directory laid out as the kubelet lays out a ConfigMap volume:
// each key a symlink to ..data/KEY, ..data a symlink to a timestamped
// directory, swapped with an atomic rename and the old directory deleted.
class ConfigMapDir {
 public:
  explicit ConfigMapDir(std::filesystem::path root) : root_(std::move(root)) {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  ~ConfigMapDir() { std::filesystem::remove_all(root_); }

  void Update(const std::map<std::string, std::string>& files) {
    namespace fs = std::filesystem;
    const std::string generation = "..2026_11_25_" + std::to_string(++generation_);
    fs::create_directories(root_ / generation);
    for (const auto& [key, text] : files) {
      std::ofstream(root_ / generation / key, std::ios::binary) << text;
    }
    fs::create_symlink(generation, root_ / "..data_tmp");
    fs::rename(root_ / "..data_tmp", root_ / "..data");
    for (const auto& [key, text] : files) {
      if (!fs::is_symlink(root_ / key)) fs::create_symlink(fs::path("..data") / key, root_ / key);
    }
    if (!previous_.empty()) fs::remove_all(root_ / previous_);
    previous_ = generation;
  }
  std::string path() const { return root_.string(); }

 private:
  std::filesystem::path root_;
  int generation_ = 0;
  std::string previous_;
};

// "3.N" → N; the bundled 2.0 → 0.
int AmendmentNumber(const std::string& version) {
  return version.rfind("3.", 0) == 0 ? std::stoi(version.substr(2)) : 0;
}

TEST(ReloadUnderLoadTest, ConfigMapSwapsAlternatingGoodAndBadNeverFailACall) {
  constexpr int kSwaps = 100;
  const std::string v1 = ReadText(kSource + "/rules/NCT04094766-v1.0.textproto");
  const std::string v2 = ReadText(kSource + "/rules/NCT04094766-v2.0.textproto");
  auto amendment = [&](int n) {
    std::string text = v2;
    const std::string from = "version: \"2.0\"";
    text.replace(text.find(from), from.size(), "version: \"3." + std::to_string(n) + "\"");
    const std::string date = "effective_from: \"2020-06-01\"";
    text.replace(text.find(date), date.size(), "effective_from: \"2021-01-01\"");
    return text;
  };
  ConfigMapDir rules(std::filesystem::temp_directory_path() /
                     ("trialrules-configmap-" + std::to_string(getpid())));
  rules.Update({{"v1.textproto", v1}, {"v2.textproto", v2}, {"amendment.textproto", amendment(0)}});
  ServerProcess server({"--reload-interval-ms=20"}, rules.path());
  ASSERT_TRUE(server.WaitForPort()) << server.Stderr();
  ASSERT_TRUE(server.WaitForHealth(grpc::health::v1::HealthCheckResponse::SERVING));
  TrialRulesClient control(server.Target(), absl::Seconds(5));

  // Versions: `confirmed` is seen in force by ListRuleSets; `written` is the
  // newest good one put in the directory. A call must be answered by a good
  // version between the confirmed one when it started and the newest written
  // when it ended.
  std::atomic<int> confirmed{0}, written{0};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> calls{0}, failures{0}, out_of_window{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      TrialRulesClient client(server.Target(), absl::Seconds(5));
      v1::EvaluateRequest request = EligiblePatient();
      for (auto& fact : *request.mutable_facts()) {
        if (fact.name() == "assessment_date") fact.set_date("2022-01-01");
      }
      while (!stop) {
        const int low = confirmed.load();
        const auto response = client.Evaluate(EvaluationKind::kEligibility, request);
        const int high = written.load();
        ++calls;
        if (!response.ok()) {
          ++failures;
          ADD_FAILURE() << response.status();
          continue;
        }
        const int answered = AmendmentNumber(response->rule_set().version());
        if (answered < low || answered > high || answered % 2 != 0) ++out_of_window;
      }
    });
  }

  auto in_force = [&](int n) {
    const auto list = control.ListRuleSets();
    if (!list.ok()) return false;
    for (const auto& info : list->rule_sets()) {
      if (AmendmentNumber(info.rule_set().version()) == n &&
          info.rule_set().version() != "2.0") {
        return true;
      }
    }
    return false;
  };
  auto refused_now = [&] {
    const auto list = control.ListRuleSets();
    return list.ok() && list->refused_size() > 0;
  };
  auto wait_for = [](const std::function<bool()>& condition) {
    for (int i = 0; i < 1000; ++i) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  };
  ASSERT_TRUE(wait_for([&] { return in_force(0); }));

  int good_swaps = 0, bad_swaps = 0;
  for (int swap = 1; swap <= kSwaps; ++swap) {
    // Good versions are even-numbered; odd swaps write a half-written file.
    const int n = swap;
    if (swap % 2 == 0) {
      written = n;
      rules.Update({{"v1.textproto", v1}, {"v2.textproto", v2}, {"amendment.textproto", amendment(n)}});
      ASSERT_TRUE(wait_for([&] { return in_force(n); })) << "swap " << swap;
      confirmed = n;
      ++good_swaps;
    } else {
      const std::string half = amendment(n).substr(0, v2.size() / 2);
      rules.Update({{"v1.textproto", v1}, {"v2.textproto", v2}, {"amendment.textproto", half}});
      ASSERT_TRUE(wait_for(refused_now)) << "swap " << swap;
      ++bad_swaps;
    }
  }
  stop = true;
  for (std::thread& caller : callers) caller.join();
  std::cerr << "reload under load: " << calls << " calls, " << good_swaps << " good and "
            << bad_swaps << " bad ConfigMap swaps, " << failures << " failed calls, "
            << out_of_window << " answers outside their window\n";
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(out_of_window.load(), 0);
  EXPECT_GT(calls.load(), 1000);
  server.Signal(SIGTERM);
  EXPECT_EQ(server.WaitForExit(), 0) << server.Stderr();
}

}  // namespace
}  // namespace trialrules

namespace trialrules {
namespace {

TEST_F(ServerTest, SamePatientTwoSitesDifferentAnswers) {
  v1::EvaluateRequest request = EligiblePatient();
  request.set_ignore_unknown_facts(true);
  SetFact(&request, "karnofsky", 65);  // 2.0 accepts >= 60, 1.0 needs >= 70
  for (auto& fact : *request.mutable_facts()) {
    if (fact.name() == "assessment_date") fact.set_date("2020-07-01");
    if (fact.name() == "immunophenotype_date") fact.set_date("2020-05-01");
    if (fact.name() == "last_chemo_date") fact.set_date("2020-06-01");
  }
  auto prior_car_t = request.add_facts();
  prior_car_t->set_name("prior_car_t");
  prior_car_t->set_boolean(false);

  request.set_site_id("XIAN-01");  // activated 2.0 on 2020-06-01
  auto first = client_->Evaluate(EvaluationKind::kEligibility, request);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->rule_set().version(), "2.0");
  EXPECT_EQ(first->decision(), v1::DECISION_ELIGIBLE);

  request.set_site_id("XIAN-02");  // still on 1.0 until 2020-09-01
  auto second = client_->Evaluate(EvaluationKind::kEligibility, request);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->rule_set().version(), "1.0");
  EXPECT_EQ(second->decision(), v1::DECISION_INELIGIBLE);
  EXPECT_EQ(second->ignored_facts(0), "prior_car_t");

  for (auto& fact : *request.mutable_facts()) {
    if (fact.name() == "assessment_date") fact.set_date("2020-09-01");
    if (fact.name() == "immunophenotype_date") fact.set_date("2020-08-01");
    if (fact.name() == "last_chemo_date") fact.set_date("2020-08-01");
  }
  auto later = client_->Evaluate(EvaluationKind::kEligibility, request);
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(later->rule_set().version(), "2.0");
  EXPECT_EQ(later->decision(), v1::DECISION_ELIGIBLE);

  const auto list = client_->ListRuleSets();
  ASSERT_EQ(list->site_activations_size(), 1);
  EXPECT_EQ(list->site_activations(0).sites(1).site_id(), "XIAN-02");
  EXPECT_EQ(list->site_activations(0).sites(1).activations(1).activated_on(), "2020-09-01");
}

}  // namespace
}  // namespace trialrules

namespace trialrules {
namespace {

TEST_F(ServerTest, CompareVersionsReportsWhoseDecisionChangesAndWhy) {
  grpc::ClientContext context;
  v1::CompareResponse response;
  auto stream = client_->stub()->CompareVersions(&context, &response);
  auto patients = ParsePatientsJson(ReadText(kSource + "/tests/data/facts/screened_patients.json"));
  ASSERT_TRUE(patients.ok());
  for (size_t i = 0; i < patients->size(); ++i) {
    v1::CompareRequest request;
    if (i == 0) {
      request.set_protocol_id("NCT04094766");
      request.set_base_version("1.0");
      request.set_candidate_version("2.0");
    }
    v1::ComparePatient* patient = request.add_patients();
    patient->set_subject_ref((*patients)[i].subject_ref);
    v1::EvaluateRequest facts;
    AddFacts((*patients)[i].facts, &facts);
    *patient->mutable_facts() = facts.facts();
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(response.patients(), 5);
  EXPECT_EQ(response.changed(), 2);
  ASSERT_EQ(response.changes_size(), 2);
  EXPECT_EQ(response.changes(0).subject_ref(), "P-KPS-65");
  EXPECT_EQ(response.changes(0).base(), v1::DECISION_INELIGIBLE);
  EXPECT_EQ(response.changes(0).rules(0), "I6");
  EXPECT_EQ(response.changes(1).rules(0), "E11");
  ASSERT_EQ(response.refused_size(), 1);
  EXPECT_EQ(response.refused(0).subject_ref(), "P-BAD");
}

TEST_F(ServerTest, CompareVersionsRefusesAnUnknownVersion) {
  grpc::ClientContext context;
  v1::CompareResponse response;
  auto stream = client_->stub()->CompareVersions(&context, &response);
  v1::CompareRequest request;
  request.set_protocol_id("NCT04094766");
  request.set_base_version("1.0");
  request.set_candidate_version("7.0");
  stream->Write(request);
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(),
            "version \"7.0\": protocol NCT04094766 has no such version loaded");
}

}  // namespace
}  // namespace trialrules

namespace trialrules {
namespace {

using testing::RunCli;

// `eval --server --site` asks the server for the site's version, which
// answers as the offline catalog does.
TEST_F(ServerTest, EvalAtASiteOnTheServerUsesTheSitesVersion) {
  for (const auto& [site, version] : {std::pair{"XIAN-01", "2.0"}, std::pair{"XIAN-02", "1.0"}}) {
    const auto run = RunCli("eval --protocol NCT04094766 --json --facts "
                            "tests/data/facts/consented_2020_07_01.json --site " +
                            std::string(site) + " --server " + server_->Target());
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find(std::string("\"version\":\"") + version + "\""),
              std::string::npos)
        << site << ": " << run.output;
  }
}

TEST_F(ServerTest, DiffOnTheServerPrintsWhatDiffOfflinePrints) {
  const std::string diff =
      "diff --protocol NCT04094766 --from 1.0 --to 2.0 "
      "--patients tests/data/facts/screened_patients.json";
  for (const std::string format : {"", " --json"}) {
    const auto offline = RunCli(diff + " --rules rules" + format);
    const auto online = RunCli(diff + " --server " + server_->Target() + format);
    EXPECT_EQ(offline.exit_code, 0) << offline.output;
    EXPECT_EQ(online.exit_code, 0) << online.output;
    EXPECT_EQ(online.output, offline.output);
    EXPECT_NE(online.output.find("P-PRIOR-CART"), std::string::npos);
  }
  const auto unknown = RunCli("diff --protocol NCT04094766 --from 1.0 --to 7.0 "
                              "--patients tests/data/facts/screened_patients.json --server " +
                              server_->Target());
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.output,
            "error: version \"7.0\": protocol NCT04094766 has no such version loaded\n");
}

}  // namespace
}  // namespace trialrules
