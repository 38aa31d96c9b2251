#!/usr/bin/env bash
# Installs everything RoboSim needs on a fresh Debian 12 machine with Swift installed, and builds it.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--no-build]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# chromium: the viewer page's test (python/tests/test_viewer_page.py) opens it headless; iproute2 (ss): the viewer test checks what listens.
debs=(libzmq3-dev protobuf-compiler libosmesa6-dev libegl-dev libegl-mesa0 libgl1-mesa-dri ffmpeg python3-venv pkg-config chromium iproute2 tcpdump)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
# Debian's MuJoCo (2.2.2) would collide with the 4.0.x library installed below: it must go.
if dpkg -s libmujoco-dev >/dev/null 2>&1 || dpkg -s libmujoco2.2.2 >/dev/null 2>&1; then
  echo "setup: removing Debian's MuJoCo 2.2.2 (libmujoco-dev)" >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get remove -y -qq libmujoco-dev 'libmujoco2*' >&2
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
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

# MuJoCo: the official release's C library and headers, as the PyPI wheel `mujoco-core` ships them
# (the version python/requirements-dev.txt pins), installed under /usr/local for the Swift build,
# the C references and the scene checks. One MuJoCo in the process: Python's module loads the same file.
mujoco_version=$(sed -n 's/^mujoco==\([0-9.]*\).*/\1/p' python/requirements-dev.txt)
mujoco_prefix=/usr/local  # Package.swift links from here
if [ ! -e "$mujoco_prefix/lib/libmujoco.so.$mujoco_version" ] || [ ! -L "$mujoco_prefix/lib/libmujoco.so" ] \
   || ! cmp -s "$("$venv/bin/python" -c 'import mujoco, os; print(os.path.dirname(mujoco.__file__))')/include/mujoco/mujoco.h" "$mujoco_prefix/include/mujoco/mujoco.h"; then
  echo "setup: installing MuJoCo $mujoco_version (C library and headers) under $mujoco_prefix" >&2
  wheel_dir=$("$venv/bin/python" -c 'import mujoco, os; print(os.path.dirname(mujoco.__file__))')
  $sudo_cmd mkdir -p "$mujoco_prefix/lib" "$mujoco_prefix/include"
  $sudo_cmd rm -rf "$mujoco_prefix/include/mujoco"
  $sudo_cmd cp -r "$wheel_dir/include/mujoco" "$mujoco_prefix/include/mujoco"
  $sudo_cmd install -m 0755 "$wheel_dir/libmujoco.so.$mujoco_version" "$mujoco_prefix/lib/"
  $sudo_cmd ln -sf "libmujoco.so.$mujoco_version" "$mujoco_prefix/lib/libmujoco.so"
  $sudo_cmd ldconfig
fi

if [ "${1:-}" != "--no-build" ]; then
  echo "setup: building (swift build)" >&2
  swift build >&2
fi
echo "setup: ok" >&2
