#include "service/engine/decision_table.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <regex>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/engine/check.h"
#include "service/engine/parse.h"
#include "service/util/dates.h"
#include "service/util/number_text.h"

namespace trialrules {
namespace {

namespace pb = ::trialrules::v1;

// A UNIQUE table's rows are tried pairwise on at most this many
// combinations of candidate inputs when it is loaded.
constexpr int kMaxOverlapCandidates = 20000;
constexpr double kMaxOutput = 1e9;

std::optional<HitPolicy> HitPolicyOf(pb::HitPolicy policy) {
  switch (policy) {
    case pb::MAX: return HitPolicy::kMax;
    case pb::FIRST: return HitPolicy::kFirst;
    case pb::UNIQUE: return HitPolicy::kUnique;
    default: return std::nullopt;
  }
}

// Applies the hit policy to row outcomes. Over the rows that may hold
// (UNKNOWN), the possible outputs are those each completion of the missing
// inputs could give: for MAX, a holding row sets a floor and rows that may
// hold set the ceiling; for FIRST, the first holding row ends the rows that
// can still decide; for UNIQUE, the holding row decides (a second would be
// an error), else any row that may hold, or none.
void ApplyHitPolicy(const DecisionTable& table, TableResult* result) {
  std::vector<double> possible;
  std::vector<int> holding;
  std::vector<const RuleResult*> undecided;
  for (const RuleResult& row : result->rows) {
    if (row.outcome == Outcome::kTrue) {
      holding.push_back(row.rule);
      if (table.hit_policy == HitPolicy::kFirst) break;
    } else if (row.outcome == Outcome::kUnknown) {
      undecided.push_back(&row);
    }
  }
  // MAX: the highest holding row, or the default when none holds; a row
  // that may hold matters when it could raise that, or when none holds yet
  // (then it could be the only one, below the default as well).
  double floor = table.default_output;
  if (!holding.empty()) {
    floor = table.rows[holding[0]].output;
    for (int r : holding) floor = std::max(floor, table.rows[r].output);
  }
  auto may_change_max = [&](const RuleResult& row) {
    return holding.empty() || table.rows[row.rule].output > floor;
  };
  switch (table.hit_policy) {
    case HitPolicy::kMax:
      possible.push_back(floor);
      for (const RuleResult* row : undecided) {
        if (may_change_max(*row)) possible.push_back(table.rows[row->rule].output);
      }
      break;
    case HitPolicy::kFirst:
      possible.push_back(holding.empty() ? table.default_output : table.rows[holding[0]].output);
      for (const RuleResult* row : undecided) possible.push_back(table.rows[row->rule].output);
      break;
    case HitPolicy::kUnique:
      if (!holding.empty()) {
        possible.push_back(table.rows[holding[0]].output);
        undecided.clear();
      } else {
        possible.push_back(table.default_output);
        for (const RuleResult* row : undecided) possible.push_back(table.rows[row->rule].output);
      }
      break;
  }
  const auto [low, high] = std::minmax_element(possible.begin(), possible.end());
  result->min = *low;
  result->max = *high;
  if (result->min == result->max) {
    result->output = result->min;
    for (int r : holding) {
      if (table.rows[r].output == *result->output) result->deciding_rows.push_back(r);
    }
    return;
  }
  std::set<int> missing;
  for (const RuleResult* row : undecided) {
    if (table.hit_policy == HitPolicy::kMax && !may_change_max(*row)) continue;
    missing.insert(row->missing_facts.begin(), row->missing_facts.end());
    result->not_finite |= row->not_finite;
  }
  result->missing_inputs.assign(missing.begin(), missing.end());
}

// The numbers written in `text`, for the overlap search.
void CollectLiterals(absl::string_view text, std::set<double>* out) {
  for (size_t i = 0; i < text.size(); ++i) {
    const bool starts = (std::isdigit(static_cast<unsigned char>(text[i])) ||
                         (text[i] == '.' && i + 1 < text.size() &&
                          std::isdigit(static_cast<unsigned char>(text[i + 1])))) &&
                        (i == 0 || !(std::isalnum(static_cast<unsigned char>(text[i - 1])) ||
                                     text[i - 1] == '_' || text[i - 1] == '.'));
    if (!starts) continue;
    const std::string rest(text.substr(i, 64));
    char* end = nullptr;
    const double value = std::strtod(rest.c_str(), &end);
    if (end != rest.c_str()) {
      out->insert(value);
      i += end - rest.c_str() - 1;
    }
  }
}

// The numbers an input is compared with, when every use of it in
// `expressions` is a comparison with a number written there (`temp_c >=
// 38.0`, `6 < o2_flow_l_min`); none when it is used any other way (in
// arithmetic, against another input).
std::optional<std::set<double>> ComparedLiterals(const std::string& name,
                                                 const std::vector<std::string>& expressions) {
  static const std::regex kNumber(R"(^\s*(\d+(\.\d*)?([eE][+-]?\d+)?))");
  static const std::regex kOperator(R"(^\s*(<=|>=|==|!=|<|>))");
  auto is_name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  auto term_ends = [](absl::string_view rest) {  // nothing binds tighter after it
    const size_t next = rest.find_first_not_of(" \t\r\n");
    return next == absl::string_view::npos || absl::string_view(")&|,").find(rest[next]) !=
                                                  absl::string_view::npos;
  };
  auto term_starts = [](absl::string_view before) {  // nothing binds tighter before it
    const size_t last = before.find_last_not_of(" \t\r\n");
    return last == absl::string_view::npos || absl::string_view("(&|,").find(before[last]) !=
                                                  absl::string_view::npos;
  };
  std::set<double> literals;
  for (const std::string& expression : expressions) {
    for (size_t at = expression.find(name); at != std::string::npos;
         at = expression.find(name, at + 1)) {
      const size_t end = at + name.size();
      if ((at > 0 && is_name_char(expression[at - 1])) ||
          (end < expression.size() && is_name_char(expression[end]))) {
        continue;  // part of a longer name
      }
      const absl::string_view before(expression.data(), at);
      const std::string after = expression.substr(end);
      std::smatch op, number;
      // name OP number
      if (std::regex_search(after, op, kOperator) && term_starts(before)) {
        const std::string rest = op.suffix();
        if (std::regex_search(rest, number, kNumber) && term_ends(number.suffix().str())) {
          literals.insert(std::strtod(number[1].str().c_str(), nullptr));
          continue;
        }
      }
      // number OP name
      static const std::regex kNumberOperatorBefore(
          R"((^|[(&|,])\s*(\d+(\.\d*)?([eE][+-]?\d+)?)\s*(<=|>=|==|!=|<|>)\s*$)");
      std::cmatch match;
      if (std::regex_search(before.begin(), before.end(), match, kNumberOperatorBefore) &&
          term_ends(after)) {
        literals.insert(std::strtod(match[2].str().c_str(), nullptr));
        continue;
      }
      return std::nullopt;
    }
  }
  return literals;
}

// Values of an input that between them take every path through a table's
// rows, when there are few (at most kMaxCompletionValues): both truth
// values; every allowed word; every whole number of a small range; for a
// number only ever compared with numbers written in the table, each of
// them and a value either side (every interval between them is then tried).
// Empty otherwise.
constexpr size_t kMaxCompletionValues = 100;
std::vector<double> CompletionValues(const FactSpec& spec, const RuleSetDefinition& definition,
                                     const std::vector<std::string>& expressions) {
  std::vector<double> values;
  switch (spec.type) {
    case ValueType::kBool: return {0, 1};
    case ValueType::kText:
      for (const std::string& word : spec.allowed_values) {
        values.push_back(definition.WordCode(word));
      }
      return values;
    case ValueType::kDate: return {};
    case ValueType::kNumber: break;
  }
  if (spec.integer && std::isfinite(spec.min) && std::isfinite(spec.max) &&
      spec.max - spec.min < kMaxCompletionValues) {
    for (double v = std::ceil(spec.min); v <= spec.max; ++v) values.push_back(v);
    return values;
  }
  const std::optional<std::set<double>> literals = ComparedLiterals(spec.name, expressions);
  if (!literals || literals->size() * 4 + 2 > kMaxCompletionValues) return {};
  std::set<double> points;
  for (auto it = literals->begin(); it != literals->end(); ++it) {
    if (spec.integer) {
      // The whole numbers at and next to it: every interval between two
      // literals that holds a whole number gets one.
      for (double v : {std::floor(*it) - 1, std::floor(*it), std::ceil(*it), std::ceil(*it) + 1}) {
        points.insert(v);
      }
      continue;
    }
    // Either side, closer than any neighbour and far outside the decimal
    // tolerance of comparisons.
    double step = std::max(std::fabs(*it), 1.0) * 1e-6;
    if (auto next = std::next(it); next != literals->end()) step = std::min(step, (*next - *it) / 4);
    if (it != literals->begin()) step = std::min(step, (*it - *std::prev(it)) / 4);
    for (double v : {*it - step, *it, *it + step}) points.insert(v);
  }
  if (std::isfinite(spec.min)) points.insert(spec.min);
  if (std::isfinite(spec.max)) points.insert(spec.max);
  if (points.empty()) points.insert(0);
  for (double v : points) {
    if (v >= spec.min && v <= spec.max && (!spec.integer || v == std::floor(v))) {
      values.push_back(v);
    }
  }
  return values;
}

// An input's value as refusals and problems show it: "8 a", "true", "hfnc".
std::string DescribeInput(const RuleSet& rules, int input, double value) {
  const FactSpec& spec = rules.facts()[input];
  switch (spec.type) {
    case ValueType::kBool: return value != 0 ? "true" : "false";
    case ValueType::kText: return rules.definition().words[static_cast<size_t>(value) - 1];
    case ValueType::kDate: return FormatIsoDate(static_cast<DayNumber>(value));
    case ValueType::kNumber:
      return spec.unit.empty() ? ShortestNumber(value)
                               : absl::StrCat(ShortestNumber(value), " ", spec.unit);
  }
  return "?";
}

// Tries `fill` on each combination of `values` (one list per entry of
// `inputs`) set into `facts`; stops early when `fill` returns false.
// `fill` is given the index into each list of the combination it sees.
template <typename Fill>
void ForEachCombination(const std::vector<int>& inputs,
                        const std::vector<std::vector<double>>& values, FactValues* facts,
                        Fill fill) {
  std::vector<size_t> at(inputs.size(), 0);
  for (;;) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (values[i].empty()) continue;
      facts->values[inputs[i]] = values[i][at[i]];
      facts->present[inputs[i]] = 1;
    }
    if (!fill(at)) return;
    size_t i = 0;
    while (i < at.size() && (values[i].empty() || ++at[i] == values[i].size())) {
      if (!values[i].empty()) at[i] = 0;
      ++i;
    }
    if (i == at.size()) return;
  }
}

