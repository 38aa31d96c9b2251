#!/usr/bin/env bash
# Installs everything RoboSim needs on a fresh Debian 12 machine with Swift installed, and builds it.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--no-build]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

debs=(libmujoco-dev libzmq3-dev protobuf-compiler libosmesa6-dev libegl-dev libegl-mesa0 libgl1-mesa-dri ffmpeg python3-venv pkg-config)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Python venv for the Python client and the tests (pyzmq, protobuf, pytest, numpy, gymnasium...).
venv=${ROBOSIM_VENV:-$root/.venv}
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating Python venv at $venv" >&2
  python3 -m venv "$venv"
fi
stamp="$venv/.robosim-requirements"
if ! cmp -s python/requirements-dev.txt "$stamp" 2>/dev/null; then
  echo "setup: installing Python packages" >&2
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q -r python/requirements-dev.txt >&2
  "$venv/bin/pip" install -q -e python >&2
  cp python/requirements-dev.txt "$stamp"
fi

if [ "${1:-}" != "--no-build" ]; then
  echo "setup: building (swift build)" >&2
  swift build >&2
fi
echo "setup: ok" >&2
