// A compiled rule set: one version of one protocol's rules, ready to
// evaluate facts into a decision explained rule by rule.
//
// Phases, as in cel-cpp: the loader (loader.h) parses and checks a rule file
// and builds a RuleSet, which is immutable; evaluation state (muparser
// parsers bound to value slots) is per evaluation and pooled.
#ifndef TRIALRULES_SERVICE_ENGINE_RULE_SET_H_
#define TRIALRULES_SERVICE_ENGINE_RULE_SET_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "service/engine/dates.h"
#include "service/engine/expression.h"

namespace trialrules {

enum class Outcome : uint8_t { kFalse, kTrue, kUnknown };
absl::string_view OutcomeName(Outcome outcome);

enum class RuleKind : uint8_t {
  kInclusion, kExclusion, kWithdrawal, kStopping, kEscalation
};
absl::string_view RuleKindName(RuleKind kind);

// What a caller asks about; each kind evaluates its own rules.
enum class EvaluationKind : uint8_t {
  kEligibility, kWithdrawal, kEscalation, kStopping
};
inline constexpr EvaluationKind kAllEvaluationKinds[] = {
    EvaluationKind::kEligibility, EvaluationKind::kWithdrawal,
    EvaluationKind::kEscalation, EvaluationKind::kStopping};
absl::string_view EvaluationKindName(EvaluationKind kind);  // "eligibility"
std::optional<EvaluationKind> ParseEvaluationKind(absl::string_view name);

enum class Decision : uint8_t {
  kIndeterminate,
  kEligible, kIneligible,        // eligibility
  kWithdraw, kContinue,          // withdrawal; kContinue also for escalation
  kEscalate, kExpand, kDeEscalate,  // escalation
  kTriggered, kNotTriggered,     // stopping
};
absl::string_view DecisionName(Decision decision);  // "ELIGIBLE"

struct FactSpec {
  std::string name;
  ValueType type = ValueType::kNumber;
  std::string unit;  // canonical unit of a number; may be empty
  struct AlternativeUnit {
    std::string unit;
    double per_canonical_unit;  // value in canonical = value / this
  };
  std::vector<AlternativeUnit> accepted_units;
  double min = -std::numeric_limits<double>::infinity();  // canonical unit
  double max = std::numeric_limits<double>::infinity();   // dates: day numbers
  bool integer = false;
  std::string description;
};

struct DerivedSpec {
  std::string name;
  std::string unit;
  std::string expression;
  std::string description;
  ValueType type = ValueType::kNumber;
};

struct RuleSpec {
  std::string id;
  RuleKind kind = RuleKind::kInclusion;
  std::string text;        // the protocol's wording
  std::string expression;  // muparser
  std::string note;
  bool informational = false;            // reported, does not gate
  Decision action = Decision::kIndeterminate;  // escalation rules only
};

struct DoseLevelSpec {
  std::string id;
  double cells_per_kg = 0;
  std::string description;
};

// One fact as a caller sends it. Numbers may carry a unit.
struct FactInput {
  std::string name;
  std::variant<double, bool, std::string> value;  // number, bool, ISO date
  std::string unit;
};

// Validated facts, indexed like RuleSet::facts(): canonical-unit numbers,
// 0/1 for bools, day numbers for dates; NaN where absent.
struct FactValues {
  std::vector<double> values;
  std::vector<uint8_t> present;
};

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

// Everything a rule file declares, checked (see loader.h).
struct RuleSetDefinition {
  std::string file_name;
  std::string sha256;  // hex, of the rule file's bytes
  std::string protocol_id;
  std::string version;
  DayNumber effective_from = 0;
  std::optional<DayNumber> effective_until;  // inclusive
  std::string title;
  std::string registry_reference;
  std::string description;
  bool illustrative = false;
  std::vector<FactSpec> facts;
  std::vector<DerivedSpec> derived;
  std::vector<RuleSpec> rules;  // every kind, in file order per kind
  std::vector<DoseLevelSpec> dose_levels;
};

// A number as canonical facts write it: std::to_chars's shortest form that
// reads back as the same double.
void AppendCanonicalNumber(double value, std::string* out);

// Thread-safe: any number of threads may call every const method at once.
class RuleSet {
 public:
  // `definition` must come from the loader (names resolved, types checked,
  // no cycles). Fails only if an expression cannot be bound.
  static absl::StatusOr<std::shared_ptr<const RuleSet>> Create(
      RuleSetDefinition definition);
  ~RuleSet();