// Grades one complete set of inputs: none when the table refuses it or two
// rows of a UNIQUE table hold (neither is a grade those inputs could get).
std::optional<TableResult> GradeCompletion(const DecisionTable& table, const FactValues& facts) {
  Evaluation evaluation = table.rules->Evaluate(EvaluationKind::kEligibility, facts);
  TableResult result;
  int holding = 0;
  for (RuleResult& rule : evaluation.rules) {
    if (table.IsRefusal(rule.rule)) {
      if (rule.outcome == Outcome::kTrue) return std::nullopt;
      continue;
    }
    holding += rule.outcome == Outcome::kTrue;
    result.rows.push_back(std::move(rule));
  }
  if (table.hit_policy == HitPolicy::kUnique && holding > 1) return std::nullopt;
  ApplyHitPolicy(table, &result);
  return result;
}

// Row by row, an unknown output's range can be wider than the truth: rows
// for 0, 1 and 2 or more vasopressors each "may hold", yet one of them
// always does. So when the output is unknown, the missing inputs that have
// completion values are tried on every combination of them (at most
// kMaxCompletions), and the range is taken over those completions (each
// still three-valued in the other missing inputs). The result stays sound:
// never narrower than the truth.
constexpr double kMaxCompletions = 1024;
void RefineByCompletions(const DecisionTable& table, const FactValues& inputs,
                         TableResult* result) {
  std::vector<int> enumerated;
  std::vector<std::vector<double>> values;
  double combinations = 1;
  for (size_t f = 0; f < inputs.present.size(); ++f) {
    if (inputs.present[f]) continue;
    const std::vector<double>& domain = table.completion_values[f];
    if (domain.empty()) continue;
    combinations *= static_cast<double>(domain.size());
    enumerated.push_back(static_cast<int>(f));
    values.push_back(domain);
  }
  if (enumerated.empty() || combinations > kMaxCompletions) return;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // Per enumerated input, per value: the range of outputs with that value.
  std::vector<std::vector<std::pair<double, double>>> by_value;
  for (const auto& domain : values) by_value.emplace_back(domain.size(), std::pair{kInf, -kInf});
  double low = kInf, high = -kInf;
  std::set<int> deciding, other_missing;
  bool not_finite = false;
  FactValues completion = inputs;
  ForEachCombination(enumerated, values, &completion, [&](const std::vector<size_t>& at) {
    const std::optional<TableResult> graded = GradeCompletion(table, completion);
    if (!graded) return true;
    low = std::min(low, graded->min);
    high = std::max(high, graded->max);
    for (size_t i = 0; i < at.size(); ++i) {
      auto& [value_low, value_high] = by_value[i][at[i]];
      value_low = std::min(value_low, graded->min);
      value_high = std::max(value_high, graded->max);
    }
    deciding.insert(graded->deciding_rows.begin(), graded->deciding_rows.end());
    other_missing.insert(graded->missing_inputs.begin(), graded->missing_inputs.end());
    not_finite |= graded->not_finite;
    return true;
  });
  if (low > high) return;  // the table refuses every completion: keep the row-by-row range
  result->min = low;
  result->max = high;
  result->not_finite = not_finite;
  if (low == high) {
    result->output = low;
    result->deciding_rows.assign(deciding.begin(), deciding.end());
    result->missing_inputs.clear();
    return;
  }
  // An enumerated input decides something when its values lead to
  // different ranges.
  std::set<int> missing = std::move(other_missing);
  for (size_t i = 0; i < enumerated.size(); ++i) {
    std::set<std::pair<double, double>> ranges;
    for (const auto& range : by_value[i]) {
      if (range.first <= range.second) ranges.insert(range);
    }
    if (ranges.size() > 1) missing.insert(enumerated[i]);
  }
  result->missing_inputs.assign(missing.begin(), missing.end());
}

