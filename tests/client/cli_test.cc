// The trialrules CLI as a rule author runs it: real binary, real files.
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/command.h"
#include "tests/fhir/ndjson_export.h"

namespace {

using CliRun = trialrules::testing::CommandRun;

CliRun Cli(const std::string& args) { return trialrules::testing::RunCli(args); }

TEST(CliTest, CheckOnBundledRulesIsClean) {
  const CliRun run = Cli("check rules/");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("6 of 6 files loaded, 0 problems"), std::string::npos)
      << run.output;
  for (const char* table : {"decision table astct-crs-2019 version 1.0, 1 terms, 8 rows",
                            "decision table astct-icans-2019 version 1.0, 1 terms, 14 rows",
                            "decision table ctcae-5.0 version 1.0, 6 terms, 38 rows"}) {
    EXPECT_NE(run.output.find(table), std::string::npos) << table << "\n" << run.output;
  }
}

TEST(CliTest, CheckCoverageCountsTheTestCasesEachTableRowHoldsIn) {
  const CliRun run = Cli("check --coverage rules/astct-crs-2019-1.0.table.textproto");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("cytokine_release_syndrome row death_5 (output 5): holds in "),
            std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("holds in 0 test cases"), std::string::npos) << run.output;
}

TEST(CliTest, CheckCoverageShowsEachRulesOutcomesAndUntestedBoundaries) {
  const CliRun run = Cli(
      "check --coverage rules/NCT04094766-v2.0.textproto rules/ctcae-5.0-1.0.table.textproto "
      "rules/astct-crs-2019-1.0.table.textproto rules/astct-icans-2019-1.0.table.textproto");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("  I8 (inclusion): TRUE FALSE UNKNOWN; 10 of 10 boundaries tested\n"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("untested: `1 - beta_cdf(0.2, 1 + n_grade4plus_crs, 1 + n_infused - "
                            "n_grade4plus_crs) > 0.9`"),
            std::string::npos)
      << run.output;
}

TEST(CliTest, CheckNamesAReferenceToATableThatIsNotThere) {
  const CliRun run = Cli("check rules/NCT04094766-v1.0.textproto");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("protocol NCT04094766 version 1.0 uses decision table ctcae-5.0 "
                            "version 1.0, which is not loaded"),
            std::string::npos)
      << run.output;
}

TEST(CliTest, CheckPrintsProblemsAndExitsOne) {
  const CliRun run = Cli("check --quiet tests/data/bad_rules/unknown_fact.textproto");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.output,
            "tests/data/bad_rules/unknown_fact.textproto:7:53: rule I1: unknown "
            "name 'karnofksy': not a declared fact, derived value or rule\n");
}

TEST(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Cli("").exit_code, 2);
  EXPECT_EQ(Cli("frobnicate").exit_code, 2);
  EXPECT_EQ(Cli("check").exit_code, 2);
  EXPECT_EQ(Cli("eval --rules rules --protocol NCT04094766").exit_code, 2);
  EXPECT_EQ(Cli("eval --rules rules --protocol NCT04094766 --kind sideways "
                "--facts tests/data/facts/eligible_patient.json").exit_code, 2);
}

TEST(CliTest, EvalAnswersUnderTheVersionInForceOnTheAssessmentDate) {
  const CliRun run = Cli("eval --rules rules --protocol NCT04094766 "
                      "--facts tests/data/facts/eligible_patient.json --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output.rfind("{\"decision\":\"ELIGIBLE\",\"rule_set\":{\"protocol_id\":"
                             "\"NCT04094766\",\"version\":\"1.0\",\"sha256\":\"", 0), 0u)
      << run.output;
  EXPECT_NE(run.output.find("{\"id\":\"I6\",\"kind\":\"inclusion\",\"outcome\":\"TRUE\","
                            "\"missing_facts\":[],\"not_finite\":false}"),
            std::string::npos);
}

