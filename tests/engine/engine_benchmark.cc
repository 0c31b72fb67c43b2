// Engine throughput on NCT04094766 eligibility (per-rule outcomes, missing
// facts, decision), beside a raw muparser loop over the same expressions
// (two-valued, no explanation) as the ceiling to compare with, and grading
// one adverse event with the bundled grading tables.
//   build/tests/engine_benchmark --benchmark_min_time=2
#include <muParser.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "client/population.h"
#include "service/engine/decision_table.h"
#include "service/engine/loader.h"
#include "service/engine/trial.h"
#include "service/util/dates.h"

namespace trialrules {
namespace {

constexpr int kPatients = 4096;

std::shared_ptr<const RuleSet> LoadV1() {
  static std::shared_ptr<const RuleSet> rule_set = [] {
    std::ifstream in(std::string(TRIALRULES_SOURCE_DIR) +
                     "/rules/NCT04094766-v1.0.textproto");
    std::stringstream text;
    text << in.rdbuf();
    return LoadRuleSet(text.str(), "NCT04094766-v1.0.textproto").rule_set;
  }();
  return rule_set;
}

std::vector<FactValues> Patients(double missing_fraction) {
  auto rule_set = LoadV1();
  std::vector<FactValues> bound;
  for (const auto& patient : SyntheticPopulation(
           *rule_set, EvaluationKind::kEligibility, kPatients, missing_fraction, 42)) {
    bound.push_back(*rule_set->BindFacts(patient));
  }
  return bound;
}

void BM_EngineEligibility(benchmark::State& state, double missing_fraction) {
  auto rule_set = LoadV1();
  const std::vector<FactValues> patients = Patients(missing_fraction);
  Evaluation evaluation;
  size_t i = 0;
  int64_t unknown = 0;
  for (auto _ : state) {
    rule_set->Evaluate(EvaluationKind::kEligibility, patients[i++ % kPatients],
                       &evaluation);
    unknown += evaluation.missing_facts.size();
    benchmark::DoNotOptimize(evaluation.decision);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["missing_facts_per_patient"] =
      static_cast<double>(unknown) / state.iterations();
}
BENCHMARK_CAPTURE(BM_EngineEligibility, all_facts, 0.0);
BENCHMARK_CAPTURE(BM_EngineEligibility, missing_20pct, 0.2);

// Includes checking and converting every fact from its name and value.
void BM_EngineEligibilityWithFactChecks(benchmark::State& state) {
  auto rule_set = LoadV1();
  const auto population = SyntheticPopulation(
      *rule_set, EvaluationKind::kEligibility, kPatients, 0.0, 42);
  Evaluation evaluation;
  size_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<FactValues> facts = rule_set->BindFacts(population[i++ % kPatients]);
    rule_set->Evaluate(EvaluationKind::kEligibility, *facts, &evaluation);
    benchmark::DoNotOptimize(evaluation.decision);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EngineEligibilityWithFactChecks);

// Grading one assessment as GradeEvents does: checking and converting its
// observations, every row, the hit policy. Compare with
// BM_EngineEligibilityWithFactChecks, one eligibility decision.
void BM_GradeWithObservationChecks(benchmark::State& state, const char* file,
                                   const char* term) {
  std::ifstream in(std::string(TRIALRULES_SOURCE_DIR) + "/rules/" + file);
  std::stringstream text;
  text << in.rdbuf();
  const TableLoadResult loaded = LoadDecisionTables(text.str(), file);
  if (loaded.tables == nullptr) {
    state.SkipWithError("the table file does not load");
    return;
  }
  const DecisionTable& table = **loaded.tables->Find(term);
  // Observations drawn over each input's range and words, none missing.
  auto population = SyntheticPopulation(*table.rules, EvaluationKind::kEligibility, kPatients,
                                        0.0, 42);
  size_t i = 0;
  int64_t unknown = 0;
  for (auto _ : state) {
    absl::StatusOr<TableResult> result =
        loaded.tables->Evaluate(table, population[i++ % kPatients]);
    unknown += !result.ok() || !result->output;
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["unknown_or_refused"] = static_cast<double>(unknown) / state.iterations();
}
BENCHMARK_CAPTURE(BM_GradeWithObservationChecks, crs, "astct-crs-2019-1.0.table.textproto",
                  "cytokine_release_syndrome");
BENCHMARK_CAPTURE(BM_GradeWithObservationChecks, icans, "astct-icans-2019-1.0.table.textproto",
                  "icans");
BENCHMARK_CAPTURE(BM_GradeWithObservationChecks, ctcae_bilirubin,
                  "ctcae-5.0-1.0.table.textproto", "blood_bilirubin_increased");

std::shared_ptr<const DecisionTableSet> LoadTables(const char* file) {
  std::ifstream in(std::string(TRIALRULES_SOURCE_DIR) + "/rules/" + file);
  std::stringstream text;
  text << in.rdbuf();
  return LoadDecisionTables(text.str(), file).tables;
}

void AddObservation(v1::AdverseEventRecord* event, const char* name, double number) {
  v1::FactValue* value = event->add_observations();
  value->set_name(name);
  value->set_number(number);
}

// A phase 1 trial's records: 60 patients over three dose levels, 10 events
// each: 3 CRS episodes graded from observations by astct-crs-2019, 2
// bilirubin results graded by ctcae-5.0, 5 events graded by the site; at
// the current dose DL2, 4 patients with a grade 3 ICANS ongoing on its
// second day, which 3+3 and the stopping rules enumerate (16 resolutions).
v1::TrialRecords SixtyPatientTrial() {
  v1::TrialRecords records;
  records.set_protocol_id("NCT04094766");
  records.set_as_of_date("2020-06-30");
  records.set_current_dose_level("DL2");
  const DayNumber as_of = *ParseIsoDate("2020-06-30");
  for (int p = 0; p < 60; ++p) {
    v1::PatientRecord* patient = records.add_patients();
    patient->set_subject_ref(absl::StrCat("P", p + 1));
    patient->set_dose_level(absl::StrCat("DL", p / 20 + 1));
    const DayNumber infusion = as_of - 40 - p;
    patient->set_infusion_date(FormatIsoDate(infusion));
    for (int e = 0; e < 10; ++e) {
      v1::AdverseEventRecord* event = patient->add_events();
      event->set_onset_date(FormatIsoDate(infusion + 1 + e));
      event->set_resolution_date(FormatIsoDate(infusion + 3 + e));
      event->set_attribution(e % 2 == 0 ? "possible" : "unlikely");
      if (e < 3) {
        event->set_term("cytokine_release_syndrome");
        AddObservation(event, "temp_c", 38.5 + 0.2 * e);
        event->add_observations()->set_name("fever_other_cause");
        event->mutable_observations()->rbegin()->set_boolean(false);
        event->add_observations()->set_name("crs_treated");
        event->mutable_observations()->rbegin()->set_boolean(false);
        event->add_observations()->set_name("hypotension");
        event->mutable_observations()->rbegin()->set_boolean(e == 2);
        AddObservation(event, "vasopressors", e == 2 ? 1 : 0);
        event->add_observations()->set_name("o2_device");
        event->mutable_observations()->rbegin()->set_text("none");
        event->add_observations()->set_name("crs_death");
        event->mutable_observations()->rbegin()->set_boolean(false);
      } else if (e < 5) {
        event->set_term("blood_bilirubin_increased");
        AddObservation(event, "value", 1.0 + 0.4 * e);
        AddObservation(event, "uln", 1.2);
        event->add_observations()->set_name("baseline_abnormal");
        event->mutable_observations()->rbegin()->set_boolean(false);
      } else {
        event->set_term(e % 2 == 0 ? "febrile_neutropenia" : "nausea");
        event->set_grade(e == 9 ? 3 : 2);
      }
    }
    if (p >= 20 && p < 24) {
      v1::AdverseEventRecord* icans = patient->mutable_events(9);
      icans->set_term("icans");
      icans->clear_observations();
      icans->set_grade(3);
      icans->clear_resolution_date();
      icans->set_attribution("probable");
      patient->set_infusion_date(FormatIsoDate(as_of - 21));
      for (int e = 0; e < 9; ++e) {
        patient->mutable_events(e)->set_onset_date(FormatIsoDate(as_of - 20 + e));
        patient->mutable_events(e)->set_resolution_date(FormatIsoDate(as_of - 18 + e));
      }
      icans->set_onset_date(FormatIsoDate(as_of - 1));
    }
  }
  return records;
}

// EvaluateTrial as the RPC runs it, without the transport: 60 patients of
// 10 events (360 graded by the tables), counts, 3+3 over the 16
// resolutions of 4 pending patients, the stopping rules. Target: under a
// millisecond on one core.
void BM_EvaluateTrialSixtyPatientsFourPending(benchmark::State& state) {
  const std::vector<std::shared_ptr<const DecisionTableSet>> tables = {
      LoadTables("astct-crs-2019-1.0.table.textproto"),
      LoadTables("astct-icans-2019-1.0.table.textproto"),
      LoadTables("ctcae-5.0-1.0.table.textproto")};
  const std::shared_ptr<const RuleSet> rules = LoadV1();
  const v1::TrialRecords records = SixtyPatientTrial();
  absl::StatusOr<v1::TrialEvaluation> check = EvaluateTrial(*rules, tables, records);
  if (!check.ok() || check->escalation().by_resolution_size() != 16) {
    state.SkipWithError(check.ok() ? "expected 4 pending patients" : check.status().ToString().c_str());
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<v1::TrialEvaluation> evaluation = EvaluateTrial(*rules, tables, records);
    benchmark::DoNotOptimize(evaluation);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["resolutions"] = check->escalation().by_resolution_size();
  state.counters["escalation_indeterminate"] = check->escalation().decision() == "INDETERMINATE";
}
BENCHMARK(BM_EvaluateTrialSixtyPatientsFourPending)->Unit(benchmark::kMicrosecond);

// The dearest grading: a CRS grade left open by missing observations, whose
// range is refined over 840 completions (3 truth values, 21 vasopressor
// counts, 5 oxygen flows).
void BM_GradeUnknownRefinedOverCompletions(benchmark::State& state) {
  std::ifstream in(std::string(TRIALRULES_SOURCE_DIR) + "/rules/astct-crs-2019-1.0.table.textproto");
  std::stringstream text;
  text << in.rdbuf();
  const TableLoadResult loaded = LoadDecisionTables(text.str(), "crs");
  const DecisionTable& table = loaded.tables->tables()[0];
  const std::vector<FactInput> observations = {
      {"temp_c", 39.0, ""}, {"fever_other_cause", false, ""}, {"o2_device", std::string("hfnc"), ""}};
  for (auto _ : state) {
    absl::StatusOr<TableResult> result = loaded.tables->Evaluate(table, observations);
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GradeUnknownRefinedOverCompletions);

double RawNot(double v) { return v == 0 ? 1 : 0; }
double RawIf(double c, double a, double b) { return c != 0 ? a : b; }

// muparser as it comes: built-in operators, one parser per expression bound
// to one array; derived value and rules evaluated in dependency order.
void BM_RawMuparserEligibility(benchmark::State& state) {
  auto rule_set = LoadV1();
  const std::vector<FactValues> patients = Patients(0.0);
  const RuleSetDefinition& def = rule_set->definition();
  std::vector<std::pair<std::string, std::string>> nodes;  // name, expression
  for (const DerivedSpec& d : def.derived) nodes.emplace_back(d.name, d.expression);
  std::vector<std::pair<std::string, std::string>> later;
  for (const RuleSpec& r : def.rules) {
    if (r.kind != RuleKind::kInclusion && r.kind != RuleKind::kExclusion) continue;
    const bool uses_rules = r.expression.find("I3") != std::string::npos;
    (uses_rules ? later : nodes).emplace_back(r.id, r.expression);
  }
  nodes.insert(nodes.end(), later.begin(), later.end());

  const size_t fact_count = def.facts.size();
  std::vector<double> slots(fact_count + nodes.size(), 0.0);
  std::vector<std::unique_ptr<mu::Parser>> parsers;
  for (const auto& [name, expression] : nodes) {
    auto parser = std::make_unique<mu::Parser>();
    parser->DefineInfixOprt("!", RawNot);
    parser->DefineFun("if", RawIf);
    for (size_t f = 0; f < fact_count; ++f) parser->DefineVar(def.facts[f].name, &slots[f]);
    for (size_t n = 0; n < nodes.size(); ++n) {
      parser->DefineVar(nodes[n].first, &slots[fact_count + n]);
    }
    parser->SetExpr(expression);
    parser->Eval();
    parsers.push_back(std::move(parser));
  }
  size_t i = 0;
  int eligible = 0;
  for (auto _ : state) {
    const FactValues& patient = patients[i++ % kPatients];
    std::copy(patient.values.begin(), patient.values.end(), slots.begin());
    bool all = true;
    for (size_t n = 0; n < parsers.size(); ++n) {
      const double value = parsers[n]->Eval();
      slots[fact_count + n] = value;
      all &= value != 0;
    }
    eligible += all;
  }
  benchmark::DoNotOptimize(eligible);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawMuparserEligibility);

}  // namespace
}  // namespace trialrules

BENCHMARK_MAIN();