class TableLoader {
 public:
  TableLoader(const ParsedTableFile& parsed, TableLoadResult* result, KeepGoing keep_going)
      : parsed_(parsed), file_(parsed.file), result_(result), keep_going_(keep_going) {}

  void Load() {
    CheckHeader();
    std::vector<DecisionTable> tables;
    absl::flat_hash_set<std::string> terms;
    for (int t = 0; t < file_.tables_size(); ++t) {
      if (!keep_going_().ok()) return;
      const pb::DecisionTable& table = file_.tables(t);
      const ParseTree* tree = ParsedText::Nested(&parsed_.tree, file_, "tables", t);
      if (!IsIdentifier(table.term()) || !terms.insert(table.term()).second) {
        Report(ParsedText::Of(&parsed_.tree, file_, "tables", t), "",
               absl::StrCat("table term \"", table.term(),
                            "\" must be an identifier, unique in the file"));
        continue;
      }
      std::optional<DecisionTable> compiled = Compile(table, tree);
      if (compiled) tables.push_back(*std::move(compiled));
    }
    if (file_.tables_size() == 0) Report({1, 1}, "", "the file declares no tables");
    if (!result_->problems.empty() || !result_->stopped.ok()) return;
    set_ = std::make_shared<DecisionTableSet>(header_, std::move(tables));
    RunTestCases();
    if (!result_->problems.empty() || !result_->stopped.ok()) return;
    for (size_t t = 0; t < set_->tables().size(); ++t) {
      CheckRowsHold(static_cast<int>(t));
      if (set_->tables()[t].hit_policy == HitPolicy::kUnique) FindOverlaps(set_->tables()[t]);
    }
    if (result_->problems.empty() && result_->stopped.ok()) result_->tables = set_;
  }

