#!/usr/bin/env bash
# The main job: starts sim-server on the default scene (Scenes/tbar_push, 8 envs, twice real time)
# and drives it headless: the offline strategist pushes the T-bars into their slots for 16 seeded
# episodes (prompt/plan logs in runs/strategist), then the server stops cleanly. Recording those
# episodes as a LeRobot dataset (sim-collect) comes with issue 6.
# Usage: scripts/run.sh [--keep]   (--keep: leave the server running in the foreground afterwards)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=$(swift build --show-bin-path)
server=${SIM_SERVER:-tcp://127.0.0.1:7700}
export SIM_SERVER=$server

"$bin/sim-server" Scenes/tbar_push --rtf 2 --listen "$server" &
pid=$!
trap 'kill -INT $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  "$bin/simctl" service call /sim/describe --timeout 0.2 >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== sim-server at $server"
echo "== services"; "$bin/simctl" service list -t
echo "== /clock"; "$bin/simctl" topic echo /clock --count 3 --json --wait 5
echo "== sim-strategist: 16 seeded episodes"
"$bin/sim-strategist" --episodes 16 --seed 1 --log-dir runs/strategist
echo "== nodes"; "$bin/simctl" node list
if [ "${1:-}" = "--keep" ]; then
  trap - EXIT
  echo "sim-server running (pid $pid); Ctrl-C stops it" >&2
  wait $pid
else
  kill -INT $pid
  wait $pid
  echo "sim-server stopped cleanly" >&2
fi
