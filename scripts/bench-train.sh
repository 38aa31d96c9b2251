#!/usr/bin/env bash
# Heavy peer, outside CI: sim-train's PPO against Stable-Baselines3's (torch CPU, one thread) on the same
# RoboSim scene, wall time to solve and evaluation success (Benchmarks/python/train_bench.py).
# torch and SB3 go into a venv of their own (.venv-train; ROBOSIM_TRAIN_VENV overrides).
#   scripts/bench-train.sh [--scene Scenes/cartpole] [--seeds 1,2,3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh --no-build
venv=${ROBOSIM_TRAIN_VENV:-$root/.venv-train}
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
# torch for the CPU: a local wheel where the machine has one (PIP_FIND_LINKS), else PyTorch's CPU index.
wheel=$(ls "${PIP_FIND_LINKS:-/opt/wheels}"/torch-*+cpu-*.whl 2>/dev/null | head -1 || true)
if [ -n "$wheel" ]; then "$venv/bin/pip" install -q "$wheel"
else "$venv/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple; fi
"$venv/bin/pip" install -q -r python/requirements-dev.txt stable-baselines3
"$venv/bin/pip" install -q -e python
swift build -c release --product sim-server
swift build -c release --product sim-train
exec "$venv/bin/python" Benchmarks/python/train_bench.py --bin-dir "$(swift build -c release --show-bin-path)" "$@"
