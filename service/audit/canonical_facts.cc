#include "service/audit/canonical_facts.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "service/audit/jcs.h"
#include "service/util/dates.h"
#include "service/util/number_text.h"

namespace trialrules {
namespace {

// The longest text of one value: a number, or a quoted date (12).
constexpr size_t kMaxValueText = kMaxNumberText;
// A quoted word of a TEXT fact: an identifier of at most 64 characters.
constexpr size_t kMaxWordText = 66;

}  // namespace

void AppendCanonicalFacts(const RuleSet& rule_set, const FactValues& facts,
                          std::string* out) {
  // This runs for every decision: the text is written through a pointer
  // into room sized once for the longest it can be, then cut to length.
  const std::vector<FactSpec>& specs = rule_set.facts();
  size_t longest = 2;
  for (size_t f = 0; f < specs.size(); ++f) {
    if (facts.present[f]) {
      longest += specs[f].name.size() + 4 +
                 (specs[f].type == ValueType::kText ? kMaxWordText : kMaxValueText);
    }
  }
  const size_t start = out->size();
  out->resize(start + longest);
  char* const begin = out->data() + start;
  char* p = begin;
  *p++ = '{';
  for (int f : rule_set.facts_by_name()) {
    if (!facts.present[f]) continue;
    if (p != begin + 1) *p++ = ',';
    // Names are identifiers (checked at load): nothing to escape.
    *p++ = '"';
    p = std::copy(specs[f].name.begin(), specs[f].name.end(), p);
    *p++ = '"';
    *p++ = ':';
    const double value = facts.values[f];
    switch (specs[f].type) {
      case ValueType::kNumber: {
        char* const number = p;
        p = WriteShortestNumber(value, p);
        // The shortest text uses an exponent where ECMAScript (and so RFC
        // 8785) writes plain digits, and spells exponents differently.
        if (std::find(number, p, 'e') != p) {
          std::string jcs;
          AppendJcsNumber(value, &jcs);
          p = std::copy(jcs.begin(), jcs.end(), number);
        }
        break;
      }
      case ValueType::kBool: {
        const absl::string_view text = value != 0 ? "true" : "false";
        p = std::copy(text.begin(), text.end(), p);
        break;
      }
      case ValueType::kDate: {
        *p++ = '"';
        const std::string date = FormatIsoDate(static_cast<DayNumber>(value));
        p = std::copy(date.begin(), date.end(), p);
        *p++ = '"';
        break;
      }
      case ValueType::kText: {
        // Words are identifiers (checked at load): nothing to escape.
        const std::string& word =
            rule_set.definition().words[static_cast<size_t>(value) - 1];
        *p++ = '"';
        p = std::copy(word.begin(), word.end(), p);
        *p++ = '"';
        break;
      }
    }
  }
  *p++ = '}';
  out->resize(start + (p - begin));
}

std::string CanonicalFacts(const RuleSet& rule_set, const FactValues& facts) {
  std::string out;
  AppendCanonicalFacts(rule_set, facts, &out);
  return out;
}

std::string CanonicalRecords(const v1::TrialRecords& records) {
  // An event's observations are a set by name, whichever order a caller
  // (or a JSON object's member order) gave them in.
  v1::TrialRecords sorted = records;
  for (v1::PatientRecord& patient : *sorted.mutable_patients()) {
    for (v1::AdverseEventRecord& event : *patient.mutable_events()) {
      std::stable_sort(event.mutable_observations()->begin(), event.mutable_observations()->end(),
                       [](const auto& a, const auto& b) { return a.name() < b.name(); });
    }
  }
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  // Printing a message of a compiled-in type cannot fail, and protobuf's
  // JSON is JSON: only the member order and number spelling change.
  (void)google::protobuf::util::MessageToJsonString(sorted, &json, options);
  absl::StatusOr<std::string> canonical = CanonicalJson(json);
  return canonical.ok() ? *std::move(canonical) : json;
}

}  // namespace trialrules