TEST(CliTest, EvalWithExplicitVersionReportsMissingFacts) {
  // Version 2.0 adds E11 (prior_car_t), which this patient's facts lack.
  const CliRun run = Cli("eval --rules rules --protocol NCT04094766 --version 2.0 "
                      "--facts tests/data/facts/eligible_patient.json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("eligibility decision: INDETERMINATE"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("missing facts: prior_car_t"), std::string::npos);
  EXPECT_NE(run.output.find("answered by: NCT04094766 version 2.0"), std::string::npos);
}

TEST(CliTest, EvalEscalation) {
  const CliRun run = Cli("eval --rules rules --protocol NCT04094766 --kind escalation "
                      "--facts tests/data/facts/cohort_one_of_three.json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("escalation decision: EXPAND"), std::string::npos)
      << run.output;
}

TEST(CliTest, EvalRefusesBadFactOnOneLine) {
  const CliRun run = Cli("eval --rules rules --protocol NCT04094766 "
                      "--facts tests/data/facts/karnofsky_out_of_range.json");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.output,
            "error: fact \"karnofsky\" = 150: outside the valid range 0 to 100\n");
}

// A FHIR Bundle of the same patient (tests/data/fhir/make_bundle.py wrote it
// from the facts file) gets the same answer, with where each fact came from.
TEST(CliTest, EvalFromAFhirBundleAnswersAsItsTypedFactsWithProvenance) {
  const CliRun typed = Cli("eval --rules rules --protocol NCT04094766 --json "
                           "--facts tests/data/facts/eligible_patient.json");
  const CliRun fhir = Cli("eval --rules rules --protocol NCT04094766 --json "
                          "--fhir tests/data/fhir/eligible_patient.json "
                          "--assessment-date 2020-01-15");
  ASSERT_EQ(typed.exit_code, 0) << typed.output;
  ASSERT_EQ(fhir.exit_code, 0) << fhir.output;
  const size_t provenance = fhir.output.find(",\"provenance\":{");
  ASSERT_NE(provenance, std::string::npos) << fhir.output;
  EXPECT_EQ(fhir.output.substr(0, provenance) + "}\n", typed.output);
  for (const char* source : {"\"age_years\":\"Patient/p1\"", "\"sex_female\":\"Patient/p1\"",
                             "\"creatinine_mg_dl\":\"Observation/o18\"",
                             "\"creatinine_uln_mg_dl\":\"Observation/o18\"",
                             "\"informed_consent\":\"Observation/o1\""}) {
    EXPECT_NE(fhir.output.find(source, provenance), std::string::npos) << source;
  }
  const CliRun table = Cli("eval --rules rules --protocol NCT04094766 "
                           "--fhir tests/data/fhir/eligible_patient.json "
                           "--assessment-date 2020-01-15");
  EXPECT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("eligibility decision: ELIGIBLE"), std::string::npos)
      << table.output;
}

TEST(CliTest, EvalRefusesABundleOnStderrWithExitCodeOne) {
  const trialrules::testing::CommandRun run = trialrules::testing::RunCommand(
      std::string("cd ") + TRIALRULES_SOURCE_DIR + " && " + TRIALRULES_CLI +
      " eval --rules rules --protocol NCT04094766 --fhir tests/data/fhir/two_patients.json"
      " --assessment-date 2020-01-15 2>&1 >/dev/null");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.output,
            "error: the Bundle has 2 Patient resources; it must have exactly one\n");
  // Assessed the day before its Observations were taken, the Bundle gives only
  // the Patient's facts: later Observations do not count.
  const CliRun early = Cli("eval --rules rules --protocol NCT04094766 "
                           "--fhir tests/data/fhir/eligible_patient.json "
                           "--assessment-date 2020-01-14 --json");
  EXPECT_EQ(early.exit_code, 0) << early.output;
  EXPECT_NE(early.output.find("\"decision\":\"INDETERMINATE\""), std::string::npos)
      << early.output;
}

