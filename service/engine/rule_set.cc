#include "service/engine/rule_set.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "service/engine/expression.h"

namespace trialrules {
namespace {

constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

bool KindHasRule(EvaluationKind kind, RuleKind rule_kind) {
  switch (kind) {
    case EvaluationKind::kEligibility:
      return rule_kind == RuleKind::kInclusion || rule_kind == RuleKind::kExclusion;
    case EvaluationKind::kWithdrawal: return rule_kind == RuleKind::kWithdrawal;
    case EvaluationKind::kEscalation: return rule_kind == RuleKind::kEscalation;
    case EvaluationKind::kStopping: return rule_kind == RuleKind::kStopping;
  }
  return false;
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

}  // namespace

// Per-evaluation state: muparser programs bound to this state's own slots.
struct RuleSet::EvaluatorState {
  std::vector<double> slots;  // facts, then nodes
  std::vector<std::unique_ptr<BoundExpression>> programs;  // per node
  std::vector<uint8_t> node_not_finite;
  std::vector<uint8_t> fact_seen;  // scratch for the missing-facts union
};

RuleSet::RuleSet(RuleSetDefinition definition) : def_(std::move(definition)) {}
RuleSet::~RuleSet() = default;

absl::StatusOr<std::shared_ptr<const RuleSet>> RuleSet::Create(
    RuleSetDefinition definition, KeepGoing keep_going) {
  std::shared_ptr<RuleSet> rule_set(new RuleSet(std::move(definition)));
  RuleSet& rs = *rule_set;
  const RuleSetDefinition& def = rs.def_;
  const int fact_count = static_cast<int>(def.facts.size());
  const int derived_count = static_cast<int>(def.derived.size());
  const int node_count = static_cast<int>(def.nodes.size());

  for (size_t w = 0; w < def.words.size(); ++w) rs.word_codes_[def.words[w]] = w + 1.0;
  for (int f = 0; f < fact_count; ++f) {
    rs.fact_index_[def.facts[f].name] = f;
    rs.facts_by_name_.push_back(f);
  }
  std::sort(rs.facts_by_name_.begin(), rs.facts_by_name_.end(),
            [&](int a, int b) { return def.facts[a].name < def.facts[b].name; });
  for (int r = 0; r < static_cast<int>(def.rules.size()); ++r) rs.rules_by_id_.push_back(r);
  std::sort(rs.rules_by_id_.begin(), rs.rules_by_id_.end(),
            [&](int a, int b) { return def.rules[a].id < def.rules[b].id; });

  // Each node's names → slots, and its transitive fact dependencies (in
  // dependency order, so a node's uses are complete before it).
  rs.node_slots_.resize(node_count);
  rs.node_fact_deps_.resize(node_count);
  for (int n : def.node_order) {
    const NodeSpec& node = def.nodes[n];
    std::vector<int>& deps = rs.node_fact_deps_[n];
    for (int f : node.facts) {
      rs.node_slots_[n][def.facts[f].name] = f;
      deps.push_back(f);
    }
    for (int used : node.nodes) {
      rs.node_slots_[n][def.NodeName(used)] = fact_count + used;
      deps.insert(deps.end(), rs.node_fact_deps_[used].begin(),
                  rs.node_fact_deps_[used].end());
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
      for (int used : def.nodes[n].nodes) self(self, used);
    };
    for (size_t r = 0; r < def.rules.size(); ++r) {
      if (KindHasRule(kind, def.rules[r].kind)) {
        plan.rules.push_back(static_cast<int>(r));
        mark(mark, derived_count + static_cast<int>(r));
      }
    }
    std::vector<uint8_t> fact_needed(fact_count, 0);
    for (int n : def.node_order) {
      if (!needed[n]) continue;
      plan.nodes.push_back(n);
      for (int f : rs.node_fact_deps_[n]) fact_needed[f] = 1;
    }
    for (int f = 0; f < fact_count; ++f) {
      if (fact_needed[f]) plan.facts.push_back(f);
    }
  }

  // Bind once now: a rule set that cannot evaluate is never published.
  absl::StatusOr<std::unique_ptr<EvaluatorState>> first = rs.NewEvaluatorState(keep_going);
  if (!first.ok()) return first.status();
  rs.ReturnToPool(*std::move(first));
  return std::shared_ptr<const RuleSet>(std::move(rule_set));
}

absl::StatusOr<std::unique_ptr<RuleSet::EvaluatorState>>
RuleSet::NewEvaluatorState(KeepGoing keep_going) const {
  auto state = std::make_unique<EvaluatorState>();
  const size_t node_count = def_.nodes.size();
  state->slots.assign(def_.facts.size() + node_count, kUnknown);
  state->node_not_finite.assign(node_count, 0);
  state->fact_seen.assign(def_.facts.size(), 0);
  for (size_t n = 0; n < node_count; ++n) {
    if (absl::Status go_on = keep_going(); !go_on.ok()) return go_on;
    std::unique_ptr<BoundExpression> program = BoundExpression::Create(
        def_.NodeExpression(n), node_slots_[n], state->slots.data(), word_codes_);
    if (program == nullptr) {
      return absl::InternalError(absl::StrCat(
          "cannot bind expression \"", def_.NodeExpression(n), "\""));
    }
    state->programs.push_back(std::move(program));
  }
  return state;
}

absl::StatusOr<std::unique_ptr<RuleSet::Probe>> RuleSet::Probe::Create(
    const RuleSet& rule_set, std::vector<std::string> expressions) {
  absl::StatusOr<std::unique_ptr<EvaluatorState>> state = rule_set.NewEvaluatorState();
  if (!state.ok()) return state.status();
  std::unique_ptr<Probe> probe(new Probe(rule_set, *std::move(state)));
  const RuleSetDefinition& def = rule_set.def_;
  const int fact_count = static_cast<int>(def.facts.size());
  absl::flat_hash_map<std::string, int> slot_of;
  for (int f = 0; f < fact_count; ++f) slot_of[def.facts[f].name] = f;
  for (int n = 0; n < static_cast<int>(def.nodes.size()); ++n) {
    slot_of[def.NodeName(n)] = fact_count + n;
  }
  for (const std::string& expression : expressions) {
    std::unique_ptr<BoundExpression> bound = BoundExpression::Create(
        expression, slot_of, probe->state_->slots.data(), rule_set.word_codes_);
    if (bound == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot bind \"", expression, "\""));
    }
    probe->probes_.push_back(std::move(bound));
  }
  return probe;
}

