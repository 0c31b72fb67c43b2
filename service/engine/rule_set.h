// A compiled rule set: one version of one protocol's rules, ready to
// evaluate facts into a decision explained rule by rule.
//
// Phase 3 and 4 of the engine (parse → check → compile → evaluate): Create()
// binds a checked definition (check.h) to muparser programs; the RuleSet is
// then immutable, and evaluation state (programs bound to value slots) is
// per evaluation and pooled.
#ifndef TRIALRULES_SERVICE_ENGINE_RULE_SET_H_
#define TRIALRULES_SERVICE_ENGINE_RULE_SET_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/engine/definition.h"
#include "service/engine/keep_going.h"
#include "service/engine/facts.h"
#include "service/engine/vocabulary.h"

namespace trialrules {

class BoundExpression;

struct RuleResult {
  int rule = 0;  // index into RuleSet::rules()
  Outcome outcome = Outcome::kUnknown;
  // UNKNOWN because a computation had no finite value (division by zero,
  // a function outside its domain), not (only) because facts are missing.
  bool not_finite = false;
  std::vector<int> missing_facts;  // UNKNOWN only: indices into facts()
};

struct Evaluation {
  EvaluationKind kind = EvaluationKind::kEligibility;
  Decision decision = Decision::kIndeterminate;
  std::vector<RuleResult> rules;   // the kind's rules, in file order
  std::vector<int> missing_facts;  // union over UNKNOWN rules, sorted
};

// Thread-safe: any number of threads may call every const method at once.
class RuleSet : public std::enable_shared_from_this<RuleSet> {
 public:
  // `definition` must come from CheckRuleFile (names resolved, types
  // checked, nodes in dependency order). Fails only if an expression cannot
  // be bound, or with the status of `keep_going` (asked before each
  // expression is compiled) when it refuses.
  static absl::StatusOr<std::shared_ptr<const RuleSet>> Create(
      RuleSetDefinition definition, KeepGoing keep_going = AlwaysKeepGoing);
  ~RuleSet();

  const RuleSetDefinition& definition() const { return def_; }
  const std::string& protocol_id() const { return def_.protocol_id; }
  const std::string& version() const { return def_.version; }
  const std::string& sha256() const { return def_.sha256; }
  const std::vector<FactSpec>& facts() const { return def_.facts; }
  const std::vector<RuleSpec>& rules() const { return def_.rules; }
  // Fact indices sorted by name.
  const std::vector<int>& facts_by_name() const { return facts_by_name_; }
  // Rule indices sorted by id (the order of canonical JSON's members).
  const std::vector<int>& rules_by_id() const { return rules_by_id_; }
  // Facts that the rules of `kind` depend on, in declaration order.
  const std::vector<int>& FactsFor(EvaluationKind kind) const;
  // The rules `kind` evaluates (indices into rules()), in file order: the
  // order of Evaluation::rules.
  const std::vector<int>& RulesFor(EvaluationKind kind) const;

  // Index into facts(), or -1.
  int FindFact(absl::string_view name) const;

  // Whether a decision was answered under this rule set: until then a
  // changed file may replace it (a file completed after a partial copy);
  // after, the version is immutable. Set by whoever answers.
  void MarkServed() const {
    if (!served_.load(std::memory_order_relaxed)) served_.store(true, std::memory_order_relaxed);
  }
  bool served() const { return served_.load(std::memory_order_relaxed); }

  // --- Facts (facts.cc): a caller's values checked and converted. ---

  // Checks and converts a caller's facts. Refusals are InvalidArgument and
  // name the fact and the value. Unknown names are refused unless
  // `ignored_unknown` is given: then they are listed there.
  absl::StatusOr<FactValues> BindFacts(
      absl::Span<const FactInput> inputs,
      std::vector<std::string>* ignored_unknown = nullptr) const;
  // BindFacts for one fact, into `facts` (from EmptyFacts() or ResetFacts()):
  // callers that hold facts in another form bind them without copying.
  absl::Status BindFact(absl::string_view name, const FactValue& value,
                        absl::string_view unit, FactValues* facts,
                        std::vector<std::string>* ignored_unknown = nullptr) const;
  // Checks and converts one value for facts()[fact] into `facts` (bulk
  // callers resolve names once).
  absl::Status BindFactAt(int fact, const FactValue& value, absl::string_view unit,
                          FactValues* facts) const;
  // A date sent in `text`, or a word in `date`: FactValue (the engine's
  // input) holds both as a string, so the field the caller chose is checked
  // here against the fact's type. OK for names it does not declare (binding
  // refuses or ignores those).
  absl::Status CheckValueField(const v1::FactValue& fact) const;
  // Checks and converts one value for facts()[fact].
  absl::StatusOr<double> ConvertFact(int fact, const FactValue& value,
                                     absl::string_view unit) const;
  FactValues EmptyFacts() const;
  // Makes `facts` empty for this rule set, keeping its storage.
  void ResetFacts(FactValues* facts) const;

