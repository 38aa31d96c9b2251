#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, builds, runs the Swift tests
# (Swift Testing, over real sockets and processes) and the Python tests (pytest, against the real
# sim-server and simctl binaries).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The SigV4 test compares with botocore (python/requirements-dev.txt); here its absence fails it.
export ROBOSIM_REQUIRE_BOTOCORE=1
# The Parquet tests read our files with pyarrow (python/requirements-dev.txt); likewise.
export ROBOSIM_REQUIRE_PYARROW=1
# The viewer page's test opens Debian's chromium (scripts/setup.sh installs it); likewise.
export ROBOSIM_REQUIRE_CHROMIUM=1
# The network-fault tests make network namespaces and TUN devices (root, iproute2); likewise.
export ROBOSIM_REQUIRE_NETNS=1

scripts/setup.sh --no-build
echo "test: scenes (MuJoCo 4.0 loads and steps every scene)" >&2
scripts/check-scenes.sh >&2
echo "test: swift build" >&2
swift build 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write|Linking|Applying)' >&2
echo "test: container recipe and Kubernetes manifests (no Docker, no cluster)" >&2
scripts/check-container.sh "$(swift build --show-bin-path)" >&2
echo "test: swift test" >&2
swift test 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write|Linking|Applying)'
echo "test: pytest" >&2
ROBOSIM_REQUIRE_SERVER=1 ROBOSIM_BIN_DIR="$(swift build --show-bin-path)" .venv/bin/python -m pytest python/tests -q -rs
