#!/usr/bin/env bash
# Makes the CURVE key pairs the manifests mount, in deploy/kubernetes/base/keys/ (git-ignored; the base's
# secretGenerator turns them into Secrets at `kubectl apply -k`): server (the sim-servers' own pair),
# client (the collect and train Jobs), probe (the servers' readiness and liveness probes). Existing pairs
# are kept (rotate: delete the files, run again, apply, restart the StatefulSet and the Jobs).
# simctl: $SIMCTL, else simctl on PATH, else this checkout's build (swift build --show-bin-path), else the
# image:  docker run --rm -u "$(id -u)" -v "$PWD/deploy/kubernetes/base/keys:/keys" --entrypoint simctl \
#           robosim:dev keys generate /keys/server    (and client, probe)
# Usage: deploy/kubernetes/make-keys.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
keys="$here/base/keys"
simctl=${SIMCTL:-}
if [ -z "$simctl" ]; then
  if command -v simctl > /dev/null; then simctl=simctl
  elif [ -x "$here/../../.build/debug/simctl" ]; then simctl="$here/../../.build/debug/simctl"
  else echo "make-keys: no simctl (set SIMCTL, or build: swift build)" >&2; exit 1
  fi
fi
mkdir -p "$keys"
umask 077
for name in server client probe; do
  if [ -e "$keys/$name.secret" ] && [ -e "$keys/$name.pub" ]; then
    echo "make-keys: $keys/$name.{pub,secret} exist; kept" >&2
  else
    rm -f "$keys/$name.secret" "$keys/$name.pub"
    "$simctl" keys generate "$keys/$name" >&2
  fi
done
echo "make-keys: keys in $keys (never commit them); next: kubectl apply -k $here/base" >&2