  // --- Evaluation. ---

  // OK when the rule set has rules that decide `kind`; else
  // FAILED_PRECONDITION naming the protocol, the version and the kind. With
  // no rules, Evaluate would still answer (CONTINUE, NOT_TRIGGERED), which
  // a caller would take for a decision.
  absl::Status CanDecide(EvaluationKind kind) const;

  // Per-evaluation state: muparser programs bound to slots (rule_set.cc).
  struct EvaluatorState;

  // Evaluates chosen expressions over facts, with every derived value and
  // rule of the rule set computed first, for rule authors' coverage
  // (self_test.cc), never for answers. Thread-compatible.
  class Probe {
   public:
    // `expressions` must have passed CheckExpression against this rule
    // set's names; InvalidArgument names one that cannot be bound.
    static absl::StatusOr<std::unique_ptr<Probe>> Create(const RuleSet& rule_set,
                                                         std::vector<std::string> expressions);
    ~Probe();
    // The value of each expression (NaN when unknown or not finite).
    void Evaluate(const FactValues& facts, std::vector<double>* values);

   private:
    Probe(const RuleSet& rule_set, std::unique_ptr<EvaluatorState> state);
    const RuleSet& rule_set_;
    std::unique_ptr<EvaluatorState> state_;
    std::vector<std::unique_ptr<BoundExpression>> probes_;
  };

  // Evaluates `facts` for `kind` into `out`, reusing its storage.
  void Evaluate(EvaluationKind kind, const FactValues& facts, Evaluation* out) const;
  Evaluation Evaluate(EvaluationKind kind, const FactValues& facts) const;

 private:
  struct Plan {
    std::vector<int> nodes;  // derived and rule nodes, dependency order
    std::vector<int> rules;  // the kind's rules, file order
    std::vector<int> facts;  // facts the kind depends on
  };

  // The evaluation state a thread used last, kept by that thread: taking
  // it back costs no lock. Another rule set's state goes back to its pool.
  struct ThreadState {
    const RuleSet* owner = nullptr;
    std::weak_ptr<const RuleSet> owner_alive;
    std::unique_ptr<EvaluatorState> state;
    ~ThreadState();
  };
  static ThreadState& ThisThreadState();

  explicit RuleSet(RuleSetDefinition definition);
  absl::StatusOr<std::unique_ptr<EvaluatorState>> NewEvaluatorState(
      KeepGoing keep_going = AlwaysKeepGoing) const;
  std::unique_ptr<EvaluatorState> AcquireState() const;
  void ReleaseState(std::unique_ptr<EvaluatorState> state) const;
  void ReturnToPool(std::unique_ptr<EvaluatorState> state) const;

  RuleSetDefinition def_;
  absl::flat_hash_map<std::string, int> fact_index_;
  std::vector<int> facts_by_name_;
  std::vector<int> rules_by_id_;
  // Node n (see NodeSpec) keeps its value in slot facts().size() + n.
  std::vector<std::vector<int>> node_fact_deps_;  // transitive fact deps
  std::vector<absl::flat_hash_map<std::string, int>> node_slots_;
  absl::flat_hash_map<std::string, double> word_codes_;  // words of TEXT facts
  Plan plans_[4];
  mutable std::atomic<bool> served_{false};

  // std::mutex rather than absl::Mutex: Debian's Abseil is not built with
  // ThreadSanitizer, which then cannot see absl::Mutex's ordering.
  mutable std::mutex pool_mutex_;
  mutable std::vector<std::unique_ptr<EvaluatorState>> pool_;  // by pool_mutex_
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_RULE_SET_H_
