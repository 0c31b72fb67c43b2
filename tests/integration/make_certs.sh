#!/usr/bin/env bash
# Test certificates for the TLS tests, made fresh in DIR (nothing secret is
# committed): two CAs; a server certificate for localhost/127.0.0.1 from
# each, and one from ca1 that expired yesterday; a client certificate from
# ca1 (trusted) and one from ca2 (not).
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=trialrules test $1" -keyout "$1.key" -out "$1.crt" 2>/dev/null
}
leaf() {  # name ca subject extensions [days valid, default 2]
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$3" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days "${5:-2}" \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca1
ca ca2
leaf server1 ca1 localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf server2 ca2 localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf expired ca1 localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth" -1
leaf client1 ca1 edc-system "extendedKeyUsage=clientAuth"
leaf client2 ca2 intruder "extendedKeyUsage=clientAuth"
