// Fuzz target: an expression and fact values -> the engine's expression API.
//
// Input: the expression text, then optionally a NUL byte and bytes that pick
// the facts' values (see ReadValues). Declared facts: numbers x, y, z,
// true/false a, b and dates d, e. The expression is checked
// (CheckExpression) and, when it passes, bound (BoundExpression) and
// evaluated on fixed value sets (all unknown, zeros, typical values, huge,
// infinite, NaN) and on the fuzzed one; then compiled into a one-rule rule
// set (the expression as the rule, or as a derived value the rule uses) and
// evaluated the same way. Never a crash; a checked expression always binds;
// a true/false expression gives 0, 1 or unknown; an unknown from known,
// finite facts is marked not_finite; the rule's outcome is TRUE, FALSE or
// UNKNOWN and agrees with the bare expression.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "service/engine/expression.h"
#include "service/engine/check.h"
#include "service/engine/rule_set.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_sanitizer_options.h"
#include "tests/fuzz/fuzz_evaluation_checks.h"

namespace trialrules {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMax = std::numeric_limits<double>::max();

struct Symbol {
  const char* name;
  ValueType type;
};
constexpr Symbol kSymbols[] = {
    {"x", ValueType::kNumber}, {"y", ValueType::kNumber}, {"z", ValueType::kNumber},
    {"a", ValueType::kBool},   {"b", ValueType::kBool},   {"d", ValueType::kDate},
    {"e", ValueType::kDate}};
constexpr int kSymbolCount = sizeof kSymbols / sizeof kSymbols[0];

using Values = std::vector<double>;  // one per symbol, NaN = unknown

// Reads one value per symbol from `bytes`: a selector byte, then for some
// selectors more bytes. Booleans are 0, 1 or unknown, as the engine binds
// them; dates whole day numbers; numbers anything, NaN and infinities too.
Values ReadValues(const uint8_t* bytes, size_t size) {
  size_t at = 0;
  auto next = [&]() -> uint8_t { return at < size ? bytes[at++] : 0; };
  Values values(kSymbolCount, kNaN);
  for (int i = 0; i < kSymbolCount; ++i) {
    const uint8_t selector = next();
    switch (kSymbols[i].type) {
      case ValueType::kText:  // no symbol is text
        break;
      case ValueType::kBool:
        values[i] = selector % 3 == 2 ? kNaN : selector % 3;
        break;
      case ValueType::kDate: {
        if (selector % 4 == 0) break;  // unknown
        int32_t day = 0;
        for (int k = 0; k < 4; ++k) day = static_cast<int32_t>((day << 8) | next());
        // Years 1000-9999: what ParseIsoDate gives.
        values[i] = -354285 + static_cast<int32_t>(static_cast<uint32_t>(day) % 3287181);
        break;
      }
      case ValueType::kNumber: {
        static constexpr double kSpecial[] = {
            kNaN, kInf, -kInf, 0.0, -0.0, 1.0, -1.0, 0.5, 1e308, -1e308, kMax,
            -kMax, std::numeric_limits<double>::denorm_min(),
            std::numeric_limits<double>::min(), 1e-300, 2.0, 3.0, 100.0, 1e9, 1e15};
        constexpr size_t kSpecialCount = sizeof kSpecial / sizeof kSpecial[0];
        if (selector < kSpecialCount) {
          values[i] = kSpecial[selector];
        } else if (selector < 128) {
          values[i] = static_cast<int8_t>(next());  // small whole numbers
        } else {
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | next();
          std::memcpy(&values[i], &bits, sizeof bits);
        }
        break;
      }
    }
  }
  return values;
}

std::vector<Values> FixedValues() {
  const double d0 = 18262;  // 2020-01-01
  return {
      {kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, kNaN},
      {0, 0, 0, 0, 0, 0, 0},
      {1, 2, 3, 1, 0, d0, d0 + 30},
      {-1, 0.5, 1e-300, 0, 1, d0, d0 - 400},
      {1e308, -1e308, kMax, 1, 1, -354285, 2932895},
      {kInf, -kInf, kNaN, 1, kNaN, d0, kNaN},
      {kNaN, 7, -kInf, kNaN, 0, kNaN, d0},
  };
}

bool SameDouble(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

bool AllKnownAndFinite(const Values& values, const std::vector<std::string>& used) {
  for (int i = 0; i < kSymbolCount; ++i) {
    if (std::find(used.begin(), used.end(), kSymbols[i].name) == used.end()) continue;
    if (!std::isfinite(values[i])) return false;
  }
  return true;
}

// The expression as rule "R" of a rule set (or, when it gives a number or a
// date, as derived value "v" and rule "R: v == v"), evaluated on `values`;
// the outcome must agree with the bare expression's `value`/`not_finite`.
void CheckAsRule(const std::string& text, const ExpressionCheck& check,
                 const std::vector<Values>& value_sets,
                 const std::vector<std::pair<double, bool>>& bare) {
  // Through the checker, as a rule file would go.
  ParsedRuleFile parsed;
  parsed.file_name = "fuzz";
  v1::RuleFile& file = parsed.file;
  file.set_protocol_id("FUZZ");
  file.set_version("1");
  file.set_effective_from("2020-01-01");
  for (const Symbol& symbol : kSymbols) {
    v1::Fact* fact = file.add_facts();
    fact->set_name(symbol.name);
    fact->set_type(symbol.type == ValueType::kNumber ? v1::NUMBER
                   : symbol.type == ValueType::kBool ? v1::BOOL
                                                     : v1::DATE);
  }
  v1::Rule* rule = file.add_inclusion();
  rule->set_id("R");
  rule->set_text("fuzzed");
  const bool is_rule = check.type == ValueType::kBool;
  if (is_rule) {
    rule->set_expression(text);
  } else {
    v1::DerivedValue* derived = file.add_derived_values();
    derived->set_name("v");
    derived->set_expression(text);
    rule->set_expression("v == v");
  }
  std::vector<Problem> problems;
  RuleSetDefinition def;
  FUZZ_CHECK(CheckRuleFile(parsed, &def, &problems),
             problems.empty() ? "check failed" : problems[0].ToString());
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set = RuleSet::Create(std::move(def));
  FUZZ_CHECK(rule_set.ok(), std::string(rule_set.status().message()));

  for (size_t s = 0; s < value_sets.size(); ++s) {
    const Values& values = value_sets[s];
    FactValues facts = (*rule_set)->EmptyFacts();
    bool any_infinite = false;
    for (int i = 0; i < kSymbolCount; ++i) {
      facts.values[i] = values[i];
      facts.present[i] = !std::isnan(values[i]);
      any_infinite |= std::isinf(values[i]);
    }
    const Evaluation evaluation = fuzz::CheckEvaluation(
        **rule_set, EvaluationKind::kEligibility, facts, !any_infinite);
    FUZZ_CHECK(evaluation.rules.size() == 1, "one rule");
    const RuleResult& result = evaluation.rules[0];
    const auto [value, not_finite] = bare[s];
    Outcome expected;
    if (not_finite || std::isnan(value)) {
      expected = Outcome::kUnknown;
    } else if (is_rule) {
      expected = value != 0.0 ? Outcome::kTrue : Outcome::kFalse;
    } else {
      expected = Outcome::kTrue;  // v == v
    }
    FUZZ_CHECK(result.outcome == expected,
               absl::StrCat("value set ", s, ": rule ", OutcomeName(result.outcome),
                            ", expression gave ", value,
                            not_finite ? " (not finite)" : ""));
    FUZZ_CHECK(result.not_finite == not_finite,
               absl::StrCat("value set ", s, ": not_finite ", result.not_finite,
                            " through the rule set, ", not_finite, " bare"));
  }
}

void Fuzz(const uint8_t* data, size_t size) {
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t text_size = nul != nullptr ? static_cast<size_t>(nul - data) : size;
  const std::string text(reinterpret_cast<const char*>(data), text_size);

  absl::flat_hash_map<std::string, ValueType> symbols;
  absl::flat_hash_map<std::string, int> slot_of;
  for (int i = 0; i < kSymbolCount; ++i) {
    symbols[kSymbols[i].name] = kSymbols[i].type;
    slot_of[kSymbols[i].name] = i;
  }
  const ExpressionCheck check = CheckExpression(text, symbols);
  if (!check.error.empty()) {
    FUZZ_CHECK(check.error_offset >= -1 &&
                   check.error_offset <= static_cast<int>(text.size()),
               absl::StrCat("error offset ", check.error_offset, " in ", text.size(),
                            " characters: ", check.error));
    return;
  }
  FUZZ_CHECK(text.size() <= kMaxExpressionLength, "over-long expression passed");
  for (size_t i = 0; i < check.used_names.size(); ++i) {
    FUZZ_CHECK(symbols.contains(check.used_names[i]),
               "undeclared name used: " + check.used_names[i]);
    FUZZ_CHECK(i == 0 || check.used_names[i - 1] < check.used_names[i],
               "used names not sorted and unique");
  }

  std::vector<Values> value_sets = FixedValues();
  if (nul != nullptr) {
    value_sets.push_back(ReadValues(nul + 1, size - text_size - 1));
  }
  double slots[kSymbolCount];
  std::unique_ptr<BoundExpression> bound = BoundExpression::Create(text, slot_of, slots);
  FUZZ_CHECK(bound != nullptr, "an expression that passed CheckExpression did not bind");
  std::vector<std::pair<double, bool>> bare;
  for (size_t s = 0; s < value_sets.size(); ++s) {
    std::memcpy(slots, value_sets[s].data(), sizeof slots);
    bool not_finite = true;
    const double value = bound->Evaluate(&not_finite);
    bool again_not_finite = !not_finite;
    const double again = bound->Evaluate(&again_not_finite);
    FUZZ_CHECK(SameDouble(value, again) && not_finite == again_not_finite,
               absl::StrCat("value set ", s, ": evaluating twice gave ", value, " and ",
                            again));
    bool muparser_not_finite = !not_finite;
    const double by_muparser = bound->EvaluateByMuparser(&muparser_not_finite);
    FUZZ_CHECK(SameDouble(value, by_muparser) && not_finite == muparser_not_finite,
               absl::StrCat("value set ", s, ": the program gave ", value,
                            not_finite ? " (not finite)" : "", ", muparser ", by_muparser,
                            muparser_not_finite ? " (not finite)" : ""));
    if (check.type == ValueType::kBool && !not_finite) {
      FUZZ_CHECK(value == 0.0 || value == 1.0 || std::isnan(value),
                 absl::StrCat("value set ", s, ": true/false expression gave ", value));
    }
    if (AllKnownAndFinite(value_sets[s], check.used_names)) {
      FUZZ_CHECK(!std::isnan(value) || not_finite,
                 absl::StrCat("value set ", s,
                              ": unknown from known, finite facts, not marked not_finite"));
    }
    bare.emplace_back(value, not_finite);
  }
  CheckAsRule(text, check, value_sets, bare);
}

}  // namespace
}  // namespace trialrules

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  trialrules::Fuzz(data, size);
  return 0;
}