  const RuleSetDefinition& definition() const { return def_; }
  const std::string& protocol_id() const { return def_.protocol_id; }
  const std::string& version() const { return def_.version; }
  const std::string& sha256() const { return def_.sha256; }
  const std::vector<FactSpec>& facts() const { return def_.facts; }
  const std::vector<RuleSpec>& rules() const { return def_.rules; }
  // Facts that the rules of `kind` depend on, in declaration order.
  const std::vector<int>& FactsFor(EvaluationKind kind) const;
  // The rules `kind` evaluates (indices into rules()), in file order: the
  // order of Evaluation::rules.
  const std::vector<int>& RulesFor(EvaluationKind kind) const;

  // Index into facts(), or -1.
  int FindFact(absl::string_view name) const;

  // Checks and converts a caller's facts. Refusals are InvalidArgument and
  // name the fact and the value. Unknown names are refused unless
  // `ignored_unknown` is given: then they are listed there.
  absl::StatusOr<FactValues> BindFacts(
      absl::Span<const FactInput> inputs,
      std::vector<std::string>* ignored_unknown = nullptr) const;
  // BindFacts for one fact, into `facts` (from EmptyFacts()): callers that
  // hold facts in another form bind them without copying.
  absl::Status BindFact(absl::string_view name,
                        const std::variant<double, bool, std::string>& value,
                        absl::string_view unit, FactValues* facts,
                        std::vector<std::string>* ignored_unknown = nullptr) const;
  // Checks and converts one value for facts()[fact] (bulk callers resolve
  // names once).
  absl::StatusOr<double> ConvertFact(
      int fact, const std::variant<double, bool, std::string>& value,
      absl::string_view unit) const;
  FactValues EmptyFacts() const;
  // The facts as one canonical JSON object: names sorted, values in
  // canonical units (shortest round-trip numbers), dates as YYYY-MM-DD,
  // missing facts left out. Equal facts give equal text, whatever units or
  // order they were sent in: its SHA-256 identifies a decision's inputs.
  std::string CanonicalFacts(const FactValues& facts) const;
  void AppendCanonicalFacts(const FactValues& facts, std::string* out) const;

  // Evaluates `facts` for `kind` into `out`, reusing its storage.
  void Evaluate(EvaluationKind kind, const FactValues& facts,
                Evaluation* out) const;
  Evaluation Evaluate(EvaluationKind kind, const FactValues& facts) const;

 private:
  struct EvaluatorState;
  struct Plan {
    std::vector<int> nodes;  // derived and rule nodes, dependency order
    std::vector<int> rules;  // the kind's rules, file order
    std::vector<int> facts;  // facts the kind depends on
  };

  explicit RuleSet(RuleSetDefinition definition);
  absl::StatusOr<std::unique_ptr<EvaluatorState>> NewEvaluatorState() const;
  std::unique_ptr<EvaluatorState> AcquireState() const;
  void ReleaseState(std::unique_ptr<EvaluatorState> state) const;

  RuleSetDefinition def_;
  absl::flat_hash_map<std::string, int> fact_index_;
  std::vector<int> facts_by_name_;  // fact indices sorted by name
  std::vector<std::string> canonical_keys_;  // per fact: "name":
  size_t canonical_max_length_ = 2;          // of AppendCanonicalFacts' text
  // Nodes are derived values (0..D-1) then rules (D..D+R-1); node n's value
  // lives in slot facts().size() + n.
  std::vector<std::vector<int>> node_deps_;        // direct node deps
  std::vector<std::vector<int>> node_fact_deps_;   // transitive fact deps
  std::vector<std::string> node_expression_;
  std::vector<absl::flat_hash_map<std::string, int>> node_slots_;
  Plan plans_[4];

  // std::mutex rather than absl::Mutex: Debian's Abseil is not built with
  // ThreadSanitizer, which then cannot see absl::Mutex's ordering.
  mutable std::mutex pool_mutex_;
  mutable std::vector<std::unique_ptr<EvaluatorState>> pool_;  // by pool_mutex_
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_RULE_SET_H_
