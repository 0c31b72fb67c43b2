// The same patient, typed or as a FHIR Bundle, gets the same answer: every
// test case of the NCT04094766 rule files (less those expecting a refusal)
// is turned into a Bundle through the file's bindings, and both are
// evaluated.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "service/engine/parse.h"
#include "service/fhir/bundle_facts.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

namespace pb = ::trialrules::v1;

constexpr absl::string_view kDefaultDate = "2020-01-15";

std::string Number(double value) { return absl::StrFormat("%.17g", value); }

std::string Quote(absl::string_view text) { return absl::StrCat("\"", text, "\""); }

std::string QuantityJson(double value, absl::string_view unit) {
  return absl::StrCat("{\"value\":", Number(value),
                      unit.empty() ? ""
                                   : absl::StrCat(",\"system\":\"http://unitsofmeasure.org\","
                                                  "\"code\":", Quote(unit)),
                      "}");
}

// Writes one patient's typed facts as a FHIR R4 Bundle, each fact through
// its binding when it has one (an upper limit as its lab's reference range
// when the lab is there too), else as a urn:trialrules:fact Observation.
class BundleWriter {
 public:
  BundleWriter(const RuleSet& rules, std::string date) : rules_(rules), date_(std::move(date)) {}

  std::string Write(const std::vector<FactInput>& facts) {
    std::map<std::string, const FactInput*> by_name;
    for (const FactInput& fact : facts) by_name[fact.name] = &fact;
    std::map<std::string, const pb::FhirBinding*> bindings;
    std::map<std::string, std::string> range_of;  // upper-limit fact → its lab's fact
    for (const pb::FhirBinding& binding : rules_.definition().fhir_bindings) {
      bindings[binding.fact()] = &binding;
      if (binding.has_observation() && !binding.observation().reference_range_high().empty()) {
        range_of[binding.observation().reference_range_high()] = binding.fact();
      }
    }
    std::string patient = R"({"resourceType":"Patient","id":"p")";
    std::vector<std::string> observations;
    for (const FactInput& fact : facts) {
      if (fact.name == "assessment_date") continue;  // the request's, not the record's
      const auto binding = bindings.find(fact.name);
      const auto lab = range_of.find(fact.name);
      if (lab != range_of.end() && by_name.contains(lab->second)) continue;  // in its range
      if (binding != bindings.end() && binding->second->has_patient_birth_date() &&
          WholeYears(fact)) {
        absl::StrAppend(&patient, ",\"birthDate\":", Quote(BirthDate(fact)));
      } else if (binding != bindings.end() && binding->second->has_patient_gender()) {
        absl::StrAppend(&patient, ",\"gender\":",
                        std::get<bool>(fact.value) ? "\"female\"" : "\"male\"");
      } else if (binding != bindings.end() && binding->second->has_observation()) {
        observations.push_back(BoundObservation(*binding->second, fact, by_name));
      } else {
        observations.push_back(FactObservation(fact));
      }
    }
    std::vector<std::string> entries = {absl::StrCat(R"({"resource":)", patient, "}}")};
    for (const std::string& observation : observations) {
      entries.push_back(absl::StrCat(R"({"resource":)", observation, "}"));
    }
    return absl::StrCat(R"({"resourceType":"Bundle","type":"collection","entry":[)",
                        absl::StrJoin(entries, ","), "]}");
  }

 private:
  static bool WholeYears(const FactInput& fact) {
    const double years = std::get<double>(fact.value);
    return fact.unit.empty() && years == static_cast<int>(years) && years >= 0;
  }

  // A birth date that makes `fact` years on the assessment date (28
  // February for a 29 February assessment, which every year has).
  std::string BirthDate(const FactInput& fact) const {
    const int year = std::stoi(date_.substr(0, 4)) - static_cast<int>(std::get<double>(fact.value));
    const std::string day = date_.substr(5) == "02-29" ? "02-28" : date_.substr(5);
    return absl::StrFormat("%04d-%s", year, day);
  }

