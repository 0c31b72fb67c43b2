// Facts from a FHIR R4 Bundle: every selection rule of the contract
// (docs/rule-files.md#facts-from-fhir), read through NCT04094766's bindings.
#include "service/fhir/bundle_facts.h"

#include <initializer_list>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

constexpr absl::string_view kLoinc = "http://loinc.org";

const RuleSet& Nct() {
  static const auto* rule_set =
      new std::shared_ptr<const RuleSet>(testing::LoadBundled("NCT04094766-v1.0.textproto"));
  return **rule_set;
}

std::string Patient(absl::string_view id = "p1", absl::string_view more = "") {
  return absl::StrCat(R"({"fullUrl":"urn:uuid:)", id, R"(","resource":{"resourceType":"Patient","id":")",
                      id, "\"", more, "}}");
}

// An Observation entry: its code, value member (e.g. `"valueInteger":80`),
// date and any further members.
std::string Obs(absl::string_view id, absl::string_view system, absl::string_view code,
                absl::string_view value, absl::string_view date = "2020-01-10",
                absl::string_view more = "", absl::string_view status = "final") {
  return absl::StrCat(R"({"resource":{"resourceType":"Observation","id":")", id,
                      R"(","status":")", status, R"(","subject":{"reference":"Patient/p1"},)",
                      R"("code":{"coding":[{"system":")", system, R"(","code":")", code,
                      R"("}]},"effectiveDateTime":")", date, "\"",
                      value.empty() ? "" : ",", value, more, "}}");
}

std::string Quantity(double value, absl::string_view code, absl::string_view display = "") {
  return absl::StrCat(R"("valueQuantity":{"value":)", value, R"(,"unit":")", display,
                      R"(","system":"http://unitsofmeasure.org","code":")", code, "\"}");
}

std::string Bundle(std::initializer_list<std::string> entries) {
  return absl::StrCat(R"({"resourceType":"Bundle","type":"collection","entry":[)",
                      absl::StrJoin(entries, ","), "]}");
}

BundleOptions On(absl::string_view date) {
  BundleOptions options;
  options.assessment_date = *ParseIsoDate(date);
  return options;
}

absl::StatusOr<BundleFacts> Read(const std::string& bundle,
                                 absl::string_view date = "2020-01-15") {
  return FactsFromBundle(bundle, Nct(), On(date));
}

// The facts as "name=value unit@source", sorted by name.
std::string Summary(const BundleFacts& facts) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < facts.facts.size(); ++i) {
    const FactInput& fact = facts.facts[i];
    std::string value;
    if (const double* number = std::get_if<double>(&fact.value)) {
      value = absl::StrCat(*number);
    } else if (const bool* flag = std::get_if<bool>(&fact.value)) {
      value = *flag ? "true" : "false";
    } else {
      value = std::get<std::string>(fact.value);
    }
    parts.push_back(absl::StrCat(fact.name, "=", value, fact.unit.empty() ? "" : " ", fact.unit,
                                 "@", facts.provenance[i].second));
  }
  return absl::StrJoin(parts, " ");
}

std::string Facts(const std::string& bundle, absl::string_view date = "2020-01-15") {
  absl::StatusOr<BundleFacts> facts = Read(bundle, date);
  if (!facts.ok()) return std::string(facts.status().message());
  return Summary(*facts);
}

