// Fuzz target: FHIR R4 JSON -> facts through the bundled NCT04094766 rule
// files' fhir_bindings, as one patient's Bundle (FactsFromBundle) or as bulk
// NDJSON (FactsFromNdjson).
//
// Input: one selector byte, then the text. Selector bits: 0 NDJSON (else a
// Bundle), 1 version 2.0 (else 1.0), 2 ignore_unknown_facts, 3-4 the
// assessment date (kDates). Inputs over the server's limit on a Bundle
// (ServiceLimits::max_fhir_bundle_bytes) are not read.
//
// Whatever the bytes: no crash; every refusal is InvalidArgument with a
// UTF-8 message that says where (a line, an entry, a resource or the
// Bundle); the same input read twice gives the same answer. A Bundle's
// facts are facts of the rule set, sorted and unique, of the fact's type,
// each with its provenance (the resource it came from); bound as the server
// binds them they are accepted or refused as InvalidArgument, and accepted
// ones evaluate into a well-formed answer. A Bundle that is read and whose
// Observations name their patient as "Patient/ID" gives, as NDJSON (its
// resources one a line), one patient with the same facts. NDJSON gives
// each patient once, with a non-empty id, and names the line of each line
// error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "service/engine/loader.h"
#include "service/engine/rule_set.h"
#include "service/fhir/bundle_facts.h"
#include "service/fhir/ndjson.h"
#include "service/server/limits.h"
#include "service/util/dates.h"
#include "service/util/utf8.h"
#include "simdjson.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_evaluation_checks.h"
#include "tests/fuzz/fuzz_sanitizer_options.h"

