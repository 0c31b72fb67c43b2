// A rule file as the checker leaves it: every declaration, and what checking
// learned about each expression (its type and what it uses), so that the
// compiler binds without checking again.
#ifndef TRIALRULES_SERVICE_ENGINE_DEFINITION_H_
#define TRIALRULES_SERVICE_ENGINE_DEFINITION_H_

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "service/util/dates.h"
#include "service/engine/vocabulary.h"

namespace trialrules {

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
  bool informational = false;                  // reported, does not gate
  Decision action = Decision::kIndeterminate;  // escalation rules only
};

struct DoseLevelSpec {
  std::string id;
  double cells_per_kg = 0;
  std::string description;
};

// A checked expression: a derived value or a rule. Nodes are numbered
// derived values first (0..D-1), then rules (D..D+R-1).
struct NodeSpec {
  std::vector<int> facts;  // facts it uses directly (indices into facts)
  std::vector<int> nodes;  // nodes it uses directly
};

// Everything a rule file declares, checked: names resolved, types and units
// consistent, no cycles.
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
  // Per node (derived values, then rules), and the nodes in an order in
  // which every node comes after the nodes it uses.
  std::vector<NodeSpec> nodes;
  std::vector<int> node_order;

  const std::string& NodeName(int node) const {
    const int derived_count = static_cast<int>(derived.size());
    return node < derived_count ? derived[node].name : rules[node - derived_count].id;
  }
  const std::string& NodeExpression(int node) const {
    const int derived_count = static_cast<int>(derived.size());
    return node < derived_count ? derived[node].expression
                                : rules[node - derived_count].expression;
  }
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_DEFINITION_H_