TEST(CliTest, EvalFhirUsageErrors) {
  const std::string eval = "eval --rules rules --protocol NCT04094766 ";
  EXPECT_EQ(Cli(eval + "--fhir tests/data/fhir/eligible_patient.json "
                       "--facts tests/data/facts/eligible_patient.json").exit_code, 2);
  EXPECT_EQ(Cli(eval + "--fhir tests/data/fhir/eligible_patient.json "
                       "--assessment-date 2020-02-30").exit_code, 2);
  EXPECT_EQ(Cli(eval + "--facts tests/data/facts/eligible_patient.json "
                       "--assessment-date 2020-01-15").exit_code, 2);
  EXPECT_EQ(Cli("eval --server localhost:1 --protocol NCT04094766 "
                "--fhir tests/data/fhir/eligible_patient.json").exit_code, 2);
}

// `--site` answers with the version the site had activated on the
// assessment date (rules/NCT04094766.sites.textproto): on 2020-07-01,
// XIAN-01 has 2.0 and XIAN-02 still 1.0; a site not listed follows the
// effective dates; before a site's first activation there is no answer.
TEST(CliTest, EvalAtASiteAnswersWithTheVersionThatSiteActivated) {
  const std::string eval = "eval --rules rules --protocol NCT04094766 --json "
                           "--facts tests/data/facts/consented_2020_07_01.json --site ";
  for (const auto& [site, version] :
       {std::pair{"XIAN-01", "2.0"}, std::pair{"XIAN-02", "1.0"}, std::pair{"ELSEWHERE", "2.0"}}) {
    const CliRun run = Cli(eval + site);
    EXPECT_EQ(run.exit_code, 0) << site << ": " << run.output;
    EXPECT_NE(run.output.find(std::string("\"version\":\"") + version + "\""), std::string::npos)
        << site << ": " << run.output;
  }
  // XIAN-02 activated its first version on 2019-10-15.
  const CliRun early = Cli("eval --rules rules --protocol NCT04094766 --site XIAN-02 "
                           "--facts tests/data/facts/consented_2019_10_01.json");
  EXPECT_EQ(early.exit_code, 1) << early.output;
  EXPECT_NE(early.output.find("XIAN-02"), std::string::npos) << early.output;
}

TEST(CliTest, EvalRefusesDateWithNoVersionInForce) {
  const CliRun run = Cli("eval --rules rules --protocol NCT04094766 "
                      "--facts tests/data/bad_rules/../facts/karnofsky_out_of_range.json "
                      "--version 7");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.output,
            "error: version \"7\": protocol NCT04094766 has no such version loaded\n");
}

}  // namespace

