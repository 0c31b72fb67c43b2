#!/usr/bin/env bash
# Lays out the runtime image's file tree in OUT: the server and the CLI in
# /usr/local/bin and every shared library they load that Debian's
# bookworm-slim lacks (it has glibc, libstdc++ and libgcc at the same
# versions), at their real /usr/lib paths; `ldconfig` in the image makes the
# soname links. Used by the Dockerfile and by tests/k8s/image_test.sh.
#   collect-runtime.sh SERVER_BINARY CLI_BINARY OUT
set -euo pipefail
server="$1" cli="$2" out="$3"
mkdir -p "$out/usr/local/bin"
cp "$server" "$out/usr/local/bin/trialrules-server"
cp "$cli" "$out/usr/local/bin/trialrules"
ldd "$out/usr/local/bin/trialrules-server" "$out/usr/local/bin/trialrules" \
  | awk '/=> \// { print $3 }' | xargs -n1 readlink -f | sort -u \
  | grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|ld-linux-x86-64)[.-]' \
  | xargs -I{} cp --parents {} "$out/"
