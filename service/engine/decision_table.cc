#include "service/engine/decision_table.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/engine/check.h"
#include "service/engine/parse.h"
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
  double floor = table.default_output;
  switch (table.hit_policy) {
    case HitPolicy::kMax:
      for (int r : holding) floor = std::max(floor, table.rows[r].output);
      possible.push_back(floor);
      for (const RuleResult* row : undecided) {
        if (table.rows[row->rule].output > floor) possible.push_back(table.rows[row->rule].output);
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
    const double output = table.rows[row->rule].output;
    if (table.hit_policy == HitPolicy::kMax && output <= floor) continue;
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
      if (!IsIdentifierText(table.term()) || !terms.insert(table.term()).second) {
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

  static bool IsIdentifierText(absl::string_view name) {
    if (name.empty() || name.size() > 64 || !std::isalpha(static_cast<unsigned char>(name[0]))) {
      return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
  }
  static bool IsLabelText(absl::string_view text) {
    if (text.empty() || text.size() > 64 || !std::isalnum(static_cast<unsigned char>(text[0]))) {
      return false;
    }
    return std::all_of(text.begin(), text.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
  }

  void CheckHeader() {
    header_ = {file_.table_id(), file_.version(),    file_.title(),   file_.reference(),
               file_.description(), parsed_.file_name, parsed_.sha256};
    for (auto [field, value] : {std::pair{"table_id", file_.table_id()},
                                std::pair{"version", file_.version()}}) {
      if (!IsLabelText(value)) {
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
    return compiled;
  }

  // A UNIQUE table whose two rows both hold on some inputs is refused: the
  // inputs each pair of rows uses are tried on the numbers the table writes
  // (each, and either side of it), both truth values and every allowed
  // word; a combination that makes both hold proves the overlap.
  void FindOverlaps(const DecisionTable& table) {
    const RuleSet& rules = *table.rules;
    const FactValues none = rules.EmptyFacts();
    const Evaluation unknown = rules.Evaluate(EvaluationKind::kEligibility, none);
    std::set<double> literals;
    for (const RuleSpec& rule : rules.rules()) CollectLiterals(rule.expression, &literals);
    for (const DerivedSpec& derived : rules.definition().derived) {
      CollectLiterals(derived.expression, &literals);
    }
    auto candidates = [&](int input) {
      const FactSpec& spec = rules.facts()[input];
      std::vector<double> values;
      if (spec.type == ValueType::kBool) return std::vector<double>{0, 1};
      if (spec.type == ValueType::kText) {
        for (const std::string& word : spec.allowed_values) {
          values.push_back(rules.definition().WordCode(word));
        }
        return values;
      }
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
    for (int a = 0; a < row_count; ++a) {
      for (int b = a + 1; b < row_count; ++b) {
        std::set<int> used(unknown.rules[a].missing_facts.begin(),
                           unknown.rules[a].missing_facts.end());
        used.insert(unknown.rules[b].missing_facts.begin(), unknown.rules[b].missing_facts.end());
        std::vector<int> inputs(used.begin(), used.end());
        std::vector<std::vector<double>> values;
        double combinations = 1;
        for (int input : inputs) {
          values.push_back(candidates(input));
          combinations *= std::max<size_t>(values.back().size(), 1);
        }
        if (combinations > kMaxOverlapCandidates) continue;
        FactValues facts = rules.EmptyFacts();
        std::vector<size_t> at(inputs.size(), 0);
        for (;;) {
          for (size_t i = 0; i < inputs.size(); ++i) {
            if (values[i].empty()) continue;
            facts.values[inputs[i]] = values[i][at[i]];
            facts.present[inputs[i]] = 1;
          }
          const Evaluation evaluation = rules.Evaluate(EvaluationKind::kEligibility, facts);
          if (evaluation.rules[a].outcome == Outcome::kTrue &&
              evaluation.rules[b].outcome == Outcome::kTrue) {
            std::vector<std::string> witness;
            for (int input : inputs) {
              witness.push_back(absl::StrCat(rules.facts()[input].name, " = ",
                                             DescribeInput(rules, input, facts.values[input])));
            }
            Report(RowPosition(table, b), table.rows[b].id,
                   absl::StrCat("table \"", table.term, "\" is UNIQUE, but rows ",
                                table.rows[a].id, " and ", table.rows[b].id, " both hold for ",
                                absl::StrJoin(witness, ", ")));
            return;
          }
          size_t i = 0;
          while (i < at.size() && (values[i].empty() || ++at[i] == values[i].size())) {
            if (!values[i].empty()) at[i] = 0;
            ++i;
          }
          if (i == at.size()) break;
        }
      }
    }
  }

  static std::string DescribeInput(const RuleSet& rules, int input, double value) {
    const FactSpec& spec = rules.facts()[input];
    if (spec.type == ValueType::kBool) return value != 0 ? "true" : "false";
    if (spec.type == ValueType::kText) {
      return rules.definition().words[static_cast<size_t>(value) - 1];
    }
    return ShortestNumber(value);
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
  const std::string what = term.empty()
                               ? std::string("a term is required: ")
                               : absl::StrCat("term \"", term, "\" is not graded by ");
  return absl::NotFoundError(absl::StrCat(what, "table ", header_.table_id, " version ",
                                          header_.version, " (terms: ",
                                          absl::StrJoin(terms, ", "), ")"));
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
    std::vector<std::string> names;
    for (int f : rule.missing_facts) names.push_back(table.inputs()[f].name);
    return absl::InvalidArgumentError(
        rule.outcome == Outcome::kTrue
            ? absl::StrCat("term ", table.term, " of table ", header_.table_id, ": ",
                           refusal.text)
            : absl::StrCat("term ", table.term, " of table ", header_.table_id,
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