namespace {

TEST(CliTest, DiffShowsWhoseDecisionAnAmendmentChangesAndWhy) {
  const CliRun run = Cli("diff --rules rules --protocol NCT04094766 --from 1.0 --to 2.0 "
                         "--patients tests/data/facts/screened_patients.json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output,
            "5 patients, 2 change decision from 1.0 to 2.0\n"
            "  INDETERMINATE  -> INELIGIBLE     1\n"
            "  INELIGIBLE     -> INDETERMINATE  1\n"
            "rules behind the changes:\n"
            "  E11    1 patients\n"
            "  I6     1 patients\n"
            "P-KPS-65: INELIGIBLE -> INDETERMINATE (I6)\n"
            "P-PRIOR-CART: INDETERMINATE -> INELIGIBLE (E11)\n"
            "P-BAD: refused: fact \"karnofsky\" = 500: outside the valid range 0 to 100\n");
}

TEST(CliTest, DiffJsonCountsEveryTransition) {
  const CliRun run = Cli("diff --rules rules --protocol NCT04094766 --from 1.0 --to 2.0 "
                         "--patients tests/data/facts/screened_patients.json --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output.rfind("{\"patients\":5,\"changed\":2,", 0), 0u) << run.output;
  EXPECT_NE(run.output.find("{\"from\":\"INELIGIBLE\",\"to\":\"INELIGIBLE\",\"patients\":1}"),
            std::string::npos);
}

TEST(CliTest, GradeJsonIsTheContractShape) {
  // 1.8 mg/dL is exactly 1.5 x ULN 1.2: grade 1 (binary floating point
  // would make it 2).
  const CliRun run = Cli(
      "grade --rules rules/ --table ctcae-5.0 --term blood_bilirubin_increased "
      "--observations tests/data/observations/bilirubin_1_8_uln_1_2.json --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output,
            "{\"table\":\"ctcae-5.0\",\"term\":\"blood_bilirubin_increased\",\"grade\":1,"
            "\"grade_min\":1,\"grade_max\":1,\"domains\":[\"uln\"],\"missing\":[]}\n");
}

TEST(CliTest, GradeTableShowsEveryRowAndTheDecidingDomains) {
  const CliRun run =
      Cli("grade --rules rules/ --table astct-crs-2019 "
          "--observations tests/data/observations/crs_39_5_one_vasopressor_cannula.json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("cytokine_release_syndrome grade: 3 (hypotension)"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("oxygen_2"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("graded by: astct-crs-2019 version 1.0 (sha256 "),
            std::string::npos)
      << run.output;
}

TEST(CliTest, GradeWithAMissingReferenceGivesTheRangeAndWhatDecidesIt) {
  const CliRun run =
      Cli("grade --rules rules/ --table ctcae-5.0 --term neutrophil_count_decreased "
          "--observations tests/data/observations/anc_1_6_without_lln.json --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output,
            "{\"table\":\"ctcae-5.0\",\"term\":\"neutrophil_count_decreased\",\"grade\":null,"
            "\"grade_min\":0,\"grade_max\":1,\"domains\":[],\"missing\":[\"lln\"]}\n");
}

TEST(CliTest, GradeRefusesObservationsNamingThem) {
  CliRun run = Cli("grade --rules rules/ --table astct-crs-2019 "
                   "--observations tests/data/observations/crs_unknown_device.json");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("observation \"o2_device\" = \"oxygen_tent\": not an allowed value "
                            "(none, nasal_cannula, blow_by, hfnc, facemask, nonrebreather, "
                            "venturi, cpap, bipap, mechanical_ventilation)"),
            std::string::npos)
      << run.output;
  run = Cli("grade --rules rules/ --table astct-icans-2019 "
            "--observations tests/data/observations/icans_age_8.json");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("CAPD"), std::string::npos) << run.output;
  run = Cli("grade --rules rules/ --table ctcae-5.0 "
            "--observations tests/data/observations/anc_1_6_without_lln.json");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("a term is required: table ctcae-5.0 version 1.0 (terms: "
                            "neutrophil_count_decreased, "),
            std::string::npos)
      << run.output;
}

