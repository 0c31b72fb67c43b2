// A seeded synthetic FHIR Bulk Data export of NCT04094766 patients, for
// tests and benchmarks of bulk reading (service/fhir/ndjson.h): each
// patient is one Patient and 19 Observations (20 resources, about 7 KB),
// with the variety a real export has: labs by LOINC code in either unit,
// reference ranges, an older result that the latest supersedes, a
// preliminary result that does not count, and the other facts coded
// urn:trialrules:fact. The same seed gives the same export.
#ifndef TRIALRULES_TESTS_FHIR_NDJSON_EXPORT_H_
#define TRIALRULES_TESTS_FHIR_NDJSON_EXPORT_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace trialrules::testing {

// One patient's lines: the Patient first, then its Observations.
using PatientLines = std::vector<std::string>;

// `count` patients assessed on 2020-01-15 (their results are dated in the
// four weeks before), ids "pt<N>" and "pt<N>-o<K>", N from `first`.
inline std::vector<PatientLines> SyntheticPatients(int count, uint32_t seed, int first = 0) {
  std::mt19937 random(seed);
  auto uniform = [&](double low, double high) {
    return std::round(std::uniform_real_distribution<double>(low, high)(random) * 10) / 10;
  };
  auto chance = [&](double p) { return std::bernoulli_distribution(p)(random); };
  std::vector<PatientLines> patients;
  patients.reserve(count);
  for (int n = 0; n < count; ++n) {
    const std::string id = absl::StrCat("pt", first + n);
    PatientLines lines;
    const bool female = chance(0.5);
    lines.push_back(absl::StrCat(
        R"({"resourceType":"Patient","id":")", id, R"(","meta":{"lastUpdated":"2020-01-14T09:00:00Z"},)",
        R"("identifier":[{"system":"urn:oid:2.16.840.1.113883.4.1","value":"MRN-)", 100000 + n,
        R"("}],"name":[{"family":"Synthetic","given":["Patient)", n, R"("]}],"gender":")",
        female ? "female" : "male", R"(","birthDate":")", 1945 + static_cast<int>(random() % 60),
        "-0", 1 + random() % 9, "-1", random() % 10, "\"}"));
    int k = 0;
    auto observation = [&](absl::string_view system, absl::string_view code,
                           absl::string_view date, absl::string_view value,
                           absl::string_view status = "final", absl::string_view more = "") {
      lines.push_back(absl::StrCat(
          R"({"resourceType":"Observation","id":")", id, "-o", ++k, R"(","status":")", status,
          R"(","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],)",
          R"("code":{"coding":[{"system":")", system, R"(","code":")", code, R"("}]},)",
          R"("subject":{"reference":"Patient/)", id, R"("},"effectiveDateTime":")", date,
          R"(T08:30:00Z","issued":")", date, R"(T10:00:00Z",)", value, more, "}"));
    };
    auto quantity = [](double value, absl::string_view unit) {
      return absl::StrCat(R"("valueQuantity":{"value":)", value, R"(,"unit":")", unit,
                          R"(","system":"http://unitsofmeasure.org","code":")", unit, "\"}");
    };
    auto range = [](double high, absl::string_view unit) {
      return absl::StrCat(R"(,"referenceRange":[{"high":{"value":)", high,
                          R"(,"system":"http://unitsofmeasure.org","code":")", unit, "\"}}]");
    };
    constexpr absl::string_view kLoinc = "http://loinc.org";
    constexpr absl::string_view kFact = "urn:trialrules:fact";
    const double creatinine = uniform(0.5, 2.2);
    if (chance(0.5)) {
      observation(kLoinc, "2160-0", "2020-01-12", quantity(creatinine, "mg/dL"), "final",
                  range(1.2, "mg/dL"));
    } else {
      observation(kLoinc, "2160-0", "2020-01-12",
                  quantity(std::round(creatinine * 88.4), "umol/L"), "final",
                  range(1.2, "mg/dL"));
    }
    observation(kLoinc, "2160-0", "2019-12-28", quantity(uniform(0.5, 2.2), "mg/dL"), "final",
                range(1.2, "mg/dL"));
    observation(kLoinc, "1742-6", "2020-01-12", quantity(uniform(10, 150), "U/L"), "final",
                range(40, "U/L"));
    observation(kLoinc, "1742-6", "2020-01-14", quantity(uniform(10, 150), "U/L"),
                "preliminary");
    observation(kLoinc, "1920-8", "2020-01-12", quantity(uniform(10, 150), "U/L"), "final",
                range(40, "U/L"));
    observation(kLoinc, "1975-2", "2020-01-12", quantity(uniform(0.2, 2.5), "mg/dL"));
    observation(kLoinc, "10230-1", "2019-11-20", quantity(uniform(35, 70), "%"));
    observation(kLoinc, "89243-0", "2020-01-10",
                absl::StrCat(R"("valueInteger":)", 40 + 10 * (random() % 7)));
    observation(kLoinc, "29463-7", "2020-01-10", quantity(uniform(40, 120), "kg"));
    observation(kLoinc, "26446-5", "2020-01-12", quantity(uniform(0, 30), "%"));
    auto flag = [&](absl::string_view fact, double p) {
      observation(kFact, fact, "2020-01-10",
                  absl::StrCat(R"("valueBoolean":)", chance(p) ? "true" : "false"));
    };
    flag("informed_consent", 0.95);
    flag("b_all_diagnosis", 0.9);
    flag("cd19_positive", 0.85);
    flag("ecg_normal", 0.9);
    flag("childbearing_potential", female ? 0.4 : 0.0);
    flag("investigator_excludes", 0.05);
    observation(kFact, "bm_blast_pct", "2020-01-08", quantity(uniform(0, 90), "%"));
    observation(kFact, "crcl_ml_min", "2020-01-12", quantity(uniform(30, 120), "mL/min"));
    observation(kFact, "immunophenotype_date", "2019-12-01",
                R"("valueDateTime":"2019-12-01")");
    patients.push_back(std::move(lines));
  }
  return patients;
}

// The export as a Bulk Data server writes it, Patient.ndjson then
// Observation.ndjson: every Patient line, then every Observation line.
inline std::string ExportText(const std::vector<PatientLines>& patients) {
  std::string text;
  for (const PatientLines& lines : patients) absl::StrAppend(&text, lines[0], "\n");
  for (const PatientLines& lines : patients) {
    for (size_t i = 1; i < lines.size(); ++i) absl::StrAppend(&text, lines[i], "\n");
  }
  return text;
}

// One patient's lines as a FHIR Bundle.
inline std::string BundleOf(const PatientLines& lines) {
  std::vector<std::string> entries;
  for (const std::string& line : lines) entries.push_back(absl::StrCat(R"({"resource":)", line, "}"));
  return absl::StrCat(R"({"resourceType":"Bundle","type":"collection","entry":[)",
                      absl::StrJoin(entries, ","), "]}");
}

}  // namespace trialrules::testing

#endif  // TRIALRULES_TESTS_FHIR_NDJSON_EXPORT_H_
