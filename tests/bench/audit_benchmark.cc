// The audit log's cost per decision, in pieces: canonical facts, their
// SHA-256, a decision id, one unary decision's line and one bulk-screening
// patient's share of a batch line. Every answered decision pays these before
// its answer leaves. Then the Merkle tree over the log: what the writer pays
// per record and what an auditor pays for a million records. Then RFC 8785
// canonical JSON of one record, what the writer and the verifier pay each.
//   build/tests/audit_benchmark --benchmark_min_time=1
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>
#include <sstream>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "client/population.h"
#include "service/audit/audit_log.h"
#include "service/audit/canonical_facts.h"
#include "service/audit/jcs.h"
#include "service/audit/log_audit.h"
#include "service/audit/merkle.h"
#include "service/engine/loader.h"
#include "service/util/sha256.h"

namespace trialrules {
namespace {

constexpr int kPatients = 1024;

struct Fixture {
  std::shared_ptr<const RuleSet> rule_set;
  std::vector<FactValues> facts;
  std::vector<Evaluation> evaluations;
};

const Fixture& Patients() {
  static const Fixture fixture = [] {
    std::ifstream in(std::string(TRIALRULES_SOURCE_DIR) + "/rules/NCT04094766-v1.0.textproto");
    std::stringstream text;
    text << in.rdbuf();
    Fixture f;
    f.rule_set = LoadRuleSet(text.str(), "NCT04094766-v1.0.textproto").rule_set;
    for (const auto& patient :
         SyntheticPopulation(*f.rule_set, EvaluationKind::kEligibility, kPatients, 0.2, 7)) {
      f.facts.push_back(*f.rule_set->BindFacts(patient));
      f.evaluations.emplace_back();
      f.rule_set->Evaluate(EvaluationKind::kEligibility, f.facts.back(), &f.evaluations.back());
    }
    return f;
  }();
  return fixture;
}

std::unique_ptr<AuditLog> DevNullLog() { return *AuditLog::Open("/dev/null", false); }

void BM_CanonicalFacts(benchmark::State& state) {
  const Fixture& f = Patients();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(CanonicalFacts(*f.rule_set, f.facts[i++ % kPatients]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CanonicalFacts);

void BM_Sha256OfCanonicalFacts(benchmark::State& state) {
  const Fixture& f = Patients();
  const std::string canonical = CanonicalFacts(*f.rule_set, f.facts[0]);
  for (auto _ : state) benchmark::DoNotOptimize(Sha256Hex(canonical));
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(canonical.size());
}
BENCHMARK(BM_Sha256OfCanonicalFacts);

void BM_NewDecisionId(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(NewDecisionId());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NewDecisionId);

// One CheckEligibility answer's record.
void BM_UnaryDecisionLine(benchmark::State& state) {
  const Fixture& f = Patients();
  const std::unique_ptr<AuditLog> log = DevNullLog();
  const std::string id = NewDecisionId();
  size_t i = 0;
  for (auto _ : state) {
    const size_t p = i++ % kPatients;
    benchmark::DoNotOptimize(log->FormatDecision({id, "CheckEligibility", f.rule_set.get(),
                                                  18276, "SUBJECT-0001", "SITE-01", "",
                                                  &f.evaluations[p], &f.facts[p]}));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UnaryDecisionLine);

// A ScreenPatients message of 1000 patients; items are patients.
void BM_ScreenBatchLine(benchmark::State& state) {
  const Fixture& f = Patients();
  const std::unique_ptr<AuditLog> log = DevNullLog();
  constexpr int kBatch = 1000;
  std::vector<std::string> ids;
  for (int p = 0; p < kBatch; ++p) ids.push_back(NewDecisionId());
  std::vector<DecisionRecord> records;
  for (int p = 0; p < kBatch; ++p) {
    records.push_back({ids[p], "ScreenPatients", f.rule_set.get(), 18276, "SUBJECT-0001",
                       "SITE-01", "", &f.evaluations[p], &f.facts[p]});
  }
  for (auto _ : state) benchmark::DoNotOptimize(log->FormatBatch(records));
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ScreenBatchLine);

std::vector<Hash> MillionLeafHashes() {
  std::vector<Hash> leaves;
  leaves.reserve(1 << 20);
  for (int i = 0; i < 1 << 20; ++i) leaves.push_back(LeafHash(std::to_string(i)));
  return leaves;
}

// The writer's share per record: one leaf into the frontier.
void BM_MerkleCompactAppend(benchmark::State& state) {
  CompactTree tree;
  const Hash leaf = LeafHash("record");
  for (auto _ : state) tree.Append(leaf);
  benchmark::DoNotOptimize(tree.Root());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MerkleCompactAppend);

// An auditor checking a published root against 2^20 records' leaf hashes;
// items are leaves.
void BM_MerkleRootOfMillion(benchmark::State& state) {
  const std::vector<Hash> leaves = MillionLeafHashes();
  for (auto _ : state) benchmark::DoNotOptimize(RootOf(leaves));
  state.SetItemsProcessed(state.iterations() * leaves.size());
}
BENCHMARK(BM_MerkleRootOfMillion)->Unit(benchmark::kMillisecond);

// Building every level of a 2^20-leaf tree once, for many proofs.
void BM_MerkleTreeBuildMillion(benchmark::State& state) {
  const std::vector<Hash> leaves = MillionLeafHashes();
  for (auto _ : state) benchmark::DoNotOptimize(MerkleTree(leaves).size());
  state.SetItemsProcessed(state.iterations() * leaves.size());
}
BENCHMARK(BM_MerkleTreeBuildMillion)->Unit(benchmark::kMillisecond);

// One inclusion proof from a built 2^20-leaf tree, for a size that is not a
// power of two, and its verification.
void BM_MerkleInclusionProveAndVerify(benchmark::State& state) {
  const std::vector<Hash> leaves = MillionLeafHashes();
  const MerkleTree tree(leaves);
  const uint64_t size = leaves.size() - 12345;
  const Hash root = *tree.Root(size);
  uint64_t index = 0;
  for (auto _ : state) {
    index = (index + 7919) % size;
    const std::vector<Hash> proof = *tree.InclusionProof(index, size);
    benchmark::DoNotOptimize(VerifyInclusion(leaves[index], index, size, proof, root));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MerkleInclusionProveAndVerify);

// A decision record of about 250 bytes in the order the log writes its
// fields, not yet canonical.
void BM_CanonicalJsonOfAuditRecord(benchmark::State& state) {
  const std::string record =
      R"({"decision_id":"0190f3c2-7d4e-7a1b-9c3d-5e6f7a8b9c0d",)"
      R"("time":"2024-07-01T12:00:00.123456Z","method":"CheckEligibility",)"
      R"("protocol_id":"NCT04094766","subject_ref":"SUBJECT-0001","decision":"ELIGIBLE",)"
      R"("rules":{"I1":"MET","I2":"MET","E1":"NOT_MET"},"egfr":62.5})";
  for (auto _ : state) benchmark::DoNotOptimize(CanonicalJson(record));
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(record.size());
}
BENCHMARK(BM_CanonicalJsonOfAuditRecord);

}  // namespace
// A signed log of a million CheckEligibility records (about 300 bytes each,
// written by the log itself, checkpoints every 1000), then `audit verify`'s
// work on it: parse and canonical check, chain, tree, every checkpoint.
void BM_VerifyMillionRecordLog(benchmark::State& state) {
  const Fixture& f = Patients();
  const std::string dir = "/tmp/trialrules-verify-bench-" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0700);
  std::array<uint8_t, 32> seed{};
  seed[0] = 1;
  AuditLogOptions options;
  options.path = dir + "/audit.jsonl";
  options.signer = std::make_shared<const NoteSigner>(*NoteSigner::FromSeed(seed, "bench/log"));
  options.origin = "bench/log";
  constexpr int kRecords = 1 << 20;
  {
    std::unique_ptr<AuditLog> log = *AuditLog::Open(options);
    std::atomic<int> pending{kRecords};
    const std::string id = NewDecisionId();
    for (int i = 0; i < kRecords; ++i) {
      const size_t p = i % kPatients;
      log->Append(log->FormatDecision({id, "CheckEligibility", f.rule_set.get(), 18276,
                                       "SUBJECT-0001", "SITE-01", "", &f.evaluations[p],
                                       &f.facts[p]}),
                  [&](absl::Status) { --pending; });
    }
    while (pending.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const NoteVerifier verifier = *NoteVerifier::FromVerifierKey(options.signer->VerifierKey());
  for (auto _ : state) {
    absl::StatusOr<LogVerification> result =
        VerifyLog(options.path, options.path + ".checkpoints", verifier);
    if (!result.ok() || !result->problems.empty() || result->records != kRecords) {
      state.SkipWithError("the log does not verify");
    }
  }
  state.SetItemsProcessed(state.iterations() * kRecords);
  (void)std::system(("rm -rf '" + dir + "'").c_str());
}
BENCHMARK(BM_VerifyMillionRecordLog)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace trialrules

BENCHMARK_MAIN();
