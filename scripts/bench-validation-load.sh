#!/usr/bin/env bash
# CheckEligibility latency while worst-case ValidateRuleSet calls run, one
# run. The server is pinned to one core (SERVER_CPU, default 0) and every
# client to another (CLIENT_CPU, default 1), as in scripts/bench-service.sh:
#  1. generates a worst-case rule file (SHAPE, below) into a temporary
#     directory;
#  2. CheckEligibility with one call in flight for SECONDS_PER_RUN seconds
#     (default 20), nothing else running;
#  3. starts VALIDATORS (default 4) loops, each sending the file to
#     ValidateRuleSet (`trialrules check --server`) over and over, waits
#     SETTLE_SECONDS (default 2) and measures CheckEligibility again for
#     SECONDS_PER_RUN seconds while they run;
# and prints p50/p99 of both, and each validation: how long it took and how
# it ended, or how long it had been running when the measurement ended.
#
# Nothing is built: BUILD (default build, relative to the repository root or
# absolute) must hold service/trialrules-server and client/trialrules, e.g.
#   cmake --build build -j2 --target trialrules-server trialrules
#
# SHAPE:
#  limits (default): the slowest file found that uses only the engine's count
#    and size limits and ordinary operators. 1,000 facts; three derived sums
#    and their total, so that every rule depends on every fact; 500
#    withdrawal rules, each `t > i && (.5^.5^...^.5) >= 0` filled to the
#    byte budget (about 560 pow operators each); 5,000 test cases with no
#    facts. Every test case evaluates every rule, each UNKNOWN and listing
#    1,000 missing facts. Withdrawal rules have no coverage gate, so the file
#    is valid. Just under 1 MiB; about 40 s for `trialrules check` offline.
#  binom_cdf: the same, with each rule's pow chain replaced by as many
#    binom_cdf(5e8, 1e9, .5) calls as fit: n is beyond the function's
#    domain (at most 1e6, where a call takes microseconds), so each is not
#    a number and the file is checked quickly.
#  beta_cdf: the same as limits, with beta_cdf(0.5, 1e300, 1e300) in the
#    first rule: outside the domain in the same way (Boost's incomplete beta
#    would take about 35 s a call at a = b = 1e25 and not finish at 1e300).
# The server stops a validation when its client's deadline
# (VALIDATE_DEADLINE_MS, default 600000) or its own budget per call
# (--max-call-seconds, 30 s) passes.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD:-build}"
shape="${SHAPE:-limits}"
seconds="${SECONDS_PER_RUN:-20}"
settle="${SETTLE_SECONDS:-2}"
validators="${VALIDATORS:-4}"
validate_deadline_ms="${VALIDATE_DEADLINE_MS:-600000}"
server_cpu="${SERVER_CPU:-0}"
client_cpu="${CLIENT_CPU:-1}"
for binary in service/trialrules-server client/trialrules; do
  if [ ! -x "$build/$binary" ]; then
    echo "no $build/$binary: build it first (BUILD=$build)" >&2
    exit 2
  fi
done
case "$shape" in limits | binom_cdf | beta_cdf) ;; *)
  echo "SHAPE must be limits, binom_cdf or beta_cdf" >&2
  exit 2
  ;;