RuleSet::Probe::Probe(const RuleSet& rule_set, std::unique_ptr<EvaluatorState> state)
    : rule_set_(rule_set), state_(std::move(state)) {}
RuleSet::Probe::~Probe() = default;

void RuleSet::Probe::Evaluate(const FactValues& facts, std::vector<double>* values) {
  const RuleSetDefinition& def = rule_set_.def_;
  const int fact_count = static_cast<int>(def.facts.size());
  double* slots = state_->slots.data();
  std::copy_n(facts.values.data(), fact_count, slots);
  for (int n : def.node_order) {
    bool not_finite = false;
    const double value = state_->programs[n]->Evaluate(&not_finite);
    slots[fact_count + n] = not_finite ? kUnknown : value;
  }
  values->clear();
  for (const auto& probe : probes_) {
    bool not_finite = false;
    const double value = probe->Evaluate(&not_finite);
    values->push_back(not_finite ? kUnknown : value);
  }
}

RuleSet::ThreadState::~ThreadState() = default;

RuleSet::ThreadState& RuleSet::ThisThreadState() {
  thread_local ThreadState thread_state;
  return thread_state;
}

std::unique_ptr<RuleSet::EvaluatorState> RuleSet::AcquireState() const {
  // The owner's address alone could be a new rule set's at a freed one's
  // address: its weak pointer tells the two apart.
  ThreadState& cached = ThisThreadState();
  if (cached.owner == this && cached.state != nullptr && !cached.owner_alive.expired()) {
    return std::move(cached.state);
  }
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
  ThreadState& cached = ThisThreadState();
  if (cached.owner != this || cached.owner_alive.expired()) {
    if (cached.state != nullptr) {
      if (std::shared_ptr<const RuleSet> other = cached.owner_alive.lock()) {
        other->ReturnToPool(std::move(cached.state));
      }
      cached.state.reset();
    }
    cached.owner = this;
    cached.owner_alive = weak_from_this();
  }
  if (cached.state != nullptr) {
    ReturnToPool(std::move(state));  // evaluations nested on one thread
    return;
  }
  cached.state = std::move(state);
}

void RuleSet::ReturnToPool(std::unique_ptr<EvaluatorState> state) const {
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

absl::Status RuleSet::CanDecide(EvaluationKind kind) const {
  if (!plans_[static_cast<int>(kind)].rules.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      protocol_id(), " version ", version(), " has no ",
      kind == EvaluationKind::kEligibility ? "inclusion or exclusion criteria"
                                           : absl::StrCat(EvaluationKindName(kind), " rules"),
      ": it cannot decide ", EvaluationKindName(kind)));
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
    for (int dep : def_.nodes[n].nodes) not_finite |= state->node_not_finite[dep];
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
