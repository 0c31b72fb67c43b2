#!/usr/bin/env bash
# The runtime image's file tree, without a Docker engine: what
# scripts/collect-runtime.sh lays out (as the Dockerfile does) plus the
# libraries bookworm-slim brings, run by chroot as uid 10001 on a read-only
# root file system, with flags like the image's CMD (audit log on standard
# output, as with k8s/components/audit-stdout; the manifests' default puts it
# on a volume, which deployment_run_test.py runs). It must start from nothing
# else, answer a real call and drain on SIGTERM. Needs root (mount, chroot):
# skipped (77) otherwise.
#   image_test.sh SERVER CLI SOURCE_DIR
set -euo pipefail
server="$1" cli="$2" source="$3"
if [ "$(id -u)" -ne 0 ]; then echo "needs root for mount and chroot"; exit 77; fi

root=$(mktemp -d /tmp/trialrules-image-XXXXXX)
work=$(mktemp -d /tmp/trialrules-image-work-XXXXXX)
cleanup() {
  [ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null || true
  umount "$root/proc" "$root/dev" "$root" 2>/dev/null || true
  rm -rf "$root" "$work"
}
trap cleanup EXIT

bash "$source/scripts/collect-runtime.sh" "$server" "$cli" "$root"
# What debian:bookworm-slim itself provides.
for lib in libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1 ld-linux-x86-64.so.2; do
  cp --parents "$(readlink -f "/lib/x86_64-linux-gnu/$lib")" "$root/"
done
mkdir -p "$root/lib64" "$root/etc/trialrules" "$root/dev" "$root/proc" "$root/tmp"
ln -s /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
ldconfig -r "$root"
cp -r "$source/rules" "$root/etc/trialrules/rules"
chmod 755 "$root"

mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount --bind /dev "$root/dev"
mount -t proc proc "$root/proc"
if touch "$root/usr/local/bin/probe" 2>/dev/null; then echo "root is writable"; exit 1; fi

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
chroot --userspec=10001:10001 "$root" /usr/local/bin/trialrules-server \
  --listen=127.0.0.1:"$port" --plaintext --metrics-address= \
  --rules-dir=/etc/trialrules/rules --audit-log=- --drain-seconds=5 \
  >"$work/stdout" 2>"$work/stderr" &
pid=$!
for _ in $(seq 100); do grep -q "rule sets loaded" "$work/stderr" && break; sleep 0.1; done

"$cli" eval --server 127.0.0.1:"$port" --protocol NCT04094766 \
  --facts "$source/tests/data/facts/eligible_patient.json" --json >"$work/answer"
grep -q '"decision":"ELIGIBLE"' "$work/answer" || { cat "$work/answer" "$work/stderr"; exit 1; }
# The binaries inside the tree run too (the CLI offline).
chroot --userspec=10001:10001 "$root" /usr/local/bin/trialrules check /etc/trialrules/rules \
  >"$work/check" 2>&1 || { cat "$work/check"; exit 1; }

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" -eq 0 ] || { echo "exit $status"; cat "$work/stderr"; exit 1; }
grep -q '"method":"CheckEligibility"' "$work/stdout" || { echo "no audit record on stdout"; cat "$work/stderr"; exit 1; }
echo "image tree: $(du -sh --exclude=proc --exclude=dev "$root" 2>/dev/null | cut -f1); served and drained as uid 10001 on a read-only root"
