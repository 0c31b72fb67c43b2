#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure --no-tests=error -j "$jobs"

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, the
# in-process concurrency and reload tests under ThreadSanitizer.
bash scripts/sanitizers.sh

# Each libFuzzer target for a bounded time (FUZZ_SECONDS, default 30).
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
