#!/usr/bin/env bash
# The test suite under sanitizers. Each build links a muparser built from the
# same Debian 2.3.3 sources with the same flags (scripts/build-muparser.sh),
# so that errors inside muparser are seen too.
#
#   scripts/sanitizers.sh [asan|tsan|all]     (default: all)
#
#  asan: AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer build
#        in build-asan, then the WHOLE ctest suite there: the integration and
#        Python tests run build-asan's own server and CLI (their paths are
#        generator expressions), so those processes are checked as well.
#  tsan: ThreadSanitizer build in build-tsan of the in-process tests only:
#        engine_rule_set_test (threads evaluating one rule set, each keeping
#        its evaluation state), catalog_reload_concurrency_test (reloads
#        racing readers), catalog_reload_test, audit_log_test (the synced
#        log's writer thread) and util_background_worker_test (the worker
#        that checks rule files callers send). Not the tests that run the
#        server or the CLI:
#        - Debian's gRPC, Abseil and protobuf are not TSan-instrumented (their
#          atomics and futexes are invisible to TSan): the server reports
#          races inside gRPC's event engine from its first second;
#        - protobuf 3.21's MapFieldBase gains two members when compiled with
#          -fsanitize=thread (map_field.h, __SANITIZE_THREAD__), so TSan code
#          and Debian's libprotobuf disagree on the layout of every map field:
#          google.protobuf.Struct (the facts-file reader, ParseFactsJson)
#          crashes in any TSan binary. A TSan test must not parse facts JSON.
#
# Any sanitizer report fails the run (halt_on_error, -fno-sanitize-recover);
# both parts run, and the script fails at the end if either failed.
# Builds are incremental; JOBS overrides the parallelism (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
part="${1:-all}"
case "$part" in asan|tsan|all) ;; *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;; esac
bash scripts/install-deps.sh
jobs="${JOBS:-$(nproc)}"
supp="$root/scripts/sanitizer-suppressions"
failed=()

elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
step() {  # step NAME COMMAND...: runs it, prints how long it took; its status
  local name="$1" start=$SECONDS status=0
  shift
  echo "== sanitizers: $name"
  "$@" || status=$?
  echo "== sanitizers: $name: $(elapsed $((SECONDS - start)))$([ $status -eq 0 ] || echo ", FAILED ($status)")"
  return $status
}

# build DIR FLAGS MUPARSER_DIR [cmake --build args]: muparser with FLAGS, then
# the project with FLAGS against it.
build() {
  local dir="$1" flags="$2" muparser="$3"
  shift 3
  bash scripts/build-muparser.sh "$muparser" "$flags" || return
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DTRIALRULES_BUILD_BENCHMARKS=OFF \
    -DCMAKE_CXX_FLAGS="$flags" -DTRIALRULES_MUPARSER_ROOT="$muparser" >/dev/null || return
  cmake --build "$dir" -j "$jobs" "$@"
}

asan() {
  local flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1 -g"
  # Leaks are checked in every process (test binaries, servers, CLIs); the
  # suppressions file holds third-party leaks only, each with its reason.
  # Set for the build too: gtest_discover_tests runs each test binary.
  local options="detect_leaks=1:check_initialization_order=1:strict_init_order=1:halt_on_error=1"
  export ASAN_OPTIONS="$options"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  step "asan+ubsan build (build-asan)" build build-asan "$flags" "$root/build-deps/muparser-asan" ||
    return
  # ASan and LSan reports of every process go to files: a server's stderr is
  # a test's temporary file and a CLI's exit code is not always checked, so a
  # report there would otherwise be lost. (UBSan's reports ignore log_path in
  # GCC 12: they go to stderr, and the process aborts.) Any report fails.
  local reports="$root/build-asan/sanitizer-reports" status=0
  rm -rf "$reports"
  mkdir -p "$reports"
  export ASAN_OPTIONS="$options:log_path=$reports/asan"
  step "asan+ubsan tests (build-asan)" \
    ctest --test-dir build-asan --output-on-failure --no-tests=error -j "$jobs" || status=$?
  if compgen -G "$reports/asan.*" >/dev/null; then
    echo "== sanitizers: AddressSanitizer/LeakSanitizer reports in $reports:"
    for report in "$reports"/asan.*; do
      echo "---- $report"
      cat "$report"
    done
    status=1
  fi
  return $status
}

tsan() {
  local flags="-fsanitize=thread -fno-omit-frame-pointer -O1 -g"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
  step "tsan build (build-tsan)" build build-tsan "$flags" "$root/build-deps/muparser-tsan" \
    --target engine_rule_set_test catalog_reload_concurrency_test catalog_reload_test \
    audit_log_test util_background_worker_test || return
  step "tsan tests (build-tsan)" \
    ctest --test-dir build-tsan --output-on-failure --no-tests=error -j "$jobs" \
      -R '^(ConcurrencyTest|ReloadConcurrencyTest|ReloadTest|SiteActivationTest|AuditLogTest|BackgroundWorkerTest)\.'
}

if [ "$part" = asan ] || [ "$part" = all ]; then
  (asan) || failed+=("asan+ubsan")
fi
if [ "$part" = tsan ] || [ "$part" = all ]; then
  (tsan) || failed+=("tsan")
fi
if ((${#failed[@]} > 0)); then
  echo "== sanitizers: FAILED: ${failed[*]}"
  exit 1
fi
echo "== sanitizers: no sanitizer reports"
