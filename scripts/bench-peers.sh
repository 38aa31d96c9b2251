#!/usr/bin/env bash
# Heavy peers, outside CI: /sim/step from Python against gymnasium's SyncVectorEnv and EnvPool on the
# same MJCF (gymnasium's inverted_pendulum.xml and ant.xml), 16, 64 and 256 envs, release build.
# EnvPool goes into a venv of its own (.venv-bench; ROBOSIM_BENCH_VENV overrides), not .venv.
#   scripts/bench-peers.sh [extra step_bench.py arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh --no-build
venv=${ROBOSIM_BENCH_VENV:-$root/.venv-bench}
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install -q -r python/requirements-dev.txt envpool
"$venv/bin/pip" install -q -e python
swift build -c release --product sim-server
exec "$venv/bin/python" Benchmarks/python/step_bench.py --bin-dir "$(swift build -c release --show-bin-path)" \
  --models inverted_pendulum,ant --envs 16,64,256 "$@"
