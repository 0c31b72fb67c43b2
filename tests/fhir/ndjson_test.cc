// Facts of many patients from FHIR Bulk Data NDJSON: each patient's facts
// are those of the same resources as a Bundle (one implementation of the
// selection rules), and a patient whose resources are refused gets an error
// while the others go on.
#include "service/fhir/ndjson.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/fhir/ndjson_export.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

using testing::BundleOf;
using testing::ExportText;
using testing::PatientLines;
using testing::SyntheticPatients;

const RuleSet& Nct() {
  static const auto* rule_set =
      new std::shared_ptr<const RuleSet>(testing::LoadBundled("NCT04094766-v1.0.textproto"));
  return **rule_set;
}

BundleOptions On2020() {
  BundleOptions options;
  options.assessment_date = *ParseIsoDate("2020-01-15");
  return options;
}

NdjsonFacts Read(const std::string& text) { return FactsFromNdjson(text, Nct(), On2020()); }

// The NDJSON line of `resource_id` in ExportText(patients), 1-based.
size_t LineOf(const std::string& text, const std::string& resource_id) {
  const size_t at = text.find(absl::StrCat("\"id\":\"", resource_id, "\""));
  return 1 + std::count(text.begin(), text.begin() + at, '\n');
}

TEST(NdjsonTest, EachPatientGetsTheFactsOfItsResourcesAsABundle) {
  const std::vector<PatientLines> patients = SyntheticPatients(60, 11);
  const NdjsonFacts read = Read(ExportText(patients));
  EXPECT_TRUE(read.line_errors.empty());
  ASSERT_EQ(read.patients.size(), patients.size());
  for (size_t p = 0; p < patients.size(); ++p) {
    SCOPED_TRACE(p);
    const NdjsonPatient& patient = read.patients[p];
    EXPECT_EQ(patient.id, absl::StrCat("pt", p));
    ASSERT_TRUE(patient.facts.ok()) << patient.facts.status();
    const absl::StatusOr<BundleFacts> bundle = FactsFromBundle(BundleOf(patients[p]), Nct(), On2020());
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    ASSERT_EQ(patient.facts->facts.size(), bundle->facts.size());
    for (size_t f = 0; f < bundle->facts.size(); ++f) {
      EXPECT_EQ(patient.facts->facts[f].name, bundle->facts[f].name);
      EXPECT_EQ(patient.facts->facts[f].value, bundle->facts[f].value);
      EXPECT_EQ(patient.facts->facts[f].unit, bundle->facts[f].unit);
    }
    EXPECT_EQ(patient.facts->provenance, bundle->provenance);
    // 22 facts: the latest creatinine (o1, not the older o2) with its
    // reference range, and not the preliminary ALT (o4).
    EXPECT_EQ(patient.facts->facts.size(), 22u);
    for (const auto& [fact, source] : patient.facts->provenance) {
      if (fact == "creatinine_mg_dl" || fact == "creatinine_uln_mg_dl") {
        EXPECT_EQ(source, absl::StrCat("Observation/pt", p, "-o1"));
      }
      if (fact == "alt_u_l") {
        EXPECT_EQ(source, absl::StrCat("Observation/pt", p, "-o3"));
      }
    }
  }
}

TEST(NdjsonTest, TheSameSeedGivesTheSameExport) {
  EXPECT_EQ(ExportText(SyntheticPatients(5, 3)), ExportText(SyntheticPatients(5, 3)));
  EXPECT_NE(ExportText(SyntheticPatients(5, 3)), ExportText(SyntheticPatients(5, 4)));
}