std::string Refusal(const std::string& bundle, absl::string_view date = "2020-01-15") {
  absl::StatusOr<BundleFacts> facts = Read(bundle, date);
  EXPECT_FALSE(facts.ok());
  EXPECT_EQ(facts.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(facts.status().message());
}

TEST(BundleFactsTest, OnlyFinalAmendedAndCorrectedObservationsCount) {
  EXPECT_EQ(Facts(Bundle({Patient(),
                          Obs("a", kLoinc, "26446-5", Quantity(5, "%"), "2020-01-10", "",
                              "preliminary"),
                          Obs("b", kLoinc, "1920-8", Quantity(30, "U/L"), "2020-01-10", "",
                              "amended"),
                          Obs("c", kLoinc, "1742-6", Quantity(31, "U/L"), "2020-01-10", "",
                              "corrected"),
                          Obs("d", kLoinc, "1975-2", Quantity(1, "mg/dL"), "2020-01-10", "",
                              "cancelled")})),
            "alt_u_l=31 U/L@Observation/c ast_u_l=30 U/L@Observation/b");
}

TEST(BundleFactsTest, ResourcesAndCodesNoBindingNamesAreIgnored) {
  EXPECT_EQ(Facts(Bundle({Patient(),
                          R"({"resource":{"resourceType":"Condition","id":"x"}})",
                          Obs("a", kLoinc, "0000-0", Quantity(5, "%"))})),
            "");
}

TEST(BundleFactsTest, AFactCodeTheProtocolDoesNotHaveIsRefusedUnlessIgnored) {
  const std::string bundle =
      Bundle({Patient(), Obs("u", kFactCodeSystem, "shoe_size", R"("valueInteger":44)")});
  EXPECT_EQ(Refusal(bundle),
            "entry[1] (Observation/u): code names \"shoe_size\", which is not a fact of "
            "NCT04094766 1.0");
  BundleOptions options = On("2020-01-15");
  options.ignore_unknown_facts = true;
  absl::StatusOr<BundleFacts> facts = FactsFromBundle(bundle, Nct(), options);
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->ignored_unknown, std::vector<std::string>{"shoe_size"});
  EXPECT_TRUE(facts->facts.empty());
}

TEST(BundleFactsTest, TheDateIsTheFirstTenCharactersWithoutTimeZoneConversion) {
  // 23:30 in New York is the next day in UTC: still 2020-01-15 as written.
  EXPECT_EQ(Facts(Bundle({Patient(), Obs("a", kLoinc, "26446-5", Quantity(5, "%"),
                                         "2020-01-15T23:30:00-05:00")})),
            "pb_blast_pct=5 %@Observation/a");
}

TEST(BundleFactsTest, EffectivePeriodStartGivesTheDate) {
  const std::string entry = absl::StrCat(
      R"({"resource":{"resourceType":"Observation","id":"p","status":"final",)",
      R"("code":{"coding":[{"system":"http://loinc.org","code":"26446-5"}]},)",
      R"("effectivePeriod":{"start":"2020-01-16T08:00:00Z","end":"2020-01-17"},)",
      Quantity(5, "%"), "}}");
  EXPECT_EQ(Facts(Bundle({Patient(), entry}), "2020-01-15"), "");
  EXPECT_EQ(Facts(Bundle({Patient(), entry}), "2020-01-16"), "pb_blast_pct=5 %@Observation/p");
}

TEST(BundleFactsTest, ObservationsAfterTheAssessmentDateDoNotCount) {
  EXPECT_EQ(Facts(Bundle({Patient(), Obs("a", kLoinc, "26446-5", Quantity(5, "%"), "2020-01-14"),
                          Obs("b", kLoinc, "26446-5", Quantity(9, "%"), "2020-01-16")})),
            "pb_blast_pct=5 %@Observation/a");
}

TEST(BundleFactsTest, MaxAgeDaysCountsBackFromTheAssessmentDateInclusive) {
  // Creatinine: 28 days. 2019-12-18 is 28 days before 2020-01-15.
  EXPECT_EQ(Facts(Bundle({Patient(),
                          Obs("a", kLoinc, "2160-0", Quantity(0.9, "mg/dL"), "2019-12-18")})),
            "creatinine_mg_dl=0.9 mg/dL@Observation/a");
  EXPECT_EQ(Facts(Bundle({Patient(),
                          Obs("a", kLoinc, "2160-0", Quantity(0.9, "mg/dL"), "2019-12-17")})),
            "");
  // Weight has no max_age_days: any age counts.
  EXPECT_EQ(Facts(Bundle({Patient(), Obs("w", kLoinc, "29463-7", Quantity(70, "kg"),
                                         "2001-01-01")})),
            "weight_kg=70 kg@Observation/w");
}