 private:
  void Report(SourcePosition position, std::string id, std::string message) {
    result_->problems.push_back({parsed_.file_name, position.first, position.second,
                                 std::move(id), std::move(message)});
  }

  void CheckHeader() {
    header_ = {file_.table_id(), file_.version(),    file_.title(),   file_.reference(),
               file_.description(), parsed_.file_name, parsed_.sha256};
    for (auto [field, value] : {std::pair{"table_id", file_.table_id()},
                                std::pair{"version", file_.version()}}) {
      if (!IsLabel(value)) {
        Report(ParsedText::Of(&parsed_.tree, file_, field), "",
               absl::StrCat(field, " \"", value,
                            "\" must be 1-64 letters, digits, '.', '_' or '-'"));
      }
    }
  }

  std::optional<DecisionTable> Compile(const pb::DecisionTable& table, const ParseTree* tree) {
    const size_t problems_before = result_->problems.size();
    auto report = [&](absl::string_view field, int index, std::string message) {
      Report(ParsedText::Of(tree, table, field, index), "",
             absl::StrCat("table \"", table.term(), "\": ", message));
    };
    DecisionTable compiled;
    compiled.term = table.term();
    compiled.description = table.description();
    const std::optional<HitPolicy> policy = HitPolicyOf(table.hit_policy());
    if (!policy) report("term", -1, "hit_policy is required (MAX, FIRST or UNIQUE)");
    compiled.hit_policy = policy.value_or(HitPolicy::kMax);
    // Outputs are ordinal codes (grades): whole numbers, so that MAX orders
    // them and answers carry them exactly.
    auto whole = [](double v) { return std::fabs(v) <= kMaxOutput && v == std::floor(v); };
    if (!whole(table.default_output())) {
      report("default_output", -1, "outputs must be whole numbers (at most 1e9 in magnitude)");
    }
    compiled.default_output = table.default_output();
    if (table.rows().empty()) report("term", -1, "a table needs rows");
    for (int r = 0; r < table.rows_size(); ++r) {
      const pb::TableRow& row = table.rows(r);
      if (!whole(row.output())) {
        report("rows", r, absl::StrCat("row ", row.id(), ": outputs must be whole numbers ",
                                       "(at most 1e9 in magnitude)"));
      }
      compiled.rows.push_back({row.id(), row.domain(), row.output(), row.text(), row.note()});
    }
    Declarations declarations{&table, tree, &table.inputs(), &table.derived_values(), {}, 0,
                              "inputs", "the source's wording"};
    declarations.rule_lists.push_back(RuleList::Of("rows", RuleKind::kInclusion, table.rows()));
    declarations.rule_lists.push_back(
        RuleList::Of("refusals", RuleKind::kExclusion, table.refusals()));
    RuleSetDefinition definition;
    auto check_in = [&] {
      if (result_->stopped.ok()) result_->stopped = keep_going_();
      return result_->stopped;
    };
    if (!CheckDeclarations(parsed_, std::move(declarations), &definition, &result_->problems,
                           check_in) ||
        result_->problems.size() != problems_before) {
      return std::nullopt;
    }
    definition.protocol_id = file_.table_id();
    definition.version = file_.version();
    definition.title = file_.title();
    definition.value_noun = "observation";
    definition.subject_noun = absl::StrCat("term ", table.term(), " of table");
    for (int i = 0; i < table.required_size(); ++i) {
      const auto input = std::find_if(definition.facts.begin(), definition.facts.end(),
                                      [&](const FactSpec& f) {
                                        return f.name == table.required(i);
                                      });
      if (input == definition.facts.end()) {
        report("required", i, absl::StrCat("required \"", table.required(i), "\" is not an input"));
      } else {
        compiled.required.push_back(static_cast<int>(input - definition.facts.begin()));
      }
    }
    if (result_->problems.size() != problems_before) return std::nullopt;
    absl::StatusOr<std::shared_ptr<const RuleSet>> rules =
        RuleSet::Create(std::move(definition), check_in);
    if (!result_->stopped.ok()) return std::nullopt;
    if (!rules.ok()) {
      report("term", -1, std::string(rules.status().message()));
      return std::nullopt;
    }
    compiled.rules = *std::move(rules);
    std::vector<std::string> expressions;
    for (const RuleSpec& rule : compiled.rules->rules()) expressions.push_back(rule.expression);
    for (const DerivedSpec& derived : compiled.rules->definition().derived) {
      expressions.push_back(derived.expression);
    }
    for (const FactSpec& input : compiled.inputs()) {
      compiled.completion_values.push_back(
          CompletionValues(input, compiled.rules->definition(), expressions));
    }
    return compiled;
  }

