#include "service/engine/rule_set.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace trialrules {

absl::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kTrue: return "TRUE";
    case Outcome::kFalse: return "FALSE";
    case Outcome::kUnknown: return "UNKNOWN";
  }
  return "UNKNOWN";
}

absl::string_view RuleKindName(RuleKind kind) {
  switch (kind) {
    case RuleKind::kInclusion: return "inclusion";
    case RuleKind::kExclusion: return "exclusion";
    case RuleKind::kWithdrawal: return "withdrawal";
    case RuleKind::kStopping: return "stopping";
    case RuleKind::kEscalation: return "escalation";
  }
  return "?";
}

absl::string_view EvaluationKindName(EvaluationKind kind) {
  switch (kind) {
    case EvaluationKind::kEligibility: return "eligibility";
    case EvaluationKind::kWithdrawal: return "withdrawal";
    case EvaluationKind::kEscalation: return "escalation";
    case EvaluationKind::kStopping: return "stopping";
  }
  return "?";
}

std::optional<EvaluationKind> ParseEvaluationKind(absl::string_view name) {
  for (EvaluationKind kind : kAllEvaluationKinds) {
    if (EvaluationKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

absl::string_view DecisionName(Decision decision) {
  switch (decision) {
    case Decision::kIndeterminate: return "INDETERMINATE";
    case Decision::kEligible: return "ELIGIBLE";
    case Decision::kIneligible: return "INELIGIBLE";
    case Decision::kWithdraw: return "WITHDRAW";
    case Decision::kContinue: return "CONTINUE";
    case Decision::kEscalate: return "ESCALATE";
    case Decision::kExpand: return "EXPAND";
    case Decision::kDeEscalate: return "DE_ESCALATE";
    case Decision::kTriggered: return "TRIGGERED";
    case Decision::kNotTriggered: return "NOT_TRIGGERED";
  }
  return "INDETERMINATE";
}

namespace {

constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

bool KindHasRule(EvaluationKind kind, RuleKind rule_kind) {
  switch (kind) {
    case EvaluationKind::kEligibility:
      return rule_kind == RuleKind::kInclusion ||
             rule_kind == RuleKind::kExclusion;
    case EvaluationKind::kWithdrawal: return rule_kind == RuleKind::kWithdrawal;
    case EvaluationKind::kEscalation: return rule_kind == RuleKind::kEscalation;
    case EvaluationKind::kStopping: return rule_kind == RuleKind::kStopping;
  }
  return false;
}

// The shortest text that reads back as the same double: an error must name
// the value the caller sent, not a rounding of it.
std::string FormatNumber(double value) {
  std::string text;
  AppendCanonicalNumber(value, &text);
  return text;
}

std::string DescribeValue(const FactSpec& spec, double canonical) {
  if (spec.type == ValueType::kDate) {
    return FormatIsoDate(static_cast<DayNumber>(canonical));
  }
  return spec.unit.empty() ? FormatNumber(canonical)
                           : absl::StrCat(FormatNumber(canonical), " ", spec.unit);
}

std::string DescribeInput(const std::variant<double, bool, std::string>& value,
                          absl::string_view unit) {
  if (const double* number = std::get_if<double>(&value)) {
    return unit.empty() ? FormatNumber(*number)
                        : absl::StrCat(FormatNumber(*number), " ", unit);
  }
  if (const bool* flag = std::get_if<bool>(&value)) {
    return *flag ? "true" : "false";
  }
  return absl::StrCat("\"", std::get<std::string>(value), "\"");
}

Decision DecideEligibility(const std::vector<RuleSpec>& specs,
                           const std::vector<RuleResult>& results) {
  bool all_decided_favourably = true;
  for (const RuleResult& result : results) {
    const RuleSpec& spec = specs[result.rule];
    if (spec.informational) continue;
    const Outcome excluded_if = spec.kind == RuleKind::kInclusion
                                    ? Outcome::kFalse
                                    : Outcome::kTrue;
    if (result.outcome == excluded_if) return Decision::kIneligible;
    if (result.outcome == Outcome::kUnknown) all_decided_favourably = false;
  }
  return all_decided_favourably ? Decision::kEligible
                                : Decision::kIndeterminate;
}

// Any TRUE gives `any_true`; all FALSE gives `all_false`.
Decision DecideAny(const std::vector<RuleSpec>& specs,
                   const std::vector<RuleResult>& results, Decision any_true,
                   Decision all_false) {
  bool all_false_so_far = true;
  for (const RuleResult& result : results) {
    if (specs[result.rule].informational) continue;
    if (result.outcome == Outcome::kTrue) return any_true;
    if (result.outcome == Outcome::kUnknown) all_false_so_far = false;
  }
  return all_false_so_far ? all_false : Decision::kIndeterminate;
}

// The one action whose rule holds; none or several: indeterminate.
Decision DecideEscalation(const std::vector<RuleSpec>& specs,
                          const std::vector<RuleResult>& results) {
  Decision action = Decision::kIndeterminate;
  int holding = 0;
  for (const RuleResult& result : results) {
    if (result.outcome == Outcome::kTrue) {
      action = specs[result.rule].action;
      ++holding;
    }
  }
  return holding == 1 ? action : Decision::kIndeterminate;
}

// The longest text one canonical value takes: a shortest round-trip double
// is at most 24 characters ("-2.2250738585072014e-308"), a quoted date 12.
constexpr size_t kMaxCanonicalValue = 32;

// Writes at `out`, which has room for kMaxCanonicalValue; returns the end.
//
// std::to_chars's shortest round-trip search costs more than the rest of a
// decision's audit record, and most clinical values are whole or have one to
// three decimals. For those the shortest text is known without it:
//  - whole numbers below 10^5: no exponent form is shorter;
//  - below 10^9 with k = 1..3 decimals: if the decimal m / 10^k, correctly
//    rounded (one IEEE division), is the value, then k decimals read back as
//    the value, fewer do not (tried first), and the fixed form is never
//    longer than the exponent form (ties go to fixed, as in to_chars).
// CanonicalNumberTest compares both ways over these ranges.
char* WriteCanonicalNumber(double value, char* out) {
  if (value > -1e5 && value < 1e5 && value == static_cast<int32_t>(value) &&
      !(value == 0 && std::signbit(value))) {
    return std::to_chars(out, out + kMaxCanonicalValue, static_cast<int32_t>(value)).ptr;
  }
  if (value > -1e9 && value < 1e9 && value != std::trunc(value)) {
    int64_t scale = 1;
    for (int decimals = 1; decimals <= 3; ++decimals) {
      scale *= 10;
      const double scaled = std::nearbyint(value * static_cast<double>(scale));
      if (scaled / static_cast<double>(scale) != value) continue;
      const int64_t m = static_cast<int64_t>(scaled);
      uint64_t magnitude = m < 0 ? static_cast<uint64_t>(-m) : static_cast<uint64_t>(m);
      char digits[24];
      char* end = digits + sizeof digits;
      char* p = end;
      for (int d = 0; d < decimals; ++d, magnitude /= 10) *--p = static_cast<char>('0' + magnitude % 10);
      *--p = '.';
      do {
        *--p = static_cast<char>('0' + magnitude % 10);
        magnitude /= 10;
      } while (magnitude != 0);
      if (value < 0) *--p = '-';
      return std::copy(p, end, out);
    }
  }
  return std::to_chars(out, out + kMaxCanonicalValue, value).ptr;
}

}  // namespace

// Per-evaluation state: muparser parsers bound to this state's own slots.
struct RuleSet::EvaluatorState {
  std::vector<double> slots;  // facts, then nodes
  std::vector<std::unique_ptr<BoundExpression>> programs;  // per node
  std::vector<uint8_t> node_not_finite;
  std::vector<uint8_t> fact_seen;  // scratch for the missing-facts union
};

RuleSet::RuleSet(RuleSetDefinition definition) : def_(std::move(definition)) {}
RuleSet::~RuleSet() = default;

absl::StatusOr<std::shared_ptr<const RuleSet>> RuleSet::Create(
    RuleSetDefinition definition) {
  std::shared_ptr<RuleSet> rule_set(new RuleSet(std::move(definition)));
  RuleSet& rs = *rule_set;
  const int fact_count = static_cast<int>(rs.def_.facts.size());
  const int derived_count = static_cast<int>(rs.def_.derived.size());
  const int node_count = derived_count + static_cast<int>(rs.def_.rules.size());

  absl::flat_hash_map<std::string, ValueType> types;
  absl::flat_hash_map<std::string, int> slot_of;  // name → slot
  for (int f = 0; f < fact_count; ++f) {
    rs.fact_index_[rs.def_.facts[f].name] = f;
    types[rs.def_.facts[f].name] = rs.def_.facts[f].type;
    slot_of[rs.def_.facts[f].name] = f;
  }
  for (int d = 0; d < derived_count; ++d) {
    types[rs.def_.derived[d].name] = rs.def_.derived[d].type;
    slot_of[rs.def_.derived[d].name] = fact_count + d;
    rs.node_expression_.push_back(rs.def_.derived[d].expression);
  }
  for (size_t r = 0; r < rs.def_.rules.size(); ++r) {
    types[rs.def_.rules[r].id] = ValueType::kBool;
    slot_of[rs.def_.rules[r].id] = fact_count + derived_count + r;
    rs.node_expression_.push_back(rs.def_.rules[r].expression);
  }

  for (int f = 0; f < fact_count; ++f) {
    rs.facts_by_name_.push_back(f);
    // Names are identifiers (checked at load): nothing to escape.
    rs.canonical_keys_.push_back(absl::StrCat("\"", rs.def_.facts[f].name, "\":"));
    rs.canonical_max_length_ += rs.canonical_keys_.back().size() + 1 + kMaxCanonicalValue;
  }
  std::sort(rs.facts_by_name_.begin(), rs.facts_by_name_.end(), [&](int a, int b) {
    return rs.def_.facts[a].name < rs.def_.facts[b].name;
  });
  rs.node_deps_.resize(node_count);
  rs.node_slots_.resize(node_count);
  std::vector<std::vector<int>> direct_fact_deps(node_count);
  for (int n = 0; n < node_count; ++n) {
    const ExpressionCheck check = CheckExpression(rs.node_expression_[n], types);
    if (!check.error.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("expression \"", rs.node_expression_[n],
                       "\": ", check.error));
    }
    for (const std::string& name : check.used_names) {
      const int slot = slot_of.at(name);
      rs.node_slots_[n][name] = slot;
      if (slot < fact_count) {
        direct_fact_deps[n].push_back(slot);
      } else {
        rs.node_deps_[n].push_back(slot - fact_count);
      }
    }
  }

  // Dependency order over all nodes (depth-first, post-order).
  std::vector<int> order;
  std::vector<uint8_t> state(node_count, 0);  // 0 new, 1 open, 2 done
  bool cyclic = false;
  auto visit = [&](auto&& self, int n) -> void {
    if (state[n] == 2 || cyclic) return;
    if (state[n] == 1) {
      cyclic = true;
      return;
    }
    state[n] = 1;
    for (int dep : rs.node_deps_[n]) self(self, dep);
    state[n] = 2;
    order.push_back(n);
  };
  for (int n = 0; n < node_count; ++n) visit(visit, n);
  if (cyclic) return absl::InvalidArgumentError("rules depend on each other in a cycle");

  rs.node_fact_deps_.resize(node_count);
  for (int n : order) {
    std::vector<int>& deps = rs.node_fact_deps_[n];
    deps = direct_fact_deps[n];
    for (int dep : rs.node_deps_[n]) {
      deps.insert(deps.end(), rs.node_fact_deps_[dep].begin(),
                  rs.node_fact_deps_[dep].end());
    }
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
  }

  for (EvaluationKind kind : kAllEvaluationKinds) {
    Plan& plan = rs.plans_[static_cast<int>(kind)];
    std::vector<uint8_t> needed(node_count, 0);
    auto mark = [&](auto&& self, int n) -> void {
      if (needed[n]) return;
      needed[n] = 1;
      for (int dep : rs.node_deps_[n]) self(self, dep);
    };
    for (size_t r = 0; r < rs.def_.rules.size(); ++r) {
      if (KindHasRule(kind, rs.def_.rules[r].kind)) {
        plan.rules.push_back(static_cast<int>(r));
        mark(mark, derived_count + static_cast<int>(r));
      }
    }
    std::vector<uint8_t> fact_needed(fact_count, 0);
    for (int n : order) {
      if (!needed[n]) continue;
      plan.nodes.push_back(n);
      for (int f : rs.node_fact_deps_[n]) fact_needed[f] = 1;
    }
    for (int f = 0; f < fact_count; ++f) {
      if (fact_needed[f]) plan.facts.push_back(f);
    }
  }

  // Bind once now: a rule set that cannot evaluate is never published.
  absl::StatusOr<std::unique_ptr<EvaluatorState>> first = rs.NewEvaluatorState();
  if (!first.ok()) return first.status();
  rs.ReleaseState(*std::move(first));
  return std::shared_ptr<const RuleSet>(std::move(rule_set));
}

absl::StatusOr<std::unique_ptr<RuleSet::EvaluatorState>>
RuleSet::NewEvaluatorState() const {
  auto state = std::make_unique<EvaluatorState>();
  const size_t node_count = node_expression_.size();
  state->slots.assign(def_.facts.size() + node_count, kUnknown);
  state->node_not_finite.assign(node_count, 0);
  state->fact_seen.assign(def_.facts.size(), 0);
  for (size_t n = 0; n < node_count; ++n) {
    std::unique_ptr<BoundExpression> program = BoundExpression::Create(
        node_expression_[n], node_slots_[n], state->slots.data());
    if (program == nullptr) {
      return absl::InternalError(absl::StrCat(
          "cannot bind expression \"", node_expression_[n], "\""));
    }
    state->programs.push_back(std::move(program));
  }
  return state;
}

std::unique_ptr<RuleSet::EvaluatorState> RuleSet::AcquireState() const {
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (!pool_.empty()) {
      std::unique_ptr<EvaluatorState> state = std::move(pool_.back());
      pool_.pop_back();
      return state;
    }
  }
  // The first state was bound in Create(), so binding cannot fail here.
  return *NewEvaluatorState();
}

void RuleSet::ReleaseState(std::unique_ptr<EvaluatorState> state) const {
  std::lock_guard<std::mutex> lock(pool_mutex_);
  pool_.push_back(std::move(state));
}

const std::vector<int>& RuleSet::FactsFor(EvaluationKind kind) const {
  return plans_[static_cast<int>(kind)].facts;
}

const std::vector<int>& RuleSet::RulesFor(EvaluationKind kind) const {
  return plans_[static_cast<int>(kind)].rules;
}

int RuleSet::FindFact(absl::string_view name) const {
  const auto it = fact_index_.find(name);
  return it == fact_index_.end() ? -1 : it->second;
}

void AppendCanonicalNumber(double value, std::string* out) {
  char buffer[kMaxCanonicalValue];
  out->append(buffer, WriteCanonicalNumber(value, buffer));
}

std::string RuleSet::CanonicalFacts(const FactValues& facts) const {
  std::string out;
  AppendCanonicalFacts(facts, &out);
  return out;
}

void RuleSet::AppendCanonicalFacts(const FactValues& facts, std::string* out) const {
  // Sized once for the longest possible text, written through a pointer,
  // then cut to length: this runs for every decision.
  const size_t start = out->size();
  out->resize(start + canonical_max_length_);
  char* const begin = out->data() + start;
  char* p = begin;
  *p++ = '{';
  for (int f : facts_by_name_) {
    if (!facts.present[f]) continue;
    if (p != begin + 1) *p++ = ',';
    const std::string& key = canonical_keys_[f];
    p = std::copy(key.begin(), key.end(), p);
    const double value = facts.values[f];
    switch (def_.facts[f].type) {
      case ValueType::kNumber: p = WriteCanonicalNumber(value, p); break;
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
    }
  }
  *p++ = '}';
  out->resize(start + (p - begin));
}

FactValues RuleSet::EmptyFacts() const {
  FactValues facts;
  facts.values.assign(def_.facts.size(), kUnknown);
  facts.present.assign(def_.facts.size(), 0);
  return facts;
}

absl::StatusOr<double> RuleSet::ConvertFact(
    int fact, const std::variant<double, bool, std::string>& value,
    absl::string_view unit) const {
  const FactSpec& spec = def_.facts[fact];
  auto refuse = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fact \"", spec.name, "\" = ", DescribeInput(value, unit), ": ", why));
  };
  double canonical = 0;
  switch (spec.type) {
    case ValueType::kNumber: {
      const double* number = std::get_if<double>(&value);
      if (number == nullptr) return refuse("expected a number");
      if (!std::isfinite(*number)) return refuse("not a finite number");
      canonical = *number;
      if (!unit.empty() && unit != spec.unit) {
        const auto alternative = std::find_if(
            spec.accepted_units.begin(), spec.accepted_units.end(),
            [&](const FactSpec::AlternativeUnit& a) { return a.unit == unit; });
        if (alternative == spec.accepted_units.end()) {
          std::vector<std::string> accepted = {
              spec.unit.empty() ? "no unit" : spec.unit};
          for (const auto& a : spec.accepted_units) accepted.push_back(a.unit);
          return refuse(absl::StrCat("unit \"", unit, "\" is not accepted (",
                                     absl::StrJoin(accepted, ", "), ")"));
        }
        canonical = *number / alternative->per_canonical_unit;
        if (!std::isfinite(canonical)) {
          return refuse(absl::StrCat("too large once converted to ",
                                     spec.unit.empty() ? "the canonical unit" : spec.unit));
        }
      }
      if (spec.integer && canonical != std::floor(canonical)) {
        return refuse("must be a whole number");
      }
      break;
    }
    case ValueType::kBool: {
      const bool* flag = std::get_if<bool>(&value);
      if (flag == nullptr) return refuse("expected true or false");
      if (!unit.empty()) return refuse("a true/false fact takes no unit");
      canonical = *flag ? 1.0 : 0.0;
      break;
    }
    case ValueType::kDate: {
      const std::string* text = std::get_if<std::string>(&value);
      if (text == nullptr) return refuse("expected a date \"YYYY-MM-DD\"");
      if (!unit.empty()) return refuse("a date takes no unit");
      absl::StatusOr<DayNumber> day = ParseIsoDate(*text);
      if (!day.ok()) return refuse(day.status().message());
      canonical = *day;
      break;
    }
  }
  if (canonical < spec.min || canonical > spec.max) {
    std::string range =
        absl::StrCat("outside the valid range ", DescribeValue(spec, spec.min),
                     " to ", DescribeValue(spec, spec.max));
    if (spec.type == ValueType::kNumber && !unit.empty() && unit != spec.unit) {
      absl::StrAppend(&range, " (", DescribeValue(spec, canonical), ")");
    }
    return refuse(range);
  }
  return canonical;
}

