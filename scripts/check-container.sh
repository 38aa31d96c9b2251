#!/usr/bin/env bash
# Checks the container recipe and the Kubernetes manifests without Docker or a cluster (CI runs it from
# scripts/test.sh; a few seconds):
#   scripts/check_container.py   Dockerfile stages, non-root USER, no remote ADD, .dockerignore; every shared
#                                library the built binaries load (ldd, dlopen, ffmpeg) comes with the runtime
#                                stage's Debian packages (dpkg -S, apt-cache depends); broken copies must fail
#   scripts/check_kubernetes.py  renders every kustomization in deploy/kubernetes (own renderer; kubectl
#                                kustomize too where installed: the same objects), kubernetes-validate --strict
#                                on every object, policy checks; broken manifests must fail
# Usage: scripts/check-container.sh [BIN_DIR]   (default: swift build --show-bin-path, else .build/debug)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${ROBOSIM_VENV:-$root/.venv}/bin/python
bin=${1:-}
if [ -z "$bin" ]; then
  bin=$(swift build --show-bin-path 2>/dev/null || echo "$root/.build/debug")
fi
status=0
"$python" scripts/check_container.py --quiet --bin "$bin" || status=1
"$python" scripts/check_kubernetes.py --bin "$bin" || status=1
exit $status
