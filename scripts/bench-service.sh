#!/usr/bin/env bash
# Service benchmark, one run, same load for both servers:
#  1. CheckEligibility throughput of trialrules vs an empty handler on the
#     same gRPC stack (tests/bench/empty_server.cc);
#  2. CheckEligibility latency with one call in flight;
#  3. ScreenPatients patients/s end to end;
#  4. the cost of metrics: the same load alternating between a server with
#     metrics and one without (--metrics-address=), in one run.
# Prints each `trialrules bench` result and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${SECONDS_PER_RUN:-10}"
cmake --build build -j "$(nproc)" --target trialrules-server trialrules empty_server >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

build/service/trialrules-server --listen=127.0.0.1:0 --plaintext --port-file="$work/port" \
  --metrics-address=127.0.0.1:0 --audit-log="$work/audit.jsonl" --rules-dir=rules \
  2>"$work/server.log" &
build/service/trialrules-server --listen=127.0.0.1:0 --plaintext --port-file="$work/port_nometrics" \
  --metrics-address= --audit-log="$work/audit_nometrics.jsonl" --rules-dir=rules \
  2>"$work/server_nometrics.log" &
build/tests/empty_server 127.0.0.1:0 >"$work/empty_port" &
for _ in $(seq 100); do
  [ -s "$work/port" ] && [ -s "$work/port_nometrics" ] && [ -s "$work/empty_port" ] && break
  sleep 0.1
done
sleep 0.5
real="127.0.0.1:$(head -1 "$work/port")"
nometrics="127.0.0.1:$(head -1 "$work/port_nometrics")"
empty="127.0.0.1:$(head -1 "$work/empty_port")"

bench() { build/client/trialrules bench --seconds "$seconds" "$@" 2>/dev/null | tee /dev/stderr | grep '^RESULT'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

echo "== CheckEligibility, 32 in flight over 2 channels: empty handler" >&2
empty_qps=$(bench --server "$empty" --in-flight 32 --channels 2 | field per_second)
echo "== CheckEligibility, 32 in flight over 2 channels: trialrules" >&2
real_qps=$(bench --server "$real" --in-flight 32 --channels 2 | field per_second)
echo "== CheckEligibility, 1 in flight" >&2
p99=$(bench --server "$real" --in-flight 1 --channels 1 | field p99_ms)
echo "== ScreenPatients, 3 streams, 1000 patients per message" >&2
screen=$(bench --server "$real" --method ScreenPatients --in-flight 3 --channels 2 | field per_second)
echo "== CheckEligibility, metrics off vs on, alternating rounds" >&2
metrics_ratio=$(build/client/trialrules bench --seconds "$(awk -v s="$seconds" 'BEGIN { print s / 2 }')" \
  --rounds 4 --in-flight 32 --channels 2 --server "$nometrics" --compare-server "$real" \
  2>/dev/null | tee /dev/stderr | sed -n 's/^COMPARE ratio=\([^ ]*\).*/\1/p')
rm -f "$work"/audit*.jsonl

echo
echo "CheckEligibility: ${real_qps} calls/s; empty handler: ${empty_qps} calls/s;" \
     "ratio $(awk -v a="$real_qps" -v b="$empty_qps" 'BEGIN { printf "%.2f", a / b }')"
echo "CheckEligibility p99 with 1 call in flight: ${p99} ms"
echo "ScreenPatients: ${screen} patients/s"
echo "Metrics on / off CheckEligibility throughput: ${metrics_ratio}" \
     "(cost $(awk -v r="$metrics_ratio" 'BEGIN { printf "%.1f", (1 - r) * 100 }') %)"