  // A UNIQUE table whose two rows both hold on some inputs is refused: the
  // inputs each pair of rows uses are tried on every value of small
  // domains (truth values, words, small whole-number ranges) and on the
  // numbers the table writes (each, either side of it, and the range's
  // ends); a combination the table does not refuse and on which both hold
  // proves the overlap. A pair with too many combinations is reported as
  // not searched, never passed silently.
  void FindOverlaps(const DecisionTable& table) {
    const RuleSet& rules = *table.rules;
    const Evaluation unknown = rules.Evaluate(EvaluationKind::kEligibility, rules.EmptyFacts());
    std::set<double> literals;
    for (const RuleSpec& rule : rules.rules()) CollectLiterals(rule.expression, &literals);
    for (const DerivedSpec& derived : rules.definition().derived) {
      CollectLiterals(derived.expression, &literals);
    }
    auto candidates = [&](int input) {
      const FactSpec& spec = rules.facts()[input];
      std::vector<double> values = table.completion_values[input];
      if (!values.empty() || spec.type != ValueType::kNumber) return values;
      for (double c : literals) {
        const double step = std::max(std::fabs(c) * 1e-3, 1e-3);
        for (double v : {c - step, c, c + step}) {
          if (v >= spec.min && v <= spec.max && (!spec.integer || v == std::floor(v))) {
            values.push_back(v);
          }
        }
      }
      if (std::isfinite(spec.min)) values.push_back(spec.min);
      if (std::isfinite(spec.max)) values.push_back(spec.max);
      return values;
    };
    const int row_count = static_cast<int>(table.rows.size());
    std::vector<std::string> unsearched;
    for (int a = 0; a < row_count; ++a) {
      for (int b = a + 1; b < row_count; ++b) {
        if (!(result_->stopped = keep_going_()).ok()) return;
        std::set<int> used(unknown.rules[a].missing_facts.begin(),
                           unknown.rules[a].missing_facts.end());
        used.insert(unknown.rules[b].missing_facts.begin(), unknown.rules[b].missing_facts.end());
        const std::vector<int> inputs(used.begin(), used.end());
        std::vector<std::vector<double>> values;
        double combinations = 1;
        for (int input : inputs) {
          values.push_back(candidates(input));
          combinations *= std::max<size_t>(values.back().size(), 1);
        }
        if (combinations > kMaxOverlapCandidates) {
          unsearched.push_back(absl::StrCat(table.rows[a].id, "/", table.rows[b].id));
          continue;
        }
        FactValues facts = rules.EmptyFacts();
        bool found = false;
        ForEachCombination(inputs, values, &facts, [&](const std::vector<size_t>&) {
          const Evaluation evaluation = rules.Evaluate(EvaluationKind::kEligibility, facts);
          for (const RuleResult& result : evaluation.rules) {
            if (table.IsRefusal(result.rule) && result.outcome == Outcome::kTrue) return true;
          }
          found = evaluation.rules[a].outcome == Outcome::kTrue &&
                  evaluation.rules[b].outcome == Outcome::kTrue;
          return !found;
        });
        if (!found) continue;
        std::vector<std::string> witness;
        for (int input : inputs) {
          witness.push_back(absl::StrCat(rules.facts()[input].name, " = ",
                                         DescribeInput(rules, input, facts.values[input])));
        }
        Report(RowPosition(table, b), table.rows[b].id,
               absl::StrCat("table \"", table.term, "\" is UNIQUE, but rows ", table.rows[a].id,
                            " and ", table.rows[b].id, " both hold for ",
                            absl::StrJoin(witness, ", ")));
        return;
      }
    }
    if (!unsearched.empty()) {
      result_->notes.push_back(absl::StrCat(
          "table \"", table.term, "\": ", unsearched.size(),
          " pair(s) of rows use too many inputs to search for an overlap at load (",
          absl::StrJoin(unsearched, ", "), "); an overlap there shows at evaluation"));
    }
  }