TEST(NdjsonTest, ARefusedPatientGetsAnErrorAndTheOthersGoOn) {
  std::vector<PatientLines> patients = SyntheticPatients(5, 2);
  // pt2's latest creatinine in a unit the fact does not take.
  patients[2][1] = absl::StrReplaceAll(
      patients[2][1], {{R"("code":"mg/dL"})", R"("code":"mmol/L"})"},
                       {R"("code":"umol/L"})", R"("code":"mmol/L"})"}});
  const std::string text = ExportText(patients);
  const NdjsonFacts read = Read(text);
  ASSERT_EQ(read.patients.size(), 5u);
  for (size_t p = 0; p < 5; ++p) {
    EXPECT_EQ(read.patients[p].facts.ok(), p != 2) << p;
  }
  EXPECT_EQ(read.patients[2].facts.status().message(),
            absl::StrCat("line ", LineOf(text, "pt2-o1"),
                         R"( (Observation/pt2-o1): valueQuantity.code "mmol/L" is not a unit )"
                         R"(creatinine_mg_dl takes ("mg/dL", "umol/L"))"));
}

TEST(NdjsonTest, LinesOfNoPatientAreNamedAndSkipped) {
  const std::vector<PatientLines> patients = SyntheticPatients(2, 5);
  const std::string text =
      absl::StrCat(ExportText(patients), "{not json\n", "\n",
                   R"({"resourceType":"Observation","id":"x1","status":"final"})", "\n",
                   R"({"resourceType":"Condition","id":"c1"})", "\n", R"([1,2])", "\n");
  const NdjsonFacts read = Read(text);
  ASSERT_EQ(read.patients.size(), 2u);
  EXPECT_TRUE(read.patients[0].facts.ok());
  EXPECT_TRUE(read.patients[1].facts.ok());
  const size_t last = LineOf(text, "c1");
  ASSERT_EQ(read.line_errors.size(), 3u);
  EXPECT_EQ(read.line_errors[0].rfind(absl::StrCat("line ", last - 3, ": not JSON: "), 0), 0u)
      << read.line_errors[0];
  EXPECT_EQ(read.line_errors[1],
            absl::StrCat("line ", last - 1, R"( (Observation/x1): subject.reference must be )"
                                            R"("Patient/ID" (whose result it is))"));
  EXPECT_EQ(read.line_errors[2],
            absl::StrCat("line ", last + 1,
                         R"(: must be an object with a string "resourceType")"));
}

TEST(NdjsonTest, ObservationsOfAnAbsentOrDoubledPatientAreItsError) {
  std::vector<PatientLines> patients = SyntheticPatients(3, 9);
  std::string text = ExportText(patients);
  // pt0 twice; pt1 with no Patient line.
  text = absl::StrCat(patients[0][0], "\n", text);
  text = absl::StrReplaceAll(text, {{absl::StrCat(patients[1][0], "\n"), ""}});
  const NdjsonFacts read = Read(text);
  ASSERT_EQ(read.patients.size(), 3u);
  EXPECT_EQ(read.patients[0].facts.status().message(),
            R"(line 2 (Patient/pt0): id "pt0" is also the id of line 1 (Patient/pt0))");
  EXPECT_EQ(read.patients[1].id, "pt2");
  EXPECT_TRUE(read.patients[1].facts.ok());
  EXPECT_EQ(read.patients[2].id, "pt1");
  EXPECT_EQ(read.patients[2].facts.status().message(),
            absl::StrCat(R"(no Patient resource with id "pt1" (its Observations name it, )",
                         "e.g. line ", LineOf(text, "pt1-o1"), " (Observation/pt1-o1))"));
}

// A line nested as deep as simdjson reads a line is read with its patient
// (sorting and reading a patient parse it at the same depth).
TEST(NdjsonTest, ALineAsDeepAsALineMayBeIsReadWithItsPatient) {
  const std::string deep = absl::StrCat(std::string(1023, '['), std::string(1023, ']'));
  const std::string text = absl::StrCat(
      R"({"resourceType":"Patient","id":"p1","extension":)", deep, "}\n",
      R"({"resourceType":"Observation","id":"o1","status":"final",)",
      R"("subject":{"reference":"Patient/p1"},)",
      R"("code":{"coding":[{"system":"urn:trialrules:fact","code":"informed_consent"}]},)",
      R"("effectiveDateTime":"2020-01-10","valueBoolean":true})", "\n");
  const NdjsonFacts read = Read(text);
  EXPECT_TRUE(read.line_errors.empty());
  ASSERT_EQ(read.patients.size(), 1u);
  ASSERT_TRUE(read.patients[0].facts.ok()) << read.patients[0].facts.status();
  ASSERT_EQ(read.patients[0].facts->facts.size(), 1u);
  EXPECT_EQ(read.patients[0].facts->facts[0].name, "informed_consent");
  EXPECT_EQ(read.patients[0].facts->provenance[0].second, "Observation/o1");
}

