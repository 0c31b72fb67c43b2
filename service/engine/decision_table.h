// Decision tables: one version of a set of tables (a grading system such as
// CTCAE v5.0), each mapping an assessment's observations to one output (a
// grade) by rows of three-valued conditions and a hit policy.
//
// A table is compiled as a rule set of its own: its inputs are the rule
// set's facts (types, units, ranges, allowed words: checked and converted
// as facts are), its rows and refusals the rule set's rules, so that every
// row's outcome and the inputs it misses come from the one evaluator. The
// hit policy then turns row outcomes into the output, or into the range of
// outputs the missing inputs leave open.
#ifndef TRIALRULES_SERVICE_ENGINE_DECISION_TABLE_H_
#define TRIALRULES_SERVICE_ENGINE_DECISION_TABLE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/engine/keep_going.h"
#include "service/engine/problem.h"
#include "service/engine/rule_set.h"
#include "service/engine/self_test.h"

namespace trialrules {

enum class HitPolicy : uint8_t { kMax, kFirst, kUnique };

// "MAX", "FIRST", "UNIQUE".
absl::string_view HitPolicyName(HitPolicy policy);

struct TableRowSpec {
  std::string id;
  std::string domain;
  double output = 0;
  std::string text;
  std::string note;
};

// One table, compiled. Its rule set's rules are the rows (rules 0..R-1, in
// file order) and then the refusals.
struct DecisionTable {
  std::string term;
  std::string description;
  HitPolicy hit_policy = HitPolicy::kMax;
  double default_output = 0;
  std::vector<TableRowSpec> rows;
  std::vector<int> required;  // indices into inputs (the rule set's facts)
  // Per input, values that between them take every path through the rows
  // (decision_table.cc, CompletionValues); empty when there are none few
  // enough. An unknown output is refined over these.
  std::vector<std::vector<double>> completion_values;
  std::shared_ptr<const RuleSet> rules;

  const std::vector<FactSpec>& inputs() const { return rules->facts(); }
  bool IsRefusal(int rule) const { return rule >= static_cast<int>(rows.size()); }
};

// What a table gives for one set of observations.
struct TableResult {
  std::optional<double> output;  // none: UNKNOWN
  double min = 0;                // the lowest and highest output the
  double max = 0;                // missing inputs leave possible
  std::vector<int> deciding_rows;  // rows that set the output (when known)
  std::vector<int> missing_inputs;  // sorted: inputs that could change it
  std::vector<RuleResult> rows;     // every row's outcome, in file order
  FactValues inputs;                // the observations as bound (canonical units)
  bool not_finite = false;          // a row had no finite value on known inputs

  // The distinct domains of the deciding rows, in row order.
  std::vector<std::string> Domains(const DecisionTable& table) const;
};

// One decision-table file, loaded. Immutable and thread-safe.
class DecisionTableSet {
 public:
  struct Header {
    std::string table_id;
    std::string version;
    std::string title;
    std::string reference;
    std::string description;
    std::string file_name;
    std::string sha256;  // hex, of the file's bytes
  };

  DecisionTableSet(Header header, std::vector<DecisionTable> tables)
      : header_(std::move(header)), tables_(std::move(tables)) {}

  const Header& header() const { return header_; }
  const std::string& table_id() const { return header_.table_id; }
  const std::string& version() const { return header_.version; }
  const std::string& sha256() const { return header_.sha256; }
  const std::vector<DecisionTable>& tables() const { return tables_; }

  // As RuleSet::MarkServed: once an answer was graded with this version,
  // other content under its id and version is refused.
  void MarkServed() const {
    if (!served_.load(std::memory_order_relaxed)) served_.store(true, std::memory_order_relaxed);
  }
  bool served() const { return served_.load(std::memory_order_relaxed); }

  // The table for `term`; "" names the only table of a one-table file.
  // NotFound (InvalidArgument when a term is needed and missing) names the
  // terms there are.
  absl::StatusOr<const DecisionTable*> Find(absl::string_view term) const;

  // Evaluates `table` (one of tables()) on `observations`. InvalidArgument
  // naming the observation for a value refused, an unknown name, a required
  // input left out, or a refusal of the table that holds; FailedPrecondition
  // when two rows of a UNIQUE table hold.
  absl::StatusOr<TableResult> Evaluate(const DecisionTable& table,
                                       absl::Span<const FactInput> observations) const;

 private:
  Header header_;
  std::vector<DecisionTable> tables_;
  mutable std::atomic<bool> served_{false};
};

struct TableLoadResult {
  // Null when there is any problem.
  std::shared_ptr<const DecisionTableSet> tables;
  std::vector<Problem> problems;
  std::vector<TestCaseResult> tests;
  // Per table, per row: how many test cases make the row hold.
  std::vector<std::vector<int>> row_test_counts;
  // What the load could not establish, for the author (not problems).
  std::vector<std::string> notes;
  absl::Status stopped;  // as LoadResult::stopped
};

// Parse → check → compile → self-test, as LoadRuleSet does for rule files.
// A file loads only when every test case passes and every row holds in at
// least one of them.
TableLoadResult LoadDecisionTables(absl::string_view text, absl::string_view file_name,
                                   KeepGoing keep_going = AlwaysKeepGoing);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_DECISION_TABLE_H_