esac
work=$(mktemp -d)
# Whatever still runs 3 s after TERM is killed.
cleanup() {
  kill $(jobs -p) 2>/dev/null
  for _ in $(seq 30); do
    [ -z "$(jobs -pr)" ] && break
    sleep 0.1
  done
  kill -KILL $(jobs -pr) 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

on_client() { taskset -c "$client_cpu" "$@"; }

# ---------------------------------------------------------------- the file
rule_file="$work/worst-$shape.textproto"
python3 - "$shape" "$rule_file" <<'PY'
import sys

shape, out = sys.argv[1], sys.argv[2]
limit = 1 << 20          # kMaxRuleFileBytes (service/engine/parse.h)
facts, rules, tests = 1000, 500, 5000  # kMax{Facts,Rules,TestCases}PerFile
max_expression = 2000    # kMaxExpressionLength (service/engine/expression.h)

head = ['protocol_id:"WORST" version:"1" effective_from:"2020-01-01"\n']
names = ["f%d" % i for i in range(facts)]
# Enums by number (NUMBER = 1, WITHDRAWAL = 2): more bytes left for the rules.
head += ['facts{name:"%s" type:1}\n' % n for n in names]
# Sums of the facts, each within the expression length limit, and their total.
sums, current = [], ""
for n in names:
    if current and len(current) + 1 + len(n) > max_expression - 10:
        sums.append(current)
        current = n
    else:
        current = n if not current else current + "+" + n
sums.append(current)
for i, expression in enumerate(sums):
    head.append('derived_values{name:"s%d" expression:"%s"}\n' % (i, expression))
head.append('derived_values{name:"t" expression:"%s"}\n'
            % "+".join("s%d" % i for i in range(len(sums))))
tail = ['test_cases{name:"c%d" kind:2}\n' % i for i in range(tests)]
rule = 'withdrawal{id:"r%d" text:"x" expression:"%s"}\n'
prefixes = ["t>%d&&(" % i for i in range(rules)]
suffix = ")>=0"
fixed = sum(len(p) for p in head + tail) + sum(
    len(rule % (i, p + suffix)) for i, p in enumerate(prefixes))
# Characters left for each rule's filling, within the length limit.
room = min((limit - fixed - 256) // rules, max_expression - 16)
if shape == "binom_cdf":
    call = "binom_cdf(5e8,1e9,.5)"
    filling = "+".join([call] * ((room + 1) // (len(call) + 1)))
else:
    filling = "^".join([".5"] * ((room + 1) // 3))
body = []
for i, prefix in enumerate(prefixes):
    middle = filling
    if shape == "beta_cdf" and i == 0:
        middle = "beta_cdf(0.5,1e300,1e300)+" + filling[: room - 26].rstrip("^.")
    body.append(rule % (i, prefix + middle + suffix))
text = "".join(head + body + tail)
assert len(text) <= limit, len(text)
with open(out, "w") as f:
    f.write(text)
print("rule file: %s, %d bytes, %d facts, %d derived values, %d withdrawal rules "
      "(%d characters each), %d test cases"
      % (shape, len(text), facts, len(sums) + 1, rules, len(prefixes[-1] + filling + suffix),
         tests), file=sys.stderr)
PY

# -------------------------------------------------------------- the server
# Started with taskset directly (not through a function), so that the
# background job is the server itself and the trap ends it.
taskset -c "$server_cpu" "$build/service/trialrules-server" --listen=127.0.0.1:0 --plaintext \
  --port-file="$work/port" --metrics-address=127.0.0.1:0 --audit-log="$work/audit.jsonl" \
  --rules-dir=rules --drain-seconds=1 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do
  [ -s "$work/port" ] && break
  sleep 0.1
done
if [ ! -s "$work/port" ]; then
  echo "the server did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
sleep 0.5
server="127.0.0.1:$(head -1 "$work/port")"

bench() {
  local out
  out=$(on_client "$build/client/trialrules" bench --server "$server" --in-flight 1 \
    --channels 1 --seconds "$seconds" 2>/dev/null) || true
  echo "$out" >&2
  echo "$out" | grep '^RESULT' || echo "RESULT none"
}
# The server's CPU time so far (user + system), in seconds.
server_cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$server_pid/stat"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
now() { date +%s.%N; }

# One validator: ValidateRuleSet on the file, over and over. Each call's
# start, end, exit code and first line of output go to its log. TERM ends
# the call in progress too.
validate_loop() {
  local log="$1" child=""
  trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 0' TERM
  while true; do
    local start end rc=0
    start=$(now)
    on_client "$build/client/trialrules" check --quiet --server "$server" \
      --deadline-ms "$validate_deadline_ms" "$rule_file" >"$log.out" 2>&1 &
    child=$!
    wait "$child" || rc=$?
    child=""
    end=$(now)
    echo "$start $end $rc $(head -c 200 "$log.out" | head -1)" >>"$log"
  done
}

echo "== CheckEligibility, 1 in flight, no validation running" >&2
quiet=$(bench)

echo "== $validators ValidateRuleSet loops on the $shape file" >&2
loops_start=$(now)
cpu_start=$(server_cpu_seconds)
loop_pids=()
for v in $(seq "$validators"); do
  : >"$work/validator$v.log"
  validate_loop "$work/validator$v.log" &
  loop_pids+=($!)
done
sleep "$settle"
echo "== CheckEligibility, 1 in flight, while they run" >&2
loaded=$(bench)
loops_end=$(now)
cpu_end=$(server_cpu_seconds)
kill "${loop_pids[@]}" 2>/dev/null || true
wait "${loop_pids[@]}" 2>/dev/null || true

echo
echo "rule file: SHAPE=$shape, $(stat -c %s "$rule_file") bytes; server on CPU $server_cpu," \
     "clients on CPU $client_cpu; build $build"
for phase in quiet loaded; do
  result=${!phase}
  label="without validation"
  [ "$phase" = loaded ] && label="with $validators validations"
  echo "CheckEligibility, 1 in flight, $label: p50 $(echo "$result" | field p50_ms) ms," \
       "p99 $(echo "$result" | field p99_ms) ms, p99.9 $(echo "$result" | field p999_ms) ms," \
       "$(echo "$result" | field per_second) calls/s, errors $(echo "$result" | field errors)"
done
echo "server CPU from the validators' start to the end: $(awk -v a="$cpu_start" -v b="$cpu_end" \
  'BEGIN { printf "%.1f", b - a }') s in $(awk -v a="$loops_start" -v b="$loops_end" \
  'BEGIN { printf "%.1f", b - a }') s"
python3 - "$loops_start" "$loops_end" "$work"/validator*.log <<'PY'
import sys

start, end = float(sys.argv[1]), float(sys.argv[2])
done, running = [], []
for path in sys.argv[3:]:
    lines = [l.split(" ", 3) for l in open(path).read().splitlines() if l]
    for fields in lines:
        s, e, rc = float(fields[0]), float(fields[1]), int(fields[2])
        what = fields[3] if len(fields) > 3 else ""
        if e <= end + 0.05:
            done.append((e - s, rc, what))
    finished = [float(f[1]) for f in lines if float(f[1]) <= end + 0.05]
    if len(finished) == len(lines):  # a call was in progress at the end
        running.append(end - (finished[-1] if finished else start))
print("ValidateRuleSet: %d completed in %.1f s (%d ok, %d not ok), %d still running at the end"
      % (len(done), end - start, sum(1 for d in done if d[1] == 0),
         sum(1 for d in done if d[1] != 0), len(running)))
if done:
    times = sorted(d[0] for d in done)
    print("  per call: min %.2f s, median %.2f s, max %.2f s"
          % (times[0], times[len(times) // 2], times[-1]))
    errors = {}
    for _, rc, what in done:
        if rc != 0:
            errors[what] = errors.get(what, 0) + 1
    for what, count in errors.items():
        print("  %d x: %s" % (count, what[:160]))
if running:
    print("  running at the end, for: %s (cut off there)"
          % ", ".join("%.1f s" % r for r in running))
PY