  SourcePosition RowPosition(const DecisionTable& table, int row) const {
    for (int t = 0; t < file_.tables_size(); ++t) {
      if (file_.tables(t).term() != table.term) continue;
      const ParseTree* tree = ParsedText::Nested(&parsed_.tree, file_, "tables", t);
      return ParsedText::Of(tree, file_.tables(t), "rows", row);
    }
    return {0, 0};
  }

  // Every row must hold in a test case: a row no test reaches is a row
  // nobody has seen give its output (and a file cut short loses the test
  // cases at its end, so it fails here).
  void CheckRowsHold(int t) {
    const DecisionTable& table = set_->tables()[t];
    for (size_t r = 0; r < table.rows.size(); ++r) {
      if (result_->row_test_counts[t][r] > 0) continue;
      Report(RowPosition(table, static_cast<int>(r)), table.rows[r].id,
             absl::StrCat("table \"", table.term, "\": no test case makes row ",
                          table.rows[r].id, " hold; every row must hold in one"));
    }
  }

  void RunTestCases() {
    result_->row_test_counts.clear();
    for (const DecisionTable& table : set_->tables()) {
      result_->row_test_counts.emplace_back(table.rows.size(), 0);
    }
    std::set<std::string> names;
    for (int i = 0; i < file_.test_cases_size(); ++i) {
      if (!(result_->stopped = keep_going_()).ok()) return;
      const pb::TableTestCase& test = file_.test_cases(i);
      const auto position = ParsedText::Of(&parsed_.tree, file_, "test_cases", i);
      std::string failure;
      if (test.name().empty() || !names.insert(test.name()).second) {
        failure = "name is empty or repeated";
      } else {
        failure = RunTest(test);
      }
      if (!failure.empty()) {
        Report(position, "", absl::StrCat("test case \"", test.name(), "\": ", failure));
      }
      result_->tests.push_back({test.name(), failure.empty()});
    }
  }