  std::string Header(absl::string_view system, absl::string_view code) {
    return absl::StrCat(R"({"resourceType":"Observation","id":"o)", ++count_,
                        R"(","status":"final","subject":{"reference":"Patient/p"},)",
                        R"("code":{"coding":[{"system":)", Quote(system), ",\"code\":",
                        Quote(code), R"(}]},"effectiveDateTime":)", Quote(date_));
  }

  std::string UnitOf(const FactInput& fact) const {
    return fact.unit.empty() ? rules_.facts()[rules_.FindFact(fact.name)].unit : fact.unit;
  }

  std::string BoundObservation(const pb::FhirBinding& binding, const FactInput& fact,
                               const std::map<std::string, const FactInput*>& by_name) {
    const pb::FhirObservationSource& source = binding.observation();
    std::string json = Header(source.codes(0).system(), source.codes(0).code());
    const auto takes = [&](pb::FhirValueType type) {
      return std::find(source.value_types().begin(), source.value_types().end(), type) !=
             source.value_types().end();
    };
    if (takes(pb::CODEABLE_CONCEPT)) {
      const bool value = std::get<bool>(fact.value);
      const auto mapped = std::find_if(
          source.concept_values().begin(), source.concept_values().end(),
          [&](const pb::FhirConceptValue& c) { return c.value() == value; });
      absl::StrAppend(&json, R"(,"valueCodeableConcept":{"coding":[{"system":)",
                      Quote(mapped->system()), ",\"code\":", Quote(mapped->code()), "}]}");
    } else if (takes(pb::INTEGER) && fact.unit.empty()) {
      absl::StrAppend(&json, ",\"valueInteger\":", Number(std::get<double>(fact.value)));
    } else if (takes(pb::BOOLEAN)) {
      absl::StrAppend(&json, ",\"valueBoolean\":", std::get<bool>(fact.value) ? "true" : "false");
    } else {
      absl::StrAppend(&json, ",\"valueQuantity\":",
                      QuantityJson(std::get<double>(fact.value), UnitOf(fact)));
    }
    if (!source.reference_range_high().empty()) {
      if (const auto uln = by_name.find(source.reference_range_high()); uln != by_name.end()) {
        absl::StrAppend(&json, R"(,"referenceRange":[{"high":)",
                        QuantityJson(std::get<double>(uln->second->value),
                                     UnitOf(*uln->second)),
                        "}]");
      }
    }
    return json + "}";
  }

  std::string FactObservation(const FactInput& fact) {
    std::string json = Header(kFactCodeSystem, fact.name);
    if (const bool* flag = std::get_if<bool>(&fact.value)) {
      absl::StrAppend(&json, ",\"valueBoolean\":", *flag ? "true" : "false");
    } else if (const double* number = std::get_if<double>(&fact.value)) {
      absl::StrAppend(&json, ",\"valueQuantity\":", QuantityJson(*number, UnitOf(fact)));
    } else {
      absl::StrAppend(&json, ",\"valueDateTime\":", Quote(std::get<std::string>(fact.value)));
    }
    return json + "}";
  }

  const RuleSet& rules_;
  std::string date_;
  int count_ = 0;
};

// Fact sets and test cases as the self-test builds them: the base set's
// facts, less `remove`, plus `facts` (overriding by name).
std::vector<FactInput> Build(const std::map<std::string, std::vector<FactInput>>& sets,
                             const std::string& based_on,
                             const google::protobuf::RepeatedPtrField<std::string>& remove,
                             const google::protobuf::RepeatedPtrField<pb::FactValue>& facts) {
  std::vector<FactInput> out;
  if (!based_on.empty()) out = sets.at(based_on);
  for (const std::string& name : remove) {
    out.erase(std::find_if(out.begin(), out.end(),
                           [&](const FactInput& f) { return f.name == name; }));
  }
  for (const pb::FactValue& value : facts) {
    FactInput input = *FactInputFromProto(value);
    const auto it = std::find_if(out.begin(), out.end(),
                                 [&](const FactInput& f) { return f.name == input.name; });
    if (it != out.end()) {
      *it = std::move(input);
    } else {
      out.push_back(std::move(input));
    }
  }
  return out;
}