// One patients file, two protocols, one pass: each protocol takes the facts
// it declares; a patient refused by one is still screened by the other.
TEST(CliTest, ScreenAnswersEveryProtocolForEachPatientInOnePass) {
  CliRun run = Cli("screen --rules rules/ --protocols NCT04094766,NCT03671460 "
                   "--patients tests/data/facts/two_protocols_patients.json --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("{\"subject_ref\":\"P-002\",\"protocols\":{\"NCT04094766\":{"
                            "\"version\":\"1.0\",\"decision\":\"INELIGIBLE\"},\"NCT03671460\":{"
                            "\"version\":\"1.0\",\"decision\":\"ELIGIBLE\"}}}"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("\"NCT04094766\":{\"version\":\"\",\"decision\":\"REFUSED\","
                            "\"error\":\"fact \\\"karnofsky\\\" = 150: outside the valid range"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("{\"summary\":{\"NCT04094766\":{\"eligible\":2,\"ineligible\":1,"
                            "\"indeterminate\":0,\"refused\":1,\"excluded_by\":{\"I8\":1}},"
                            "\"NCT03671460\":{\"eligible\":3,\"ineligible\":0,"
                            "\"indeterminate\":1,\"refused\":0,\"excluded_by\":{}}}}"),
            std::string::npos)
      << run.output;
  run = Cli("screen --rules rules/ --protocols NCT04094766,NCT03671460 "
            "--patients tests/data/facts/two_protocols_patients.json");
  EXPECT_NE(run.output.find("NCT03671460: 3 eligible, 0 ineligible, 1 indeterminate, 0 refused"),
            std::string::npos)
      << run.output;
}

// A FHIR Bulk Data export screened offline through the protocol's
// bindings: a line per patient with --json, the refused one naming its
// line, and the counts adding up to every patient.
TEST(CliTest, ScreenReadsAFhirBulkExport) {
  std::vector<trialrules::testing::PatientLines> patients =
      trialrules::testing::SyntheticPatients(20, 1);
  patients[3][1] = absl::StrReplaceAll(
      patients[3][1], {{R"("code":"mg/dL"})", R"("code":"mmol/L"})"},
                       {R"("code":"umol/L"})", R"("code":"mmol/L"})"}});
  const std::string path = ::testing::TempDir() + "/screen_export.ndjson";
  std::ofstream(path) << trialrules::testing::ExportText(patients);
  CliRun run = Cli("screen --rules rules/ --protocols NCT04094766 --fhir-ndjson " + path +
                   " --assessment-date 2020-01-15 --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  const std::vector<std::string> lines = absl::StrSplit(run.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 21u) << run.output;
  EXPECT_EQ(lines[0].rfind("{\"subject_ref\":\"Patient/pt0\",\"protocols\":{\"NCT04094766\":{"
                           "\"version\":\"1.0\",\"decision\":\"",
                           0),
            0u)
      << lines[0];
  EXPECT_EQ(lines[3],
            "{\"subject_ref\":\"Patient/pt3\",\"protocols\":{\"NCT04094766\":{\"version\":\"\","
            "\"decision\":\"REFUSED\",\"error\":\"line 78 (Observation/pt3-o1): "
            "valueQuantity.code \\\"mmol/L\\\" is not a unit creatinine_mg_dl takes "
            "(\\\"mg/dL\\\", \\\"umol/L\\\")\"}}}");
  int eligible = 0, ineligible = 0, indeterminate = 0, refused = 0;
  ASSERT_EQ(std::sscanf(lines[20].c_str(),
                        "{\"summary\":{\"NCT04094766\":{\"eligible\":%d,\"ineligible\":%d,"
                        "\"indeterminate\":%d,\"refused\":%d",
                        &eligible, &ineligible, &indeterminate, &refused),
            4)
      << lines[20];
  EXPECT_EQ(eligible + ineligible + indeterminate + refused, 20);
  EXPECT_EQ(refused, 1);

  run = Cli("screen --rules rules/ --protocols NCT04094766 --fhir-ndjson " + path +
            " --assessment-date 2020-01-15");
  EXPECT_NE(run.output.find("Patient/pt3       REFUSED"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find(" refused; excluded by "), std::string::npos) << run.output;
}

// The boundary table of SAFETY.md 4.2 for phi = 0.30, n = 1..12, as
// `design boin --json` prints it.
constexpr char kBoinBoundariesThirtyPercent[] =
    "\"boundaries\":[{\"n\":1,\"escalate_max\":0,\"deescalate_min\":1,\"eliminate_min\":null},"
    "{\"n\":2,\"escalate_max\":0,\"deescalate_min\":1,\"eliminate_min\":null},"
    "{\"n\":3,\"escalate_max\":0,\"deescalate_min\":2,\"eliminate_min\":3},"
    "{\"n\":4,\"escalate_max\":0,\"deescalate_min\":2,\"eliminate_min\":3},"
    "{\"n\":5,\"escalate_max\":1,\"deescalate_min\":2,\"eliminate_min\":4},"
    "{\"n\":6,\"escalate_max\":1,\"deescalate_min\":3,\"eliminate_min\":4},"
    "{\"n\":7,\"escalate_max\":1,\"deescalate_min\":3,\"eliminate_min\":5},"
    "{\"n\":8,\"escalate_max\":1,\"deescalate_min\":3,\"eliminate_min\":5},"
    "{\"n\":9,\"escalate_max\":2,\"deescalate_min\":4,\"eliminate_min\":5},"
    "{\"n\":10,\"escalate_max\":2,\"deescalate_min\":4,\"eliminate_min\":6},"
    "{\"n\":11,\"escalate_max\":2,\"deescalate_min\":4,\"eliminate_min\":6},"
    "{\"n\":12,\"escalate_max\":2,\"deescalate_min\":5,\"eliminate_min\":7}]";

TEST(CliTest, DesignBoinJsonIsTheContractShape) {
  CliRun run = Cli("design boin --target 0.30 --n 3,3,0 --y 0,2,0 --current 2 --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, std::string("{\"lambda_e\":0.2364906852,\"lambda_d\":0.3585194646,") +
                            kBoinBoundariesThirtyPercent +
                            ",\"decision\":\"DE_ESCALATE\",\"next_dose\":1,\"eliminated\":[],"
                            "\"mtd\":null,\"estimates\":[]}\n");
  run = Cli("design boin --target 0.30 --n 3,3,0 --y 0,3,0 --current 2 --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find(",\"decision\":\"DE_ESCALATE\",\"next_dose\":1,"
                            "\"eliminated\":[2,3],\"mtd\":null,\"estimates\":[]}\n"),
            std::string::npos)
      << run.output;
  run = Cli("design boin --target 0.30 --n 6,0,0 --y 4,0,0 --current 1 --json");
  EXPECT_NE(run.output.find(",\"decision\":\"STOP_NO_MTD\",\"next_dose\":null,"
                            "\"eliminated\":[1,2,3],"),
            std::string::npos)
      << run.output;
}

TEST(CliTest, DesignBoinWithoutCountsPrintsOnlyTheBoundaries) {
  const CliRun run = Cli("design boin --target 0.3 --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, std::string("{\"lambda_e\":0.2364906852,\"lambda_d\":0.3585194646,") +
                            kBoinBoundariesThirtyPercent + "}\n");
}

TEST(CliTest, DesignBoinSelectsTheMtdWithEachDosesIsotonicEstimate) {
  const CliRun run = Cli(
      "design boin --target 0.3 --n 3,3,15,9,0 --y 0,0,4,4,0 --current 4 --select-mtd --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("{\"n\":15,\"escalate_max\":3,\"deescalate_min\":6,"
                            "\"eliminate_min\":8}]"),
            std::string::npos)
      << "rows up to the largest n treated\n" << run.output;
  EXPECT_NE(run.output.find(",\"decision\":\"DE_ESCALATE\",\"next_dose\":3,\"eliminated\":[],"
                            "\"mtd\":3,\"estimates\":[0.01612903226,0.01612903226,"
                            "0.2682119205,0.4450549451,null]}\n"),
            std::string::npos)
      << run.output;
}

TEST(CliTest, DesignBoinTextShowsTheTableTheCountsAndTheDecision) {
  const CliRun run =
      Cli("design boin --target 0.3 --n 3,3,0 --y 0,3,0 --current 2 --select-mtd");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  for (const char* line :
       {"BOIN design: target 0.3, phi1 0.18, phi2 0.42, n_earlystop 100, "
        "elimination cut-off 0.95\n",
        "lambda_e 0.2364906852  escalate when y/n <= lambda_e\n",
        "   n  escalate if y <=  de-escalate if y >=  eliminate if y >=\n",
        "   3                 0                    2                  3\n",
        "  12                 2                    5                  7\n",
        "   1     3     0  0.2401          0.0161    MTD\n",
        "   2     3     3  0.9919          -         current, eliminated\n",
        "dose     n     y  Pr(p > 0.3)     estimate\n",
        "DE_ESCALATE to dose 1; doses 2 and 3 eliminated\n", "MTD: dose 1\n"}) {
    EXPECT_NE(run.output.find(line), std::string::npos) << line << "\n" << run.output;
  }
}

TEST(CliTest, DesignBoinRefusesInputsNamingThem) {
  CliRun run = Cli("design boin --target 0.3 --n 3,2,0 --y 0,3,0 --current 2");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(run.output,
            "error: --n/--y: dose 2: y = 3 DLTs is more than n = 2 evaluable patients\n");
  run = Cli("design boin --target 0.3 --n 3,3 --y 0,2,0 --current 2");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(run.output, "error: --n \"3,3\" has 2 doses and --y \"0,2,0\" has 3\n");
  run = Cli("design boin --target 0.3 --n 3,x,0 --y 0,2,0 --current 2");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(run.output, "error: --n \"3,x,0\": \"x\" is not a whole number\n");
  run = Cli("design boin --target thirty");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(run.output, "error: --target \"thirty\" is not a number\n");
  run = Cli("design boin --target 0.7");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(run.output, "error: BOIN phi = 0.7: the target must be 0.05 to 0.6\n");
  run = Cli("design boin --target 0.3 --phi2 0.32");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("BOIN phi2 = 0.32: "), std::string::npos) << run.output;
  run = Cli("design boin --target 0.3 --n 3,3,0 --y 0,2,0 --current 4");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(run.output, "error: --current 4: not one of the 3 doses (1 to 3)\n");
}

TEST(CliTest, DesignBoinUsageErrorsExitTwo) {
  EXPECT_EQ(Cli("design").exit_code, 2);
  EXPECT_EQ(Cli("design 3+3 --target 0.3").exit_code, 2);
  EXPECT_EQ(Cli("design boin").exit_code, 2);
  EXPECT_EQ(Cli("design boin --target 0.3 --n 3,3 --y 0,2").exit_code, 2);
  EXPECT_EQ(Cli("design boin --target 0.3 --n 3,3 --current 2").exit_code, 2);
  EXPECT_EQ(Cli("design boin --target 0.3 --select-mtd").exit_code, 2);
  EXPECT_EQ(Cli("design boin --target 0.3 --frobnicate").exit_code, 2);
}

// The worked example of docs/trial-records.md: P05's grade 3 ICANS, ongoing
// on its second day, decides between ESCALATE and EXPAND at DL2.
TEST(CliTest, TrialTextSaysWhatEachResolutionOfAPendingEventDecides) {
  const CliRun run =
      Cli("trial --rules rules/ --records tests/data/records/pending_icans.json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  for (const char* expected :
       {"P01      DL1   TRUE     TRUE       cytokine_release_syndrome grade 3: no DLT; "
        "febrile_neutropenia grade 3: DLT (D4)",
        "P05      DL2   UNKNOWN  TRUE       icans grade 3: pending: not a DLT if it resolves by "
        "2020-03-31",
        "DL2         3          3    0            1",
        "escalation at DL2 (3+3): INDETERMINATE\n"
        "  ESCALATE if P05's icans resolves by 2020-03-31; EXPAND otherwise\n",
        "stopping: NOT_TRIGGERED (S1 FALSE, S2 FALSE, S3 FALSE)"}) {
    EXPECT_NE(run.output.find(expected), std::string::npos) << expected << "\n" << run.output;
  }
}

TEST(CliTest, TrialJsonIsTheContractShape) {
  const CliRun run =
      Cli("trial --rules rules/ --records tests/data/records/pending_icans.json --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  for (const char* expected : {
           "{\"protocol_id\":\"NCT04094766\",\"version\":\"1.0\",\"sha256\":\"",
           "\"as_of_date\":\"2020-03-30\",\"patients\":[{\"subject_ref\":\"P01\","
           "\"dose_level\":\"DL1\",\"dlt\":\"TRUE\",\"evaluable\":\"TRUE\",\"events\":["
           "{\"term\":\"cytokine_release_syndrome\",\"grade\":3,\"grade_min\":3,\"grade_max\":3,"
           "\"dlt\":\"FALSE\",\"criterion\":null,\"cleared_if\":[]},",
           "{\"id\":\"DL2\",\"n_infused\":3,\"n_evaluable\":3,\"n_dlt\":0,\"n_dlt_unknown\":1,",
           "\"escalation\":{\"design\":\"3+3\",\"dose_level\":\"DL2\",\"decision\":"
           "\"INDETERMINATE\",\"resolutions\":2,\"pending\":[{\"subject_ref\":\"P05\",\"event\":0,\"term\":"
           "\"icans\",\"cleared_if\":[\"resolves by 2020-03-31\"]}],\"by_resolution\":["
           "{\"dlt\":[],\"decision\":\"ESCALATE\"},{\"dlt\":[\"P05\"],\"decision\":\"EXPAND\"}]}",
           "\"stopping\":{\"decision\":\"NOT_TRIGGERED\",\"rules\":{\"S1\":\"FALSE\","
           "\"S2\":\"FALSE\",\"S3\":\"FALSE\"},"}) {
    EXPECT_NE(run.output.find(expected), std::string::npos) << expected << "\n" << run.output;
  }
}

// A death not yet adjudicated and a grade 5 ICANS of unknown attribution:
// the DLT, the escalation and the stopping rules all wait on them.
TEST(CliTest, TrialWithAnUnadjudicatedDeathLeavesStoppingOpen) {
  const CliRun run =
      Cli("trial --rules rules/ --records tests/data/records/death_pending_adjudication.json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  for (const char* expected :
       {"icans grade 5: pending: not a DLT if it is adjudicated unrelated or unlikely",
        "  ESCALATE if P01's icans is adjudicated unrelated or unlikely; EXPAND otherwise",
        "stopping: INDETERMINATE (S1 UNKNOWN, S2 FALSE, S3 FALSE)",
        "n_treatment_related_deaths 0-1"}) {
    EXPECT_NE(run.output.find(expected), std::string::npos) << expected << "\n" << run.output;
  }
}

TEST(CliTest, TrialRefusesBadRecordsNamingThePatientAndField) {
  CliRun run = Cli("trial --rules rules/ --records tests/data/records/resolution_before_onset.json");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("error: patients[0] (P01): events[0].resolution_date \"2020-01-11\" "
                            "is before the onset_date"),
            std::string::npos)
      << run.output;
  run = Cli("trial --rules rules/ --records tests/data/facts/eligible_patient.json");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("error: records file: facts: is not a field here (as_of_date, "
                            "current_dose_level, patients, protocol_id)"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(Cli("trial --rules rules/").exit_code, 2);
}

// A protocol on BOIN (target 0.30): 2 of 2 evaluable with a DLT at DL2
// de-escalate either way; B06's pending colitis decides only whether DL2
// and above are eliminated (3 of 3).
TEST(CliTest, TrialOnBoinGivesTheNextDoseAndWhatEachResolutionEliminates) {
  CliRun run = Cli("trial --rules tests/data/records/boin_protocol/ "
                   "--records tests/data/records/boin_two_of_three.json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  for (const char* expected :
       {"escalation at DL2 (BOIN): DE_ESCALATE\n"
        "  DE_ESCALATE if B06's colitis is adjudicated unrelated or unlikely, or resolves by "
        "2020-07-02; DE_ESCALATE (DL2-DL5 eliminated) otherwise\n"
        "  BOIN target 0.3: escalate if y/n <= 0.2365, de-escalate if y/n > 0.3585\n"
        "  next dose level: DL1\n"
        "  eliminated in some resolutions: DL2, DL3, DL4, DL5\n"}) {
    EXPECT_NE(run.output.find(expected), std::string::npos) << expected << "\n" << run.output;
  }
  run = Cli("trial --rules tests/data/records/boin_protocol/ "
            "--records tests/data/records/boin_two_of_three.json --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  for (const char* expected :
       {"\"by_resolution\":[{\"dlt\":[],\"decision\":\"DE_ESCALATE\",\"next_dose_level\":"
        "\"DL1\",\"eliminated\":[],\"mtd\":null},{\"dlt\":[\"B06\"],\"decision\":"
        "\"DE_ESCALATE\",\"next_dose_level\":\"DL1\",\"eliminated\":[\"DL2\",\"DL3\","
        "\"DL4\",\"DL5\"],\"mtd\":null}]",
        "\"boin\":{\"target\":0.3,\"lambda_e\":0.2364906852,\"lambda_d\":0.3585194646,",
        "{\"n\":3,\"escalate_max\":0,\"deescalate_min\":2,\"eliminate_min\":3}",
        "\"next_dose_level\":\"DL1\",\"eliminated\":[],\"possibly_eliminated\":[\"DL2\","
        "\"DL3\",\"DL4\",\"DL5\"],\"mtd\":null"}) {
    EXPECT_NE(run.output.find(expected), std::string::npos) << expected << "\n" << run.output;
  }
}

}  // namespace