absl::Status RuleSet::BindFact(absl::string_view name,
                               const std::variant<double, bool, std::string>& value,
                               absl::string_view unit, FactValues* facts,
                               std::vector<std::string>* ignored_unknown) const {
  const int fact = FindFact(name);
  if (fact < 0) {
    if (ignored_unknown != nullptr) {
      ignored_unknown->emplace_back(name);
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "fact \"", name, "\" = ", DescribeInput(value, unit),
        ": unknown fact for protocol ", def_.protocol_id, " version ", def_.version));
  }
  if (facts->present[fact]) {
    return absl::InvalidArgumentError(
        absl::StrCat("fact \"", name, "\" is given more than once"));
  }
  absl::StatusOr<double> converted = ConvertFact(fact, value, unit);
  if (!converted.ok()) return converted.status();
  facts->values[fact] = *converted;
  facts->present[fact] = 1;
  return absl::OkStatus();
}

absl::StatusOr<FactValues> RuleSet::BindFacts(
    absl::Span<const FactInput> inputs,
    std::vector<std::string>* ignored_unknown) const {
  FactValues facts = EmptyFacts();
  for (const FactInput& input : inputs) {
    absl::Status status =
        BindFact(input.name, input.value, input.unit, &facts, ignored_unknown);
    if (!status.ok()) return status;
  }
  return facts;
}

