#!/usr/bin/env bash
# Service and engine benchmark, one run. Every server is pinned to one core
# (SERVER_CPU, default 0) and the load generator to another (CLIENT_CPU,
# default 1), so the load generator's own CPU is never charged to a server:
#  1. CheckEligibility: trialrules against an empty handler on the same gRPC
#     stack (tests/bench/empty_server.cc), the same load alternating between
#     them in rounds; the ratio of their throughputs;
#     and against the same handler answering a fixed answer of trialrules'
#     size (--same-size-answer), which tells carrying the answer apart from
#     deciding it;
#  2. CheckEligibility latency with one call in flight;
#  3. ScreenPatients patients/s end to end;
#  4. the cost of metrics: a server with metrics against one without
#     (--metrics-address=), alternating;
#  5. the cost of the durable audit log: a server logging to a file (one
#     fdatasync per batch before the answers leave) against one logging to
#     /dev/null (written, never synced), alternating for CheckEligibility,
#     one after the other for ScreenPatients; and the unsynced server
#     against the empty handler, which tells the sync apart from the rest;
#  6. the cost of the signed audit log (Merkle tree, Ed25519 checkpoints):
#     a server with --audit-signing-key against the same without, both
#     logging to a synced file, alternating for CheckEligibility and in
#     alternating runs for ScreenPatients;
#  7. the engine against a raw muparser loop over the same expressions
#     (build/tests/engine_benchmark, pinned to SERVER_CPU);
#  8. FHIR Bulk Data screening: a seeded export of FHIR_PATIENTS patients
#     (default 20000; 20 resources, about 8.6 KB each, make_fhir_export)
#     screened end to end by `trialrules screen --fhir-ndjson --server` on
#     the synced server, and read to facts and screened in process on one
#     core (build/tests/fhir_benchmark, pinned to SERVER_CPU).
# Prints each result and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${SECONDS_PER_RUN:-10}"
# Alternating comparisons: ROUNDS rounds of ROUND_SECONDS per server.
rounds="${ROUNDS:-8}"
round_seconds="${ROUND_SECONDS:-2}"
server_cpu="${SERVER_CPU:-0}"
client_cpu="${CLIENT_CPU:-1}"
cmake --build build -j "$(nproc)" --target trialrules-server trialrules empty_server \
  engine_benchmark fhir_benchmark make_fhir_export >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# Servers are started with taskset directly (not through a function), so
# that the background job is the server itself and the trap ends it.
on_client() { taskset -c "$client_cpu" "$@"; }

taskset -c "$server_cpu" build/service/trialrules-server --listen=127.0.0.1:0 --plaintext \
  --port-file="$work/port" --metrics-address=127.0.0.1:0 --audit-log="$work/audit.jsonl" \
  --rules-dir=rules --drain-seconds=1 2>"$work/server.log" &
taskset -c "$server_cpu" build/service/trialrules-server --listen=127.0.0.1:0 --plaintext \
  --port-file="$work/port_nometrics" --metrics-address= \
  --audit-log="$work/audit_nometrics.jsonl" --rules-dir=rules --drain-seconds=1 \
  2>"$work/server_nometrics.log" &
taskset -c "$server_cpu" build/service/trialrules-server --listen=127.0.0.1:0 --plaintext \
  --port-file="$work/port_unsynced" --metrics-address=127.0.0.1:0 --audit-log=/dev/null \
  --rules-dir=rules --drain-seconds=1 2>"$work/server_unsynced.log" &
openssl genpkey -algorithm ed25519 -out "$work/audit-key.pem" 2>/dev/null
taskset -c "$server_cpu" build/service/trialrules-server --listen=127.0.0.1:0 --plaintext \
  --port-file="$work/port_signed" --metrics-address=127.0.0.1:0 \
  --audit-log="$work/audit_signed.jsonl" --audit-signing-key="$work/audit-key.pem" \
  --rules-dir=rules --drain-seconds=1 2>"$work/server_signed.log" &
