#!/usr/bin/env bash
# The README's run command: installs what is missing, builds the server and
# the CLI, and starts the service on the bundled rules (gRPC on
# localhost:50051, plaintext on loopback; metrics on localhost:9464). Ctrl-C
# (SIGINT) or SIGTERM drains and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target trialrules-server trialrules

listen="${TRIALRULES_LISTEN:-127.0.0.1:50051}"
cat <<MSG

trialrules: serving the bundled rules/ on ${listen} (plaintext)
  Prometheus metrics: http://${TRIALRULES_METRICS_ADDRESS:-127.0.0.1:9464}/metrics
  decision audit log: ${TRIALRULES_AUDIT_LOG:-trialrules-audit.jsonl}
Call it from another terminal, for example:
  build/client/trialrules eval --server ${listen} --protocol NCT04094766 \\
      --facts tests/data/facts/eligible_patient.json
  build/client/trialrules check --server ${listen} rules/
  build/client/trialrules bench --server ${listen} --seconds 5
Stop with Ctrl-C.

MSG
exec build/service/trialrules-server --listen="${listen}" --plaintext --rules-dir=rules "$@"
