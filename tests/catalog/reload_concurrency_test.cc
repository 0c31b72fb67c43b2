// Reloads racing requests, in one process and without gRPC, so that
// ThreadSanitizer sees every access (scripts/test.sh runs it under TSan):
// a writer swaps a rules directory the ConfigMap way, alternating a new
// good version with a half-written file, reloads and publishes, while
// readers pin snapshots, select a version and evaluate. Every answer must
// come from a good version that was published while the reader ran.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/population.h"
#include "gtest/gtest.h"
#include "service/catalog/reload.h"
#include "service/metrics/service_metrics.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

namespace fs = std::filesystem;

// A directory as the kubelet mounts a ConfigMap: keys are symlinks into
// ..data, which is swapped atomically to a new timestamped directory.
class ConfigMapDir {
 public:
  explicit ConfigMapDir(fs::path root) : root_(std::move(root)) {
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~ConfigMapDir() { fs::remove_all(root_); }
  void Publish(const std::map<std::string, std::string>& files) {
    const fs::path data = root_ / absl::StrCat("..gen", ++generation_);
    fs::create_directories(data);
    for (const auto& [name, text] : files) std::ofstream(data / name) << text;
    const fs::path old = fs::exists(root_ / "..data") ? fs::read_symlink(root_ / "..data") : "";
    fs::create_symlink(data.filename(), root_ / "..data_tmp");
    fs::rename(root_ / "..data_tmp", root_ / "..data");
    for (const auto& [name, text] : files) {
      if (!fs::is_symlink(root_ / name)) fs::create_symlink(fs::path("..data") / name, root_ / name);
    }
    if (!old.empty()) fs::remove_all(root_ / old);
  }
  std::string path() const { return root_.string(); }

 private:
  fs::path root_;
  int generation_ = 0;
};

TEST(ReloadConcurrencyTest, ReadersNeverSeeAPartialOrBadCatalog) {
  const std::string v1 = testing::ReadFile(testing::SourcePath("rules/NCT04094766-v1.0.textproto"));
  const std::string v2 = testing::ReadFile(testing::SourcePath("rules/NCT04094766-v2.0.textproto"));
  ConfigMapDir dir(fs::temp_directory_path() /
                   ("trialrules-reload-race-" + std::to_string(getpid())));
  dir.Publish({{"a-v1.textproto", v1}});

  CatalogHolder holder;
  const auto zero = [] { return uint64_t{0}; };
  ServiceMetrics metrics({"/trialrules.v1.TrialRules/CheckEligibility"},
                         {zero, zero, zero, zero});
  const CatalogReload first = ReloadCatalog(dir.path(), nullptr);
  holder.Publish(first.catalog);
  metrics.RecordCatalog(*first.catalog);

  constexpr int kSwaps = 40;
  std::atomic<int> published{0};  // the last good amendment number published
  std::atomic<bool> done{false};
  std::atomic<int64_t> answers{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      auto rule_set = testing::LoadBundled("NCT04094766-v1.0.textproto");
      const auto population =
          SyntheticPopulation(*rule_set, EvaluationKind::kEligibility, 64, 0.1, r + 1);
      for (size_t i = 0; !done.load(); ++i) {
        const int floor = published.load();
        const std::shared_ptr<const Catalog> catalog = holder.Snapshot();
        // The newest amendment "1.N" in the snapshot (1.0 is N = 0).
        std::shared_ptr<const RuleSet> newest;
        int number = -1;
        for (const auto& candidate : catalog->rule_sets()) {
          const std::string& version = candidate->version();
          const int n = std::stoi(version.substr(version.find('.') + 1));
          if (n > number) {
            number = n;
            newest = candidate;
          }
        }
        // Only odd amendments were ever whole; none older than the last
        // one published before this snapshot was taken.
        if (number < floor || (number != 0 && number % 2 == 0) || number > kSwaps) ++wrong;
        absl::StatusOr<FactValues> facts = newest->BindFacts(population[i % population.size()]);
        if (!facts.ok()) {
          ++wrong;
          continue;
        }
        const Evaluation evaluation = newest->Evaluate(EvaluationKind::kEligibility, *facts);
        const Evaluation* evaluated = &evaluation;
        metrics.RecordDecisions(newest, {&evaluated, 1});
        ++answers;
      }
    });
  }
  std::shared_ptr<const Catalog> current = first.catalog;
  for (int swap = 1; swap <= kSwaps; ++swap) {
    std::map<std::string, std::string> files = {{"a-v1.textproto", v1}};
    const std::string version = absl::StrCat("1.", swap);
    const std::string text = absl::StrReplaceAll(v2, {{"version: \"2.0\"", "version: \"" + version + "\""}});
    // Odd swaps: a good new version; even swaps: that file half-written.
    files["b-amendment.textproto"] = swap % 2 == 1 ? text : text.substr(0, text.size() / 2);
    dir.Publish(files);
    CatalogReload reload = ReloadCatalog(dir.path(), current.get());
    current = reload.catalog;
    holder.Publish(current);
    metrics.RecordCatalog(*current);
    metrics.RecordReload(!current->refused().empty(), absl::Now());
    if (swap % 2 == 1) published.store(swap);
  }
  done.store(true);
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(answers.load(), 0);
}

}  // namespace
}  // namespace trialrules