taskset -c "$server_cpu" build/tests/empty_server 127.0.0.1:0 >"$work/empty_port" &
taskset -c "$server_cpu" build/tests/empty_server 127.0.0.1:0 --same-size-answer \
  >"$work/same_size_port" &
for _ in $(seq 100); do
  [ -s "$work/port" ] && [ -s "$work/port_nometrics" ] && [ -s "$work/port_unsynced" ] &&
    [ -s "$work/port_signed" ] &&
    [ -s "$work/empty_port" ] &&
    [ -s "$work/same_size_port" ] && break
  sleep 0.1
done
sleep 0.5
real="127.0.0.1:$(head -1 "$work/port")"
nometrics="127.0.0.1:$(head -1 "$work/port_nometrics")"
unsynced="127.0.0.1:$(head -1 "$work/port_unsynced")"
signed="127.0.0.1:$(head -1 "$work/port_signed")"
empty="127.0.0.1:$(head -1 "$work/empty_port")"
same_size="127.0.0.1:$(head -1 "$work/same_size_port")"

bench() {
  local out
  out=$(on_client build/client/trialrules bench "$@" 2>/dev/null)
  echo "$out" >&2
  echo "$out"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
compare_ratio() { sed -n 's/^COMPARE ratio=\([^ ]*\).*/\1/p'; }
# CheckEligibility, 64 in flight over 2 channels, alternating between
# servers $1 and $2: the throughput ratio $2 / $1.
alternate() {
  bench --seconds "$round_seconds" --rounds "$rounds" --in-flight 64 --channels 2 \
    --server "$1" --compare-server "$2" | compare_ratio
}
# ScreenPatients patients/s on server $1: 3 streams, 1000 patients per message.
screen_rate() {
  bench --seconds "$seconds" --server "$1" --method ScreenPatients --in-flight 3 \
    --channels 2 | grep '^RESULT' | field per_second
}

echo "== CheckEligibility, 64 in flight over 2 channels: empty handler vs trialrules, alternating" >&2
service_ratio=$(alternate "$empty" "$real")
echo "== CheckEligibility, 64 in flight: same-size answer without deciding vs trialrules" >&2
same_size_ratio=$(alternate "$same_size" "$real")
echo "== CheckEligibility, 1 in flight" >&2
p99=$(bench --seconds "$seconds" --server "$real" --in-flight 1 --channels 1 | grep '^RESULT' | field p99_ms)
echo "== ScreenPatients, 3 streams, 1000 patients per message" >&2
screen=$(screen_rate "$real")
echo "== CheckEligibility, metrics off vs on, alternating" >&2
metrics_ratio=$(alternate "$nometrics" "$real")
echo "== CheckEligibility, audit log on /dev/null (never synced) vs a file (synced), alternating" >&2
durable_ratio=$(alternate "$unsynced" "$real")
echo "== CheckEligibility, empty handler vs trialrules with its audit log on /dev/null" >&2
unsynced_ratio=$(alternate "$empty" "$unsynced")
echo "== ScreenPatients, audit log on /dev/null" >&2
screen_unsynced=$(screen_rate "$unsynced")
echo "== CheckEligibility, audit log unsigned vs signed (both synced files), alternating" >&2
signed_ratio=$(alternate "$real" "$signed")
echo "== ScreenPatients, unsigned vs signed audit log, alternating runs" >&2
screen_plain_runs=() screen_signed_runs=()
for _ in 1 2 3; do
  screen_plain_runs+=("$(SECONDS_PER_RUN=3 seconds=3 screen_rate "$real")")
  screen_signed_runs+=("$(SECONDS_PER_RUN=3 seconds=3 screen_rate "$signed")")
done
screen_signed_ratio=$(python3 -c '
import sys
half = (len(sys.argv) - 1) // 2
plain, signed = map(float, sys.argv[1:1 + half]), map(float, sys.argv[1 + half:])
print("%.3f" % (sum(signed) / sum(plain)))' "${screen_plain_runs[@]}" "${screen_signed_runs[@]}")
rm -f "$work"/audit*.jsonl*

echo "== engine vs raw muparser loop, repetitions interleaved at random, medians" >&2
taskset -c "$server_cpu" build/tests/engine_benchmark --benchmark_min_time=0.3 \
  --benchmark_repetitions=10 --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true --benchmark_format=json \
  --benchmark_filter='BM_EngineEligibility/all_facts|BM_RawMuparserEligibility' \
  2>/dev/null >"$work/engine.json"
engine_ratio=$(python3 -c '
import json, sys
medians = {b["run_name"]: b["items_per_second"] for b in json.load(open(sys.argv[1]))["benchmarks"]
           if b.get("aggregate_name") == "median"}
for name, value in sorted(medians.items()):
    print(f"{name}: median {value:,.0f} decisions/s", file=sys.stderr)
print("%.2f" % (medians["BM_EngineEligibility/all_facts"] / medians["BM_RawMuparserEligibility"]))
' "$work/engine.json")

echo "== FHIR Bulk Data export screened by the server, 3 streams of 150 patients per message" >&2
fhir_patients="${FHIR_PATIENTS:-20000}"
build/tests/make_fhir_export "$fhir_patients" 1 "$work/export"
fhir_runs=()
for _ in 1 2 3; do
  fhir_runs+=("$(on_client build/client/trialrules screen --server "$real" \
    --protocols NCT04094766 --fhir-ndjson "$work/export" --assessment-date 2020-01-15 --json \
    2>&1 >/dev/null | sed -n 's/.*(\([0-9]*\) patients\/s).*/\1/p')")
done
echo "runs: ${fhir_runs[*]} patients/s" >&2
rm -rf "$work/export" "$work"/audit*.jsonl*
echo "== FHIR Bulk Data NDJSON to facts, in process on one core" >&2
taskset -c "$server_cpu" build/tests/fhir_benchmark --benchmark_min_time=1 \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true --benchmark_format=json \
  2>/dev/null >"$work/fhir.json"
fhir_in_process=$(python3 -c '
import json, sys
medians = {b["run_name"]: b["items_per_second"] for b in json.load(open(sys.argv[1]))["benchmarks"]
           if b.get("aggregate_name") == "median"}
print(", ".join(f"{name} {value:,.0f} patients/s" for name, value in sorted(medians.items())))
' "$work/fhir.json")
echo "$fhir_in_process" >&2

echo
echo "CheckEligibility throughput, trialrules / empty handler (server on CPU $server_cpu," \
     "load on CPU $client_cpu): ${service_ratio}"
echo "CheckEligibility throughput, trialrules / a handler answering a same-size answer" \
     "without deciding: ${same_size_ratio}"
echo "CheckEligibility p99 with 1 call in flight: ${p99} ms"
echo "ScreenPatients: ${screen} patients/s"
echo "Metrics on / off CheckEligibility throughput: ${metrics_ratio}" \
     "(cost $(awk -v r="$metrics_ratio" 'BEGIN { printf "%.1f", (1 - r) * 100 }') %)"
echo "Durable (synced file) / unsynced (/dev/null) audit log, CheckEligibility throughput:" \
     "${durable_ratio}; ScreenPatients ${screen} vs ${screen_unsynced} patients/s"
echo "CheckEligibility throughput, trialrules with an unsynced audit log / empty handler:" \
     "${unsynced_ratio}"
echo "Signed / unsigned audit log: CheckEligibility throughput ${signed_ratio}," \
     "ScreenPatients ${screen_signed_ratio} (runs ${screen_plain_runs[*]} vs ${screen_signed_runs[*]} patients/s)"
echo "Engine / raw muparser loop, eligibility decisions per second: ${engine_ratio}"
echo "FHIR Bulk Data screening, ${fhir_patients} patients through trialrules screen --server:" \
     "${fhir_runs[*]} patients/s"
echo "FHIR Bulk Data in process (medians, one core): ${fhir_in_process}"
