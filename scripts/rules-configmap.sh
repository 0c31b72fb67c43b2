#!/usr/bin/env bash
# Creates or updates the rules ConfigMap "trialrules-rules", which the
# Deployment of k8s/ mounts as its --rules-dir: one key per file of rules/,
# in the namespace the given overlay deploys to, with the labels the base
# puts on its objects. Run it before the first `kubectl apply -k`, and again
# for every amendment: the ConfigMap keeps its name, so the kubelet swaps the
# mounted files in place and the running pods reload them without a restart.
#
#   scripts/rules-configmap.sh [--print] [--rules DIR] OVERLAY [ARG...]
#
#   OVERLAY      dev, prod (k8s/overlays/NAME), or the path of an overlay
#                directory; the ConfigMap goes to the namespace its
#                kustomization sets
#   --print      write the ConfigMap as YAML to stdout, apply nothing
#   --rules DIR  the folder of rule files (default: rules/ of this repository)
#   ARG...       passed on to `kubectl apply` (--context=NAME, --dry-run=server)
#
# Applies server-side with the field manager "trialrules-rules", taking over
# fields another manager holds (rules/ is the source of truth): keys of
# files removed from rules/ are removed, and the whole content counts against
# the ConfigMap's 1 MiB only, not against the 256 KiB annotation limit of a
# client-side apply. KUBECTL names the kubectl binary (default: kubectl).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=trialrules-rules
kubectl=${KUBECTL:-kubectl}
rules=$here/rules
print=false

usage() { sed -n '9,16s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
die() { echo "rules-configmap.sh: $*" >&2; exit 2; }

while (($#)); do
  case $1 in
    --print) print=true; shift ;;
    --rules) (($# >= 2)) || die "--rules needs a directory"; rules=$2; shift 2 ;;
    --rules=*) rules=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) break ;;
  esac
done
(($# >= 1)) || { usage >&2; exit 2; }
overlay=$1
shift

case $overlay in
  */*) dir=$overlay ;;
  *) dir=$here/k8s/overlays/$overlay ;;
esac
kustomization=
for file in kustomization.yaml kustomization.yml Kustomization; do
  if [ -f "$dir/$file" ]; then kustomization=$dir/$file; break; fi
done
[ -n "$kustomization" ] || die "no overlay $overlay (no kustomization in $dir)"
namespace=$(sed -n -E \
  "s/^namespace:[[:space:]]*[\"']?([a-z0-9.-]+)[\"']?[[:space:]]*(#.*)?\$/\\1/p" \
  "$kustomization")
[ -n "$namespace" ] || die "$kustomization sets no namespace"

[ -d "$rules" ] || die "no rules directory $rules"
compgen -G "$rules/*" >/dev/null || die "$rules is empty"

yaml=$("$kubectl" create configmap "$name" --namespace="$namespace" \
         --from-file="$rules" --dry-run=client -o yaml \
       | "$kubectl" label --local -f - -o yaml \
         app.kubernetes.io/name=trialrules app.kubernetes.io/part-of=trialrules)

if $print; then
  printf '%s\n' "$yaml"
  exit 0
fi
printf '%s\n' "$yaml" \
  | "$kubectl" apply --server-side --field-manager=trialrules-rules --force-conflicts -f - "$@"