void RuleSet::Evaluate(EvaluationKind kind, const FactValues& facts,
                       Evaluation* out) const {
  const Plan& plan = plans_[static_cast<int>(kind)];
  const int fact_count = static_cast<int>(def_.facts.size());
  const int derived_count = static_cast<int>(def_.derived.size());
  std::unique_ptr<EvaluatorState> state = AcquireState();
  double* slots = state->slots.data();
  std::copy_n(facts.values.data(), fact_count, slots);  // memcpy: UB on null with 0 facts

  for (int n : plan.nodes) {
    bool not_finite = false;
    double value = state->programs[n]->Evaluate(&not_finite);
    for (int dep : node_deps_[n]) not_finite |= state->node_not_finite[dep];
    state->node_not_finite[n] = not_finite;
    if (not_finite) {
      value = kUnknown;
    } else if (n >= derived_count && !std::isnan(value)) {
      value = value != 0.0 ? 1.0 : 0.0;
    }
    slots[fact_count + n] = value;
  }

  out->kind = kind;
  out->rules.resize(plan.rules.size());
  out->missing_facts.clear();
  std::vector<uint8_t>& seen = state->fact_seen;
  for (size_t i = 0; i < plan.rules.size(); ++i) {
    const int rule = plan.rules[i];
    const int node = derived_count + rule;
    const double value = slots[fact_count + node];
    RuleResult& result = out->rules[i];
    result.rule = rule;
    result.not_finite = state->node_not_finite[node];
    result.missing_facts.clear();
    if (std::isnan(value)) {
      result.outcome = Outcome::kUnknown;
      for (int f : node_fact_deps_[node]) {
        if (facts.present[f]) continue;
        result.missing_facts.push_back(f);
        if (!seen[f]) {
          seen[f] = 1;
          out->missing_facts.push_back(f);
        }
      }
    } else {
      result.outcome = value != 0.0 ? Outcome::kTrue : Outcome::kFalse;
    }
  }
  for (int f : out->missing_facts) seen[f] = 0;
  std::sort(out->missing_facts.begin(), out->missing_facts.end());
  ReleaseState(std::move(state));

  switch (kind) {
    case EvaluationKind::kEligibility:
      out->decision = DecideEligibility(def_.rules, out->rules);
      break;
    case EvaluationKind::kWithdrawal:
      out->decision = DecideAny(def_.rules, out->rules, Decision::kWithdraw,
                                Decision::kContinue);
      break;
    case EvaluationKind::kEscalation:
      out->decision = DecideEscalation(def_.rules, out->rules);
      break;
    case EvaluationKind::kStopping:
      out->decision = DecideAny(def_.rules, out->rules, Decision::kTriggered,
                                Decision::kNotTriggered);
      break;
  }
}

Evaluation RuleSet::Evaluate(EvaluationKind kind,
                             const FactValues& facts) const {
  Evaluation evaluation;
  Evaluate(kind, facts, &evaluation);
  return evaluation;
}

}  // namespace trialrules
