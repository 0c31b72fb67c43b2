#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan, every
# library instrumented for coverage) in build-fuzz/, runs each for a bounded
# time on a copy of its seed corpus (tests/fuzz/corpus/TARGET) and its
# regression inputs (tests/fuzz/regressions/TARGET), and fails if any target
# found a crash, a leak, a timeout or ran out of memory.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
#
# Environment: FUZZ_TARGETS (default: all four), FUZZ_JOBS (build jobs,
# default 2), FUZZ_TIMEOUT (seconds per input, default 25), FUZZ_RSS_MB
# (default 2560), FUZZ_BUILD_DIR (default build-fuzz).
# Findings are left in build-fuzz/runs/latest/TARGET/artifacts/; reproduce
# one with `build-fuzz/tests/fuzz/TARGET FILE`, minimize it with
# `-minimize_crash=1 -runs=10000`, and commit it under
# tests/fuzz/regressions/TARGET/ (the normal build's TARGET_regression_test
# then runs it).
#
# Needs the Debian packages clang and libclang-rt-14-dev (libFuzzer and the
# sanitizer runtimes) besides scripts/install-deps.sh's; llvm-symbolizer
# (package llvm-14) for symbolized stacks. muparser is rebuilt from Debian's
# source with the same instrumentation by scripts/build-muparser.sh when that
# script is there (else Debian's uninstrumented libmuparser is linked: no
# coverage or ASan inside muparser).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi
targets=(${FUZZ_TARGETS:-rule_file_fuzzer expression_fuzzer request_fuzzer fhir_fuzzer})
jobs="${FUZZ_JOBS:-2}"
timeout="${FUZZ_TIMEOUT:-25}"
rss_mb="${FUZZ_RSS_MB:-2560}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"

missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  echo "fuzz.sh: missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi
if ! command -v llvm-symbolizer >/dev/null; then
  echo "fuzz.sh: no llvm-symbolizer (Debian package llvm-14): stacks will not be symbolized" >&2
fi

sanitize="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer"
muparser_args=()
if [ -f scripts/build-muparser.sh ]; then
  CXX=clang++ JOBS="$jobs" bash scripts/build-muparser.sh "$build/deps/muparser" "$sanitize -O1 -g"
  muparser_args=(-DTRIALRULES_MUPARSER_ROOT="$root/$build/deps/muparser")
fi

CC=clang CXX=clang++ cmake -S . -B "$build" -DTRIALRULES_BUILD_FUZZERS=ON \
  -DTRIALRULES_BUILD_TESTS=OFF -DTRIALRULES_BUILD_BENCHMARKS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  "${muparser_args[@]}" >/dev/null
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0}"

runs="$build/runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$runs"
ln -sfn "$(basename "$runs")" "$build/runs/latest"
failed=()
summary=()
for target in "${targets[@]}"; do
  dir="$runs/$target"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp tests/fuzz/corpus/"$target"/* "$dir/corpus/"
  if [ -d tests/fuzz/regressions/"$target" ]; then
    cp tests/fuzz/regressions/"$target"/* "$dir/corpus/" 2>/dev/null || true
  fi
  extra=()
  case "$target" in
    rule_file_fuzzer) extra=(-max_len=65536 -dict=tests/fuzz/rules.dict) ;;
    expression_fuzzer) extra=(-max_len=4096 -dict=tests/fuzz/rules.dict) ;;
    request_fuzzer) extra=(-max_len=16384) ;;
    fhir_fuzzer) extra=(-max_len=65536 -dict=tests/fuzz/fhir.dict) ;;
  esac
  echo "== $target: ${seconds}s (log: $dir/log)"
  status=0
  "$build/tests/fuzz/$target" -max_total_time="$seconds" -timeout="$timeout" \
    -rss_limit_mb="$rss_mb" -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
    "${extra[@]}" "$dir/corpus" >"$dir/log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)"
  last="$( (grep -E '^#[0-9]+' "$dir/log" || true) | tail -1 |
          sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [^ ]+).*/\1/')"
  found="$(ls "$dir/artifacts" | tr '\n' ' ')"
  line="$target: ${execs:-?} executions in ${seconds}s, ${last:-no coverage line}"
  if [ "$status" -ne 0 ] || [ -n "$found" ]; then
    line="$line: FAILED (exit $status) ${found}"
    failed+=("$target")
    grep -E -m1 -A25 'ERROR: |FUZZ_CHECK|runtime error' "$dir/log" || tail -n 40 "$dir/log"
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "fuzz summary ($runs):"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: findings in: ${failed[*]} (inputs in $runs/TARGET/artifacts/)" >&2
  exit 1
fi
