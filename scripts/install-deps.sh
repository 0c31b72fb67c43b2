#!/usr/bin/env bash
# Installs the Debian packages trialrules needs, only those missing. Idempotent.
#   install-deps.sh              what building and testing need
#   install-deps.sh --build-only what building the server and CLI needs (the image)
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libmuparser-dev prometheus-cpp-dev libboost-dev libssl-dev libsimdjson-dev
)
if [ "${1:-}" != "--build-only" ]; then
  packages+=(
    libgtest-dev libgmock-dev libbenchmark-dev
    python3-grpcio python3-grpc-tools python3-yaml
    prometheus openssl
    clang libclang-rt-14-dev llvm-14 dpkg-dev
  )
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