TEST(BundleFactsTest, TheLatestDateWins) {
  EXPECT_EQ(Facts(Bundle({Patient(), Obs("a", kLoinc, "29463-7", Quantity(70, "kg"), "2020-01-12"),
                          Obs("b", kLoinc, "29463-7", Quantity(71, "kg"), "2020-01-13"),
                          Obs("c", kLoinc, "29463-7", Quantity(72, "kg"), "2020-01-11")})),
            "weight_kg=71 kg@Observation/b");
}

TEST(BundleFactsTest, OnOneDateTheLatestIssuedWins) {
  EXPECT_EQ(Facts(Bundle({Patient(),
                          Obs("a", kLoinc, "29463-7", Quantity(70, "kg"), "2020-01-12",
                              R"(,"issued":"2020-01-12T10:00:00+01:00")"),
                          Obs("b", kLoinc, "29463-7", Quantity(71, "kg"), "2020-01-12",
                              R"(,"issued":"2020-01-12T09:30:00Z")")})),
            "weight_kg=71 kg@Observation/b");  // 09:30Z is after 09:00Z
}

TEST(BundleFactsTest, AMissingIssuedTiesAndDifferentValuesAreRefusedNamingBoth) {
  EXPECT_EQ(Refusal(Bundle({Patient(),
                            Obs("a", kLoinc, "29463-7", Quantity(70, "kg"), "2020-01-12",
                                R"(,"issued":"2020-01-12T10:00:00Z")"),
                            Obs("b", kLoinc, "29463-7", Quantity(71, "kg"), "2020-01-12")})),
            "fact \"weight_kg\": Observation/a and Observation/b are equally recent "
            "(2020-01-12) and give different values");
}

TEST(BundleFactsTest, TiedWithEqualValuesEitherIsTaken) {
  EXPECT_EQ(Facts(Bundle({Patient(),
                          Obs("a", kLoinc, "29463-7", Quantity(70, "kg"), "2020-01-12"),
                          Obs("b", kLoinc, "29463-7", Quantity(70, "kg"), "2020-01-12")})),
            "weight_kg=70 kg@Observation/a");
}

