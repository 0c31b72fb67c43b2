// Runs one fuzz target's LLVMFuzzerTestOneInput, without libFuzzer, on every
// file of tests/fuzz/regressions/TARGET/ (inputs that once crashed it or
// broke an invariant) and of its seed corpus tests/fuzz/corpus/TARGET/: the
// normal build keeps every fixed finding fixed. A failure aborts the test
// binary; the test named after the file shows which input it was.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#if !defined(TRIALRULES_FUZZ_TARGET) || !defined(TRIALRULES_FUZZ_SUITE)
#error "TRIALRULES_FUZZ_TARGET (\"rule_file_fuzzer\") and TRIALRULES_FUZZ_SUITE (rule_file_fuzzer) must name the fuzz target"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace trialrules {
namespace {

namespace fs = std::filesystem;

struct Input {
  std::string name;  // e.g. regressions/crash-0123
  fs::path path;
};
void PrintTo(const Input& input, std::ostream* out) { *out << input.path.string(); }

std::vector<Input> Inputs() {
  std::vector<Input> inputs;
  for (const char* kind : {"regressions", "corpus"}) {
    const fs::path dir =
        fs::path(TRIALRULES_SOURCE_DIR) / "tests/fuzz" / kind / TRIALRULES_FUZZ_TARGET;
    if (!fs::is_directory(dir)) continue;
    std::vector<Input> found;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      found.push_back({std::string(kind) + "/" + entry.path().filename().string(),
                       entry.path()});
    }
    std::sort(found.begin(), found.end(),
              [](const Input& a, const Input& b) { return a.name < b.name; });
    inputs.insert(inputs.end(), found.begin(), found.end());
  }
  return inputs;
}

class FuzzRegressionTest : public ::testing::TestWithParam<Input> {};

TEST_P(FuzzRegressionTest, InputDoesNotCrash) {
  std::ifstream in(GetParam().path, std::ios::binary);
  ASSERT_TRUE(in) << GetParam().path;
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string data = bytes.str();
  EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()),
                                   data.size()),
            0);
}

std::string TestName(const ::testing::TestParamInfo<Input>& info) {
  std::string name = info.param.name;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// Test names: TARGET/FuzzRegressionTest.InputDoesNotCrash/corpus_FILE.
#define TRIALRULES_INSTANTIATE(target)                                                 \
  INSTANTIATE_TEST_SUITE_P(target, FuzzRegressionTest, ::testing::ValuesIn(Inputs()), \
                           TestName)
TRIALRULES_INSTANTIATE(TRIALRULES_FUZZ_SUITE);

}  // namespace
}  // namespace trialrules
