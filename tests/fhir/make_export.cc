// Writes a seeded synthetic FHIR Bulk Data export (ndjson_export.h) as a
// Bulk Data server does: DIR/Patient.ndjson and DIR/Observation.ndjson.
//
//   make_fhir_export PATIENTS SEED DIR
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "tests/fhir/ndjson_export.h"

int main(int argc, char** argv) {
  int count = 0;
  uint32_t seed = 0;
  if (argc != 4 || !absl::SimpleAtoi(argv[1], &count) || count < 0 ||
      !absl::SimpleAtoi(argv[2], &seed)) {
    std::cerr << "usage: make_fhir_export PATIENTS SEED DIR\n";
    return 2;
  }
  const std::filesystem::path dir = argv[3];
  std::filesystem::create_directories(dir);
  std::ofstream patients(dir / "Patient.ndjson"), observations(dir / "Observation.ndjson");
  // In slices, so that a large export needs little memory.
  constexpr int kSlice = 10000;
  for (int first = 0; first < count; first += kSlice) {
    const int n = std::min(kSlice, count - first);
    std::vector<trialrules::testing::PatientLines> slice =
        trialrules::testing::SyntheticPatients(n, seed + first / kSlice, first);
    for (const auto& lines : slice) {
      patients << lines[0] << "\n";
      for (size_t i = 1; i < lines.size(); ++i) observations << lines[i] << "\n";
    }
  }
  if (!patients.flush() || !observations.flush()) {
    std::cerr << "make_fhir_export: cannot write " << dir << "\n";
    return 1;
  }
  return 0;
}