TEST(BundleFactsTest, AQuantitysUnitIsItsUcumCodeNeverItsDisplayUnit) {
  EXPECT_EQ(Facts(Bundle({Patient(), Obs("a", kLoinc, "2160-0",
                                         Quantity(79.578, "umol/L", "mg/dL"))})),
            "creatinine_mg_dl=79.578 umol/L@Observation/a");
  EXPECT_EQ(Refusal(Bundle({Patient(), Obs("a", kLoinc, "2160-0",
                                           Quantity(0.07, "mmol/L", "mg/dL"))})),
            "entry[1] (Observation/a): valueQuantity.code \"mmol/L\" is not a unit "
            "creatinine_mg_dl takes (\"mg/dL\", \"umol/L\")");
  EXPECT_EQ(Refusal(Bundle({Patient(), Obs("a", kLoinc, "2160-0",
                                           R"("valueQuantity":{"value":1,"unit":"mg/dL",)"
                                           R"("system":"http://example.org","code":"mg/dL"})")})),
            "entry[1] (Observation/a): valueQuantity.system \"http://example.org\" is not "
            "http://unitsofmeasure.org (the unit's code must be UCUM)");
}

TEST(BundleFactsTest, UnitsAreJudgedOnlyOnCandidatesThatPassStatusAndDate) {
  EXPECT_EQ(Facts(Bundle({Patient(),
                          Obs("a", kLoinc, "2160-0", Quantity(1, "mmol/L"), "2020-01-10", "",
                              "preliminary"),
                          Obs("b", kLoinc, "2160-0", Quantity(1, "mmol/L"), "2019-01-10"),
                          Obs("c", kLoinc, "2160-0", Quantity(1, "mg/dL"), "2020-01-10")})),
            "creatinine_mg_dl=1 mg/dL@Observation/c");
}

TEST(BundleFactsTest, AnAcceptedUnitIsConvertedWhenTheFactsAreBound) {
  absl::StatusOr<BundleFacts> facts =
      Read(Bundle({Patient(), Obs("a", kLoinc, "2160-0", Quantity(88.42, "umol/L"))}));
  ASSERT_TRUE(facts.ok()) << facts.status();
  absl::StatusOr<FactValues> values = Nct().BindFacts(facts->facts);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_DOUBLE_EQ(values->values[Nct().FindFact("creatinine_mg_dl")], 1.0);
}

TEST(BundleFactsTest, AnIntegerIsInTheFactsOwnUnitAndAQuantityMayHaveNoUnit) {
  EXPECT_EQ(Facts(Bundle({Patient(), Obs("k", kLoinc, "89243-0", R"("valueInteger":80)")})),
            "karnofsky=80@Observation/k");
  EXPECT_EQ(Facts(Bundle({Patient(), Obs("k", kLoinc, "89243-0",
                                         R"("valueQuantity":{"value":70})")})),
            "karnofsky=70@Observation/k");
  EXPECT_EQ(Refusal(Bundle({Patient(), Obs("k", kLoinc, "89243-0", R"("valueInteger":"80")")})),
            "entry[1] (Observation/k): valueInteger must be an integer");
}

TEST(BundleFactsTest, TheFirstReferenceRangeWithAHighGivesTheUpperLimit) {
  const std::string ranges =
      R"(,"referenceRange":[{"low":{"value":7,"system":"http://unitsofmeasure.org","code":"U/L"}},)"
      R"({"high":{"value":56,"system":"http://unitsofmeasure.org","code":"U/L"}}])";
  EXPECT_EQ(Facts(Bundle({Patient(), Obs("alt", kLoinc, "1742-6", Quantity(30, "U/L"),
                                         "2020-01-10", ranges)})),
            "alt_u_l=30 U/L@Observation/alt alt_uln_u_l=56 U/L@Observation/alt");
  // Without a range, the source gives no upper limit.
  EXPECT_EQ(Facts(Bundle({Patient(), Obs("alt", kLoinc, "1742-6", Quantity(30, "U/L"))})),
            "alt_u_l=30 U/L@Observation/alt");
  // The range of the selected Observation only.
  EXPECT_EQ(Facts(Bundle({Patient(),
                          Obs("old", kLoinc, "1742-6", Quantity(20, "U/L"), "2020-01-01", ranges),
                          Obs("new", kLoinc, "1742-6", Quantity(30, "U/L"), "2020-01-10")})),
            "alt_u_l=30 U/L@Observation/new");
}

TEST(BundleFactsTest, AFactGivenTwoWaysIsRefusedNamingItsSources) {
  const std::string ranges =
      R"(,"referenceRange":[{"high":{"value":40,"system":"http://unitsofmeasure.org","code":"U/L"}}])";
  EXPECT_EQ(Refusal(Bundle({Patient(),
                            Obs("ast", kLoinc, "1920-8", Quantity(30, "U/L"), "2020-01-10", ranges),
                            Obs("uln", kFactCodeSystem, "ast_uln_u_l", Quantity(40, "U/L"))})),
            "fact \"ast_uln_u_l\" is given more than one way: Observation/ast (referenceRange.high "
            "of http://loinc.org|1920-8) and Observation/uln (urn:trialrules:fact); a fact has "
            "one source");
  EXPECT_EQ(Refusal(Bundle({Patient(), Obs("w1", kLoinc, "29463-7", Quantity(70, "kg")),
                            Obs("w2", kFactCodeSystem, "weight_kg", Quantity(70, "kg"))})),
            "fact \"weight_kg\" is given more than one way: Observation/w1 "
            "(http://loinc.org|29463-7) and Observation/w2 (urn:trialrules:fact); a fact has "
            "one source");
}

TEST(BundleFactsTest, ABundleNeedsExactlyOnePatient) {
  EXPECT_EQ(Refusal(Bundle({Obs("a", kLoinc, "29463-7", Quantity(70, "kg"))})),
            "the Bundle has 0 Patient resources; it must have exactly one");
  EXPECT_EQ(Refusal(Bundle({Patient("p1"), Patient("p2")})),
            "the Bundle has 2 Patient resources; it must have exactly one");
}

TEST(BundleFactsTest, AnObservationOfAnotherPatientIsRefused) {
  std::string other = Obs("a", kLoinc, "0000-0", "");
  other.replace(other.find("Patient/p1"), 10, "Patient/p2");
  EXPECT_EQ(Refusal(Bundle({Patient(), other})),
            "entry[1] (Observation/a): subject.reference \"Patient/p2\" is not the Bundle's "
            "patient (Patient/p1)");
  // The Patient's fullUrl names it too.
  std::string by_url = Obs("a", kLoinc, "29463-7", Quantity(70, "kg"));
  by_url.replace(by_url.find("Patient/p1"), 10, "urn:uuid:p1");
  EXPECT_EQ(Facts(Bundle({Patient(), by_url})), "weight_kg=70 kg@Observation/a");
}

TEST(BundleFactsTest, AgeIsInCompletedYearsAndA29FebruaryBirthdayFallsOn1March) {
  const std::string leap = Patient("p1", R"(,"birthDate":"2000-02-29")");
  EXPECT_EQ(Facts(Bundle({leap}), "2019-02-28"), "age_years=18 a@Patient/p1");
  EXPECT_EQ(Facts(Bundle({leap}), "2019-03-01"), "age_years=19 a@Patient/p1");
  EXPECT_EQ(Facts(Bundle({leap}), "2020-02-29"), "age_years=20 a@Patient/p1");
  EXPECT_EQ(Facts(Bundle({Patient("p1", R"(,"birthDate":"1990-01-15")")})),
            "age_years=30 a@Patient/p1");
  EXPECT_EQ(Facts(Bundle({Patient("p1", R"(,"birthDate":"1990-01-16")")})),
            "age_years=29 a@Patient/p1");
  // Only a year: no age in completed years.
  EXPECT_EQ(Facts(Bundle({Patient("p1", R"(,"birthDate":"1990")")})), "");
}

TEST(BundleFactsTest, GenderFemaleIsTrueMaleFalseAnythingElseMissing) {
  EXPECT_EQ(Facts(Bundle({Patient("p1", R"(,"gender":"female")")})),
            "sex_female=true@Patient/p1");
  EXPECT_EQ(Facts(Bundle({Patient("p1", R"(,"gender":"male")")})),
            "sex_female=false@Patient/p1");
  EXPECT_EQ(Facts(Bundle({Patient("p1", R"(,"gender":"unknown")")})), "");
}

TEST(BundleFactsTest, APregnancyTestsCodedResultMapsToTrueOrFalse) {
  auto test = [](absl::string_view system, absl::string_view code) {
    return Bundle({Patient(), Obs("t", kLoinc, "2106-3",
                                  absl::StrCat(R"("valueCodeableConcept":{"coding":[{"system":")",
                                               system, R"(","code":")", code, R"("}]})"))});
  };
  EXPECT_EQ(Facts(test("http://loinc.org", "LA6577-6")),
            "pregnancy_test_negative=true@Observation/t");
  EXPECT_EQ(Facts(test("http://snomed.info/sct", "10828004")),
            "pregnancy_test_negative=false@Observation/t");
  // A code the binding does not map (here: indeterminate) leaves it missing.
  EXPECT_EQ(Facts(test("http://snomed.info/sct", "82334004")), "");
}

TEST(BundleFactsTest, FactCodedObservationsGiveAnyFactByName) {
  EXPECT_EQ(Facts(Bundle({Patient(),
                          Obs("c", kFactCodeSystem, "informed_consent", R"("valueBoolean":true)"),
                          Obs("d", kFactCodeSystem, "last_chemo_date",
                              R"("valueDateTime":"2019-12-20T10:00:00Z")"),
                          Obs("s", kFactCodeSystem, "steroid_days", R"("valueInteger":3)"),
                          Obs("m", kFactCodeSystem, "steroid_mg_per_day",
                              Quantity(10, "mg/d"))})),
            "informed_consent=true@Observation/c last_chemo_date=2019-12-20@Observation/d "
            "steroid_days=3 d@Observation/s steroid_mg_per_day=10 mg/d@Observation/m");
  EXPECT_EQ(Refusal(Bundle({Patient(), Obs("c", kFactCodeSystem, "informed_consent",
                                           R"("valueString":"yes")")})),
            "entry[1] (Observation/c): valueString is not a value informed_consent takes "
            "from urn:trialrules:fact");
}

TEST(BundleFactsTest, AnObservationWithoutAValueGivesNothing) {
  EXPECT_EQ(Facts(Bundle({Patient(), Obs("a", kLoinc, "29463-7", Quantity(70, "kg"), "2020-01-01"),
                          Obs("b", kLoinc, "29463-7", "", "2020-01-10",
                              R"(,"dataAbsentReason":{"text":"asked"})")})),
            "weight_kg=70 kg@Observation/a");
}

TEST(BundleFactsTest, MalformedJsonAndWrongShapesAreRefused) {
  EXPECT_EQ(Refusal("{\"resourceType\":"), "the Bundle is not JSON: The JSON document has an "
                                            "improper structure: missing or superfluous commas, "
                                            "braces, missing keys, etc.");
  EXPECT_EQ(Refusal(R"({"resourceType":"Patient"})"),
            "not a FHIR Bundle: the JSON must be an object with \"resourceType\": \"Bundle\"");
  EXPECT_EQ(Refusal(R"({"resourceType":"Bundle","entry":{}})"), "Bundle.entry must be an array");
  EXPECT_EQ(Refusal(R"({"resourceType":"Bundle","entry":[1]})"),
            "entry[0] (): entry must be an object");
  EXPECT_EQ(Refusal(R"({"resourceType":"Bundle","entry":[{"resource":[]}]})"),
            "entry[0] (): resource must be an object with a string \"resourceType\"");
  EXPECT_EQ(Refusal(Bundle({R"({"resource":{"resourceType":"Patient"}})"})),
            "entry[0] (Patient): id is required (answers name where each fact came from)");
  EXPECT_EQ(Refusal(Bundle({Patient(), Obs("a", kLoinc, "29463-7", Quantity(70, "kg"),
                                           "15/01/2020")})),
            "entry[1] (Observation/a): effectiveDateTime \"15/01/2020\" does not start with a "
            "date YYYY-MM-DD");
  EXPECT_EQ(Refusal(Bundle({Patient(), Obs("a", kLoinc, "29463-7", Quantity(70, "kg"),
                                           "2020-01-10", R"(,"issued":"yesterday")")})),
            "entry[1] (Observation/a): issued \"yesterday\" is not an instant: "
            "Failed to parse input");
  EXPECT_EQ(Refusal(Bundle({Patient(), Obs("a", kLoinc, "29463-7",
                                           R"("valueQuantity":{"value":"70"})")})),
            "entry[1] (Observation/a): valueQuantity.value must be a number");
}

TEST(BundleFactsTest, SizeLimitsAreRefusedUnread) {
  EXPECT_EQ(Refusal(std::string(kMaxBundleBytes + 1, ' ')),
            "the Bundle is 16777217 bytes; the limit is 16777216");
  std::vector<std::string> entries(kMaxBundleEntries + 1, "{}");
  EXPECT_EQ(Refusal(absl::StrCat(R"({"resourceType":"Bundle","entry":[)",
                                 absl::StrJoin(entries, ","), "]}")),
            "the Bundle has 20001 entries; the limit is 20000");
}

}  // namespace
}  // namespace trialrules