  // What failed; empty when the test passes.
  std::string RunTest(const pb::TableTestCase& test) {
    absl::StatusOr<const DecisionTable*> table = set_->Find(test.term());
    if (!table.ok()) return std::string(table.status().message());
    std::vector<FactInput> observations;
    for (const pb::FactValue& value : test.observations()) {
      absl::StatusOr<FactInput> input = FactInputFromProto(value);
      if (!input.ok()) return std::string(input.status().message());
      if (absl::Status field = (*table)->rules->CheckValueField(value); !field.ok()) {
        if (!test.expect_refusal().empty() &&
            field.message().find(test.expect_refusal()) != absl::string_view::npos) {
          return "";
        }
        return std::string(field.message());
      }
      observations.push_back(*std::move(input));
    }
    absl::StatusOr<TableResult> result = set_->Evaluate(**table, observations);
    if (!test.expect_refusal().empty()) {
      if (result.ok()) {
        return absl::StrCat("expected a refusal containing \"", test.expect_refusal(),
                            "\", but the observations were accepted");
      }
      if (result.status().message().find(test.expect_refusal()) == std::string::npos) {
        return absl::StrCat("expected a refusal containing \"", test.expect_refusal(),
                            "\", got: ", result.status().message());
      }
      return "";
    }
    if (!result.ok()) return std::string(result.status().message());
    const int t = static_cast<int>(*table - set_->tables().data());
    for (const RuleResult& row : result->rows) {
      if (row.outcome == Outcome::kTrue) ++result_->row_test_counts[t][row.rule];
    }
    const std::string got = Describe(**table, *result);
    if (test.expect_output() == "UNKNOWN") {
      std::set<std::string> want(test.expect_missing().begin(), test.expect_missing().end());
      std::set<std::string> missing;
      for (int input : result->missing_inputs) missing.insert((*table)->inputs()[input].name);
      if (result->output || result->min != test.expect_min() ||
          result->max != test.expect_max() || missing != want) {
        return absl::StrCat("expected UNKNOWN ", ShortestNumber(test.expect_min()), "-",
                            ShortestNumber(test.expect_max()), " missing [",
                            absl::StrJoin(want, ", "), "], got ", got);
      }
    } else {
      double want = 0;
      if (!absl::SimpleAtod(test.expect_output(), &want)) {
        return absl::StrCat("expect_output \"", test.expect_output(),
                            "\" is neither a number nor UNKNOWN");
      }
      if (!result->output || *result->output != want) {
        return absl::StrCat("expected ", test.expect_output(), ", got ", got);
      }
    }
    if (test.check_domains() || !test.expect_domains().empty()) {
      const std::vector<std::string> domains = result->Domains(**table);
      const std::set<std::string> want(test.expect_domains().begin(), test.expect_domains().end());
      if (want != std::set<std::string>(domains.begin(), domains.end())) {
        return absl::StrCat("expected domains [", absl::StrJoin(want, ", "), "], got ", got);
      }
    }
    return "";
  }

  static std::string Describe(const DecisionTable& table, const TableResult& result) {
    std::vector<std::string> holding;
    for (const RuleResult& row : result.rows) {
      if (row.outcome == Outcome::kTrue) holding.push_back(table.rows[row.rule].id);
    }
    std::vector<std::string> missing;
    for (int input : result.missing_inputs) missing.push_back(table.inputs()[input].name);
    const std::string output =
        result.output ? ShortestNumber(*result.output)
                      : absl::StrCat("UNKNOWN ", ShortestNumber(result.min), "-",
                                     ShortestNumber(result.max), " missing [",
                                     absl::StrJoin(missing, ", "), "]");
    return absl::StrCat(output, " (rows holding: ",
                        holding.empty() ? "none" : absl::StrJoin(holding, ", "), "; domains: ",
                        absl::StrJoin(result.Domains(table), ", "), ")");
  }

  const ParsedTableFile& parsed_;
  const pb::DecisionTableFile& file_;
  TableLoadResult* result_;
  KeepGoing keep_going_;
  DecisionTableSet::Header header_;
  std::shared_ptr<DecisionTableSet> set_;
};

}  // namespace

