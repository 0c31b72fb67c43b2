#!/usr/bin/env bash
# Builds muparser from Debian's source package (the same source version as the
# installed libmuparser-dev, upstream 2.3.3, Debian's patches applied) with the
# given compiler flags, into OUT_DIR as a static library and its headers:
#   OUT_DIR/lib/libmuparser.a  OUT_DIR/include/muParser.h ...
# Point the project at it with -DTRIALRULES_MUPARSER_ROOT=OUT_DIR.
#
#   scripts/build-muparser.sh OUT_DIR "FLAGS"
#   e.g. scripts/build-muparser.sh build-deps/muparser-asan "-fsanitize=address -O1 -g"
#
# Why: Debian's libmuparser is built without sanitizers, so a memory error or a
# race inside muparser (the parsers bind raw pointers into our evaluation
# state) is invisible to ASan/TSan unless muparser itself is instrumented.
#
# Idempotent: does nothing when OUT_DIR already holds a build of the same
# source version with the same flags and compiler. The downloaded, unpacked
# source is kept under build-deps/src/ (ignored by git: build-*/).
# Adds a bookworm deb-src entry (/etc/apt/sources.list.d/trialrules-deb-src.sources)
# and runs apt-get update when no source index can be found; sudo when not root.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 OUT_DIR \"FLAGS\"" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
flags="$2"
upstream_version=2.3.3
cxx="${CXX:-c++}"

# The source version to build: the one the installed headers came from.
version="$(dpkg-query -W -f='${source:Version}' libmuparser-dev 2>/dev/null || true)"
if [ -z "$version" ]; then
  echo "build-muparser: libmuparser-dev is not installed (run scripts/install-deps.sh)" >&2
  exit 1
fi
case "$version" in
  "$upstream_version"-*) ;;
  *) echo "build-muparser: installed libmuparser-dev is $version, expected $upstream_version" >&2
     exit 1 ;;
esac

# One build per OUT_DIR at a time (the fuzzing and sanitizer scripts may run
# side by side).
exec 8>"$out/.lock"
flock 8

stamp="$out/.trialrules-muparser-build"
want="muparser $version | $("$cxx" --version | head -1) | $flags"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$out/lib/libmuparser.a" ] &&
   [ -f "$out/include/muParser.h" ]; then
  echo "build-muparser: $out is up to date ($flags)"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# 1. The source, once per version: build-deps/src/muparser-VERSION/.
cache="$root/build-deps/src"
src="$cache/muparser-$version"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -f "$src/.unpacked" ]; then
  command -v dpkg-source >/dev/null || {
    echo "build-muparser: installing dpkg-dev (for apt-get source)"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev
  }
  if ! apt-get source --print-uris "muparser=$version" >/dev/null 2>&1; then
    if ! grep -Rqs -e '^[[:space:]]*deb-src' -e '^Types:.*deb-src' \
         /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "build-muparser: adding a deb-src entry for bookworm"
      $sudo tee /etc/apt/sources.list.d/trialrules-deb-src.sources >/dev/null <<'EOF'
# Added by trialrules scripts/build-muparser.sh: Debian source packages, to
# build muparser with sanitizer flags (apt-get source muparser).
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    $sudo apt-get update -qq
  fi
  fetch="$cache/fetch"
  rm -rf "$fetch"
  mkdir -p "$fetch"
  # apt-get source as root warns that _apt cannot write here; harmless.
  (cd "$fetch" && apt-get source -qq "muparser=$version" 2>&1 |
     grep -v -e "unsandboxed as root" -e "^dpkg-source: info:" || true)
  unpacked="$(find "$fetch" -mindepth 1 -maxdepth 1 -type d -name "muparser-*" | head -1)"
  if [ -z "$unpacked" ] || [ ! -f "$unpacked/CMakeLists.txt" ]; then
    echo "build-muparser: apt-get source muparser=$version gave no source tree" >&2
    exit 1
  fi
  rm -rf "$src"
  mv "$unpacked" "$src"
  rm -rf "$fetch"
  touch "$src/.unpacked"
fi
flock -u 9

# 2. A static build with these flags only (build type None adds no -O/-g of
# its own). OpenMP off: trialrules never uses muparser's bulk mode, and an
# uninstrumented libgomp would only confuse TSan. Narrow chars, as Debian's.
work="$out/.build"
rm -rf "$work" "$out/lib" "$out/include" "$stamp"
echo "build-muparser: building muparser $version into $out ($flags)"
cmake -S "$src" -B "$work" -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$flags" \
  -DBUILD_SHARED_LIBS=OFF -DENABLE_OPENMP=OFF -DENABLE_SAMPLES=OFF -DENABLE_WIDE_CHAR=OFF \
  -DBUILD_TESTING=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DCMAKE_INSTALL_PREFIX="$out" -DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_INSTALL_INCLUDEDIR=include \
  >/dev/null
cmake --build "$work" -j "${JOBS:-$(nproc)}" >/dev/null
cmake --install "$work" >/dev/null
test -f "$out/lib/libmuparser.a"
test -f "$out/include/muParser.h"
rm -rf "$work"
echo "$want" >"$stamp"
echo "build-muparser: done: $out/lib/libmuparser.a"