// Lines are sorted to their patient from their text where they are written
// as exports write them; a line whose parse says otherwise is read as its
// parse says, whichever it is.
TEST(NdjsonTest, ALineIsSortedAsItsParseSays) {
  const std::vector<PatientLines> patients = SyntheticPatients(3, 7);
  const std::string clean = ExportText(patients);
  const NdjsonFacts expected = Read(clean);
  // Cut short: not JSON, though it starts as a resource of pt0.
  const std::string cut = R"({"resourceType":"Observation","id":"cut1","subject":{"reference":"Patient/pt0"})";
  // pt1 is named first, in a nested resource: the Observation is pt0's.
  const std::string nested =
      R"({"resourceType":"Observation","id":"n1","contained":[{"subject":{"reference":"Patient/pt1"}}],)"
      R"("subject":{"reference":"Patient/pt0"},"status":"final","code":{"coding":[{"system":)"
      R"("urn:trialrules:fact","code":"no_such_fact"}]},"effectiveDateTime":"2020-01-10"})";
  const std::string patient_cut = R"({"resourceType":"Patient","id":"pt9")";
  for (const std::string& text :
       {absl::StrCat(clean, cut, "\n"), absl::StrCat(patient_cut, "\n", clean),
        absl::StrCat(clean, nested, "\n"), absl::StrCat(cut, "\n", clean, nested, "\n")}) {
    SCOPED_TRACE(text.substr(0, 60));
    const NdjsonFacts read = Read(text);
    ASSERT_EQ(read.patients.size(), 3u);
    for (size_t p = 0; p < 3; ++p) EXPECT_EQ(read.patients[p].id, absl::StrCat("pt", p));
    const bool has_nested = text.find(nested) != std::string::npos;
    if (has_nested) {
      EXPECT_EQ(read.patients[0].facts.status().message(),
                absl::StrCat("line ", LineOf(text, "n1"),
                             R"( (Observation/n1): code names "no_such_fact", which is not )",
                             "a fact of NCT04094766 1.0"));
    } else {
      ASSERT_TRUE(read.patients[0].facts.ok()) << read.patients[0].facts.status();
      EXPECT_EQ(read.patients[0].facts->provenance, expected.patients[0].facts->provenance);
    }
    for (size_t p = 1; p < 3; ++p) {
      ASSERT_TRUE(read.patients[p].facts.ok()) << read.patients[p].facts.status();
      EXPECT_EQ(read.patients[p].facts->provenance, expected.patients[p].facts->provenance);
    }
    const size_t cut_lines = (text.find(cut) != std::string::npos) +
                             (text.find(patient_cut) != std::string::npos);
    ASSERT_EQ(read.line_errors.size(), cut_lines);
    for (const std::string& error : read.line_errors) {
      EXPECT_NE(error.find(": not JSON: "), std::string::npos) << error;
    }
  }
}

// A text of broken lines lists the first hundred and counts the rest.
TEST(NdjsonTest, BrokenLinesPastAHundredAreCounted) {
  std::string text;
  for (int i = 0; i < 250; ++i) text += "x\n";
  const NdjsonFacts read = Read(text);
  EXPECT_TRUE(read.patients.empty());
  ASSERT_EQ(read.line_errors.size(), kMaxLineErrors + 1);
  EXPECT_EQ(read.line_errors[0].rfind("line 1: not JSON", 0), 0u) << read.line_errors[0];
  EXPECT_EQ(read.line_errors.back(), "and 150 more lines of no patient");
}

}  // namespace
}  // namespace trialrules