namespace trialrules {
namespace {

// The seeds' results are dated around 2020-01-15; the others put every
// result in the future, or years in the past (max_age_days), or far ahead.
constexpr const char* kDates[] = {"2020-01-15", "2019-12-01", "2024-06-30", "1970-01-01"};

// As TrialRulesService::kAssessmentDateFact (the server's library is not
// linked here).
constexpr absl::string_view kAssessmentDateFact = "assessment_date";

struct RuleSets {
  std::shared_ptr<const RuleSet> versions[2];
};

std::shared_ptr<const RuleSet> Load(const std::string& name) {
  const std::string path = std::string(TRIALRULES_SOURCE_DIR) + "/rules/" + name;
  std::ifstream in(path, std::ios::binary);
  FUZZ_CHECK(in, "cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  const LoadResult result = LoadRuleSet(text.str(), name);
  FUZZ_CHECK(result.rule_set != nullptr,
             name + ": " + (result.problems.empty() ? "" : result.problems[0].ToString()));
  FUZZ_CHECK(!result.rule_set->definition().fhir_bindings.empty(), name + " has no fhir_bindings");
  return result.rule_set;
}

const RuleSets& Rules() {
  static const RuleSets* rules = [] {
    auto* loaded = new RuleSets;
    loaded->versions[0] = Load("NCT04094766-v1.0.textproto");
    loaded->versions[1] = Load("NCT04094766-v2.0.textproto");
    return loaded;
  }();
  return *rules;
}

std::string ValueText(const FactValue& value) {
  // Every digit: StrCat's six would hide a difference in the last ones.
  if (const double* number = std::get_if<double>(&value)) {
    return absl::StrFormat("%.17g", *number);
  }
  if (const bool* flag = std::get_if<bool>(&value)) return *flag ? "true" : "false";
  return "\"" + std::get<std::string>(value) + "\"";
}

// The whole answer as text, for "the same twice" and "the same as NDJSON".
std::string Describe(const absl::StatusOr<BundleFacts>& read) {
  if (!read.ok()) return read.status().ToString();
  std::string out;
  for (size_t i = 0; i < read->facts.size(); ++i) {
    const FactInput& fact = read->facts[i];
    absl::StrAppend(&out, fact.name, "=", ValueText(fact.value), " ", fact.unit, "@",
                    i < read->provenance.size() ? read->provenance[i].second : "?", ";");
  }
  for (const std::string& name : read->ignored_unknown) {
    absl::StrAppend(&out, "ignored ", name, ";");
  }
  return out;
}

void CheckRefusal(const absl::Status& status, absl::string_view what) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument,
             absl::StrCat(what, ": refused as other than InvalidArgument: ", status.ToString()));
  const absl::string_view message = status.message();
  FUZZ_CHECK(!message.empty(), absl::StrCat(what, ": a refusal without a message"));
  FUZZ_CHECK(IsValidUtf8(message), absl::StrCat(what, ": a refusal not UTF-8"));
  FUZZ_CHECK(absl::StrContains(message, "line ") || absl::StrContains(message, "entry") ||
                 absl::StrContains(message, "Bundle") ||
                 absl::StrContains(message, "Observation/") ||
                 absl::StrContains(message, "Patient/"),
             absl::StrCat(what, ": a refusal that does not say where: ", message));
}

// The facts one patient's resources give, as a caller of the engine gets them.
void CheckFacts(const RuleSet& rules, const BundleOptions& options, const BundleFacts& read) {
  FUZZ_CHECK(read.provenance.size() == read.facts.size(),
             absl::StrCat(read.facts.size(), " facts, ", read.provenance.size(), " provenance"));
  for (size_t i = 0; i < read.facts.size(); ++i) {
    const FactInput& fact = read.facts[i];
    FUZZ_CHECK(i == 0 || read.facts[i - 1].name < fact.name,
               "facts not sorted or given twice: " + fact.name);
    FUZZ_CHECK(read.provenance[i].first == fact.name,
               "provenance " + read.provenance[i].first + " for fact " + fact.name);
    const std::string& source = read.provenance[i].second;
    FUZZ_CHECK((absl::StartsWith(source, "Observation/") || absl::StartsWith(source, "Patient/")) &&
                   source.find('/') + 1 < source.size(),
               fact.name + " from \"" + source + "\"");
    const int f = rules.FindFact(fact.name);
    FUZZ_CHECK(f >= 0, fact.name + " is not a fact of " + rules.protocol_id());
    const FactSpec& spec = rules.facts()[f];
    switch (spec.type) {
      case ValueType::kNumber:
        FUZZ_CHECK(std::holds_alternative<double>(fact.value), fact.name + ": not a number");
        break;
      case ValueType::kBool:
        FUZZ_CHECK(std::holds_alternative<bool>(fact.value), fact.name + ": not true/false");
        break;
      case ValueType::kDate:
      case ValueType::kText:
        FUZZ_CHECK(std::holds_alternative<std::string>(fact.value), fact.name + ": not text");
        break;
    }
  }
  for (size_t i = 0; i < read.ignored_unknown.size(); ++i) {
    const std::string& name = read.ignored_unknown[i];
    FUZZ_CHECK(options.ignore_unknown_facts, "ignored " + name + " without ignore_unknown_facts");
    FUZZ_CHECK(i == 0 || read.ignored_unknown[i - 1] < name, "ignored_unknown not sorted, unique");
    FUZZ_CHECK(rules.FindFact(name) < 0, "ignored " + name + ", a fact of the rule set");
  }

  // Bound as the server binds them (trial_rules_service.cc): a value the
  // fact does not take is the caller's error, not the engine's.
  FactValues facts = rules.EmptyFacts();
  bool finite = true;
  for (const FactInput& fact : read.facts) {
    const absl::Status bound = rules.BindFact(fact.name, fact.value, fact.unit, &facts);
    if (!bound.ok()) {
      FUZZ_CHECK(bound.code() == absl::StatusCode::kInvalidArgument && !bound.message().empty(),
                 "BindFact " + fact.name + ": " + bound.ToString());
      return;
    }
  }
  for (size_t f = 0; f < facts.values.size(); ++f) {
    if (facts.present[f] && !std::isfinite(facts.values[f])) finite = false;
  }
  // The rules see the date the facts were selected for, as the server's do.
  if (const int f = rules.FindFact(kAssessmentDateFact); f >= 0 && !facts.present[f]) {
    const absl::Status bound =
        rules.BindFact(kAssessmentDateFact, FormatIsoDate(options.assessment_date), "", &facts);
    FUZZ_CHECK(bound.ok(), bound.ToString());
  }
  fuzz::CheckEvaluation(rules, EvaluationKind::kEligibility, facts, finite);
}

void CheckNdjson(const RuleSet& rules, const BundleOptions& options, const NdjsonFacts& read) {
  std::set<std::string> ids;
  for (const NdjsonPatient& patient : read.patients) {
    FUZZ_CHECK(!patient.id.empty(), "a patient with an empty id");
    FUZZ_CHECK(ids.insert(patient.id).second, "patient " + patient.id + " listed twice");
    if (patient.facts.ok()) {
      CheckFacts(rules, options, *patient.facts);
    } else {
      CheckRefusal(patient.facts.status(), "patient " + patient.id);
    }
  }
  for (const std::string& error : read.line_errors) {
    FUZZ_CHECK(absl::StartsWith(error, "line ") && error.size() > 5 &&
                   error[5] >= '1' && error[5] <= '9',
               "a line error that names no line: " + error);
    FUZZ_CHECK(IsValidUtf8(error), "a line error not UTF-8");
  }
}

std::string Describe(const NdjsonFacts& read) {
  std::string out;
  for (const NdjsonPatient& patient : read.patients) {
    absl::StrAppend(&out, "patient ", patient.id, ": ", Describe(patient.facts), "\n");
  }
  for (const std::string& error : read.line_errors) absl::StrAppend(&out, error, "\n");
  return out;
}

// The Bundle's Patient and Observations one a line, when every Observation
// names its patient as "Patient/ID" (NDJSON finds a patient's resources only
// so); none otherwise.
std::optional<std::string> AsNdjson(absl::string_view bundle_json) {
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(bundle_json.data(), bundle_json.size());
  simdjson::dom::element root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::array entries;
  if (root["entry"].get_array().get(entries) != simdjson::SUCCESS) return std::nullopt;
  std::string patient_reference;
  for (simdjson::dom::element entry : entries) {
    std::string_view type, id;
    if (entry["resource"]["resourceType"].get_string().get(type) == simdjson::SUCCESS &&
        type == "Patient" && entry["resource"]["id"].get_string().get(id) == simdjson::SUCCESS) {
      patient_reference = absl::StrCat("Patient/", absl::string_view(id.data(), id.size()));
    }
  }
  std::string text;
  for (simdjson::dom::element entry : entries) {
    simdjson::dom::element resource;
    std::string_view type;
    if (entry["resource"].get(resource) != simdjson::SUCCESS ||
        resource["resourceType"].get_string().get(type) != simdjson::SUCCESS ||
        (type != "Patient" && type != "Observation")) {
      continue;
    }
    if (type == "Observation") {
      std::string_view reference;
      if (resource["subject"]["reference"].get_string().get(reference) != simdjson::SUCCESS ||
          absl::string_view(reference.data(), reference.size()) != patient_reference) {
        return std::nullopt;
      }
    }
    absl::StrAppend(&text, simdjson::minify(resource), "\n");
  }
  return text;
}

void Fuzz(const uint8_t* data, size_t size) {
  if (size == 0 || size - 1 > ServiceLimits().max_fhir_bundle_bytes) return;
  const uint8_t selector = data[0];
  // The NDJSON text ends where the input does, so that ASan sees any read
  // past it (the reader parses lines in place when the export goes on).
  const absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool ndjson = selector & 1;
  const RuleSet& rules = *Rules().versions[(selector >> 1) & 1];
  BundleOptions options;
  options.ignore_unknown_facts = (selector >> 2) & 1;
  const absl::StatusOr<DayNumber> date = ParseIsoDate(kDates[(selector >> 3) & 3]);
  FUZZ_CHECK(date.ok(), "kDates");
  options.assessment_date = *date;

  if (ndjson) {
    const NdjsonFacts read = FactsFromNdjson(text, rules, options);
    CheckNdjson(rules, options, read);
    FUZZ_CHECK(Describe(FactsFromNdjson(text, rules, options)) == Describe(read),
               "NDJSON read twice gives two answers");
    return;
  }
  const absl::StatusOr<BundleFacts> read = FactsFromBundle(text, rules, options);
  const std::string described = Describe(read);
  FUZZ_CHECK(Describe(FactsFromBundle(text, rules, options)) == described,
             "Bundle read twice gives two answers");
  if (!read.ok()) {
    CheckRefusal(read.status(), "Bundle");
    return;
  }
  CheckFacts(rules, options, *read);
  const std::optional<std::string> lines = AsNdjson(text);
  if (!lines.has_value()) return;
  const NdjsonFacts as_ndjson = FactsFromNdjson(*lines, rules, options);
  FUZZ_CHECK(as_ndjson.line_errors.empty() && as_ndjson.patients.size() == 1,
             "the Bundle's resources as NDJSON:\n" + Describe(as_ndjson));
  FUZZ_CHECK(Describe(as_ndjson.patients[0].facts) == described,
             "the Bundle gives\n" + described + "\nits resources as NDJSON\n" +
                 Describe(as_ndjson));
}

}  // namespace
}  // namespace trialrules

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  trialrules::Fuzz(data, size);
  return 0;
}
