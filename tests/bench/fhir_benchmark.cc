// Bulk screening from FHIR Bulk Data NDJSON on one core: a seeded export of
// patients of 20 resources each (tests/fhir/ndjson_export.h) read into
// per-patient facts (FactsFromNdjson), then also bound and evaluated for
// eligibility, as an offline screen would. items_per_second is patients/s.
//   build/tests/fhir_benchmark --benchmark_min_time=2
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "service/engine/loader.h"
#include "service/engine/rule_set.h"
#include "service/fhir/ndjson.h"
#include "tests/fhir/ndjson_export.h"

namespace trialrules {
namespace {

constexpr int kPatients = 10000;

struct Fixture {
  std::shared_ptr<const RuleSet> rule_set;
  std::string text;
  BundleOptions options;
};

const Fixture& Export() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture;
    std::ifstream in(std::string(TRIALRULES_SOURCE_DIR) + "/rules/NCT04094766-v1.0.textproto");
    std::stringstream rules;
    rules << in.rdbuf();
    f->rule_set = LoadRuleSet(rules.str(), "NCT04094766-v1.0.textproto").rule_set;
    f->text = testing::ExportText(testing::SyntheticPatients(kPatients, 1));
    f->options.assessment_date = *ParseIsoDate("2020-01-15");
    return f;
  }();
  return *fixture;
}

void BM_FactsFromNdjson(benchmark::State& state) {
  const Fixture& f = Export();
  for (auto _ : state) {
    NdjsonFacts read = FactsFromNdjson(f.text, *f.rule_set, f.options);
    if (read.patients.size() != kPatients) state.SkipWithError("patients lost");
    benchmark::DoNotOptimize(read);
  }
  state.SetItemsProcessed(state.iterations() * kPatients);
  state.SetBytesProcessed(state.iterations() * f.text.size());
}
BENCHMARK(BM_FactsFromNdjson)->Unit(benchmark::kMillisecond);

void BM_ScreenNdjson(benchmark::State& state) {
  const Fixture& f = Export();
  Evaluation evaluation;
  int eligible = 0;
  for (auto _ : state) {
    NdjsonFacts read = FactsFromNdjson(f.text, *f.rule_set, f.options);
    for (const NdjsonPatient& patient : read.patients) {
      if (!patient.facts.ok()) continue;
      absl::StatusOr<FactValues> facts = f.rule_set->BindFacts(patient.facts->facts);
      if (!facts.ok()) continue;
      f.rule_set->Evaluate(EvaluationKind::kEligibility, *facts, &evaluation);
      eligible += evaluation.decision == Decision::kEligible;
    }
  }
  benchmark::DoNotOptimize(eligible);
  state.SetItemsProcessed(state.iterations() * kPatients);
}
BENCHMARK(BM_ScreenNdjson)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace trialrules

BENCHMARK_MAIN();