absl::string_view HitPolicyName(HitPolicy policy) {
  switch (policy) {
    case HitPolicy::kMax: return "MAX";
    case HitPolicy::kFirst: return "FIRST";
    case HitPolicy::kUnique: return "UNIQUE";
  }
  return "?";
}

std::vector<std::string> TableResult::Domains(const DecisionTable& table) const {
  std::vector<std::string> domains;
  for (int r : deciding_rows) {
    const std::string& domain = table.rows[r].domain;
    if (!domain.empty() && std::find(domains.begin(), domains.end(), domain) == domains.end()) {
      domains.push_back(domain);
    }
  }
  return domains;
}

absl::StatusOr<const DecisionTable*> DecisionTableSet::Find(absl::string_view term) const {
  if (term.empty() && tables_.size() == 1) return &tables_[0];
  for (const DecisionTable& table : tables_) {
    if (table.term == term) return &table;
  }
  std::vector<std::string> terms;
  for (const DecisionTable& table : tables_) terms.push_back(table.term);
  const std::string where = absl::StrCat("table ", header_.table_id, " version ",
                                         header_.version, " (terms: ",
                                         absl::StrJoin(terms, ", "), ")");
  if (term.empty()) return absl::InvalidArgumentError("a term is required: " + where);
  return absl::NotFoundError(absl::StrCat("term \"", term, "\" is not graded by ", where));
}

absl::StatusOr<TableResult> DecisionTableSet::Evaluate(
    const DecisionTable& table, absl::Span<const FactInput> observations) const {
  const RuleSet& rules = *table.rules;
  absl::StatusOr<FactValues> inputs = rules.BindFacts(observations);
  if (!inputs.ok()) return inputs.status();
  for (int input : table.required) {
    if (!inputs->present[input]) {
      return absl::InvalidArgumentError(
          absl::StrCat("observation \"", table.inputs()[input].name, "\" is required by term ",
                       table.term, " of table ", header_.table_id));
    }
  }
  Evaluation evaluation = rules.Evaluate(EvaluationKind::kEligibility, *inputs);
  TableResult result;
  for (RuleResult& rule : evaluation.rules) {
    if (!table.IsRefusal(rule.rule)) {
      result.rows.push_back(std::move(rule));
      continue;
    }
    if (rule.outcome == Outcome::kFalse) continue;
    const RuleSpec& refusal = rules.rules()[rule.rule];
    if (rule.outcome == Outcome::kTrue) {
      std::vector<std::string> sent;
      const int node = static_cast<int>(rules.definition().derived.size()) + rule.rule;
      for (int f : rules.definition().nodes[node].facts) {
        sent.push_back(absl::StrCat("observation \"", table.inputs()[f].name, "\" = ",
                                    DescribeInput(rules, f, inputs->values[f])));
      }
      return absl::InvalidArgumentError(absl::StrCat(absl::StrJoin(sent, ", "), ": term ",
                                                     table.term, " of table ",
                                                     header_.table_id, ": ", refusal.text));
    }
    std::vector<std::string> names;
    for (int f : rule.missing_facts) names.push_back(table.inputs()[f].name);
    return absl::InvalidArgumentError(
        absl::StrCat("term ", table.term, " of table ", header_.table_id,
                     ": cannot tell whether it applies (", refusal.text,
                     "): send observation(s) ", absl::StrJoin(names, ", ")));
  }
  if (table.hit_policy == HitPolicy::kUnique) {
    std::vector<std::string> holding;
    for (const RuleResult& row : result.rows) {
      if (row.outcome == Outcome::kTrue) holding.push_back(table.rows[row.rule].id);
    }
    if (holding.size() > 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("term ", table.term, " of table ", header_.table_id, " version ",
                       header_.version, " is UNIQUE, but rows ", absl::StrJoin(holding, ", "),
                       " all hold for these observations"));
    }
  }
  ApplyHitPolicy(table, &result);
  if (!result.output) RefineByCompletions(table, *inputs, &result);
  result.inputs = *std::move(inputs);
  return result;
}

TableLoadResult LoadDecisionTables(absl::string_view text, absl::string_view file_name,
                                   KeepGoing keep_going) {
  TableLoadResult result;
  std::unique_ptr<ParsedTableFile> parsed = ParseTableFile(text, file_name, &result.problems);
  if (parsed == nullptr) return result;
  TableLoader(*parsed, &result, keep_going).Load();
  return result;
}

}  // namespace trialrules