std::string Answer(const RuleSet& rules, EvaluationKind kind, const FactValues& facts) {
  const Evaluation evaluation = rules.Evaluate(kind, facts);
  std::string out = std::string(DecisionName(evaluation.decision));
  for (const RuleResult& result : evaluation.rules) {
    absl::StrAppend(&out, " ", rules.rules()[result.rule].id, "=", OutcomeName(result.outcome));
    for (int missing : result.missing_facts) {
      absl::StrAppend(&out, "?", rules.facts()[missing].name);
    }
  }
  return out;
}

std::optional<EvaluationKind> KindOf(pb::EvaluationKind kind) {
  switch (kind) {
    case pb::ELIGIBILITY: return EvaluationKind::kEligibility;
    case pb::WITHDRAWAL: return EvaluationKind::kWithdrawal;
    case pb::ESCALATION: return EvaluationKind::kEscalation;
    case pb::STOPPING: return EvaluationKind::kStopping;
    default: return std::nullopt;
  }
}

class BundleEquivalenceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BundleEquivalenceTest, EveryTestCaseAnswersAlikeTypedAndAsABundle) {
  const std::string file = GetParam();
  const std::shared_ptr<const RuleSet> rules = testing::LoadBundled(file);
  ASSERT_NE(rules, nullptr);
  std::vector<Problem> problems;
  const std::unique_ptr<ParsedRuleFile> parsed =
      ParseRuleFile(testing::ReadFile(testing::SourcePath("rules/" + file)), file, &problems);
  ASSERT_NE(parsed, nullptr);
  std::map<std::string, std::vector<FactInput>> sets;
  for (const pb::FactSet& set : parsed->file.fact_sets()) {
    sets[set.name()] = Build(sets, set.based_on(), set.remove(), set.facts());
  }
  int compared = 0;
  for (const pb::TestCase& test : parsed->file.test_cases()) {
    const std::optional<EvaluationKind> kind = KindOf(test.kind());
    if (!test.expect_refusal().empty() || !kind) continue;
    SCOPED_TRACE(test.name());
    const std::vector<FactInput> typed =
        Build(sets, test.based_on(), test.remove(), test.facts());
    std::string date(kDefaultDate);
    const auto assessment = std::find_if(typed.begin(), typed.end(), [](const FactInput& f) {
      return f.name == "assessment_date";
    });
    if (assessment != typed.end()) date = std::get<std::string>(assessment->value);
    const std::string bundle = BundleWriter(*rules, date).Write(typed);

    BundleOptions options;
    options.assessment_date = *ParseIsoDate(date);
    absl::StatusOr<BundleFacts> from_bundle = FactsFromBundle(bundle, *rules, options);
    ASSERT_TRUE(from_bundle.ok()) << from_bundle.status() << "\n" << bundle;
    std::vector<FactInput> fhir_facts = from_bundle->facts;
    // The assessment date is the request's, as the CLI sends it.
    if (assessment != typed.end()) fhir_facts.push_back(*assessment);
    absl::StatusOr<FactValues> typed_values = rules->BindFacts(typed);
    absl::StatusOr<FactValues> fhir_values = rules->BindFacts(fhir_facts);
    ASSERT_TRUE(typed_values.ok()) << typed_values.status();
    ASSERT_TRUE(fhir_values.ok()) << fhir_values.status() << "\n" << bundle;
    EXPECT_EQ(Answer(*rules, *kind, *fhir_values), Answer(*rules, *kind, *typed_values))
        << bundle;
    // Every typed fact came back (none lost in the Bundle).
    EXPECT_EQ(fhir_facts.size(), typed.size()) << bundle;
    ++compared;
  }
  EXPECT_GT(compared, 100);
}

INSTANTIATE_TEST_SUITE_P(Nct04094766, BundleEquivalenceTest,
                         ::testing::Values("NCT04094766-v1.0.textproto",
                                           "NCT04094766-v2.0.textproto"));

}  // namespace
}  // namespace trialrules
