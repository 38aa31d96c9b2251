#!/usr/bin/env bash
# The strategist's success rate at --rtf 1 and at --rtf 0 (as fast as the server can), same seed and
# episodes: with /pace the two agree (issue 17; before /pace: 96% against 12%).
# Usage: scripts/strategist-rtf.sh [EPISODES] [ENVS] [SEED]   (binaries: ROBOSIM_BIN_DIR, default .build/debug)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
episodes=${1:-48} envs=${2:-8} seed=${3:-7}
bin=${ROBOSIM_BIN_DIR:-$root/.build/debug}
port=$((20000 + RANDOM % 20000))
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; true' EXIT
for rtf in 1 0; do
  "$bin/sim-server" Scenes/tbar_push --envs "$envs" --rtf "$rtf" --listen "tcp://127.0.0.1:$port" > "/tmp/strategist-rtf-$rtf.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do "$bin/simctl" service call /sim/describe '{}' --server "tcp://127.0.0.1:$port" > /dev/null 2>&1 && break; sleep 0.2; done
  out=$("$bin/sim-strategist" --server "tcp://127.0.0.1:$port" --episodes "$episodes" --seed "$seed" 2>/dev/null)
  echo "--rtf $rtf: ${out%%$'\n'*}"
  kill -INT "$server_pid"; wait "$server_pid" || true
  server_pid=
done
