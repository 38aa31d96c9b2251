#!/usr/bin/env bash
# The main job: a headless data collection on the default scene. sim-collect starts sim-server on
# Scenes/tbar_push (8 envs, lockstep), the offline strategist pushes the T-bars into their slots,
# and 16 episodes are recorded as a LeRobot v3.0 dataset in runs/tbar_push (both cameras as AV1
# video, states and actions in Parquet); then the server stops cleanly. Load it with lerobot:
#   LeRobotDataset("local/tbar_push", root="runs/tbar_push")   (../shared/tools/lerobot_load_check.py)
# Usage: scripts/run.sh [EPISODES]   (default 16; an existing runs/tbar_push is replaced)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=$(swift build --show-bin-path)
episodes=${1:-16}
out=runs/tbar_push
rm -rf "$out"
echo "== sim-collect: $episodes strategist episodes of Scenes/tbar_push into $out"
"$bin/sim-collect" --scene Scenes/tbar_push --envs 8 --policy strategist --fps 25 --seed 1 \
  --episodes "$episodes" --out "$out"
echo "== dataset"
python3 - "$out" <<'PY'
import json, sys
info = json.load(open(sys.argv[1] + "/meta/info.json"))
print(f"{info['codebase_version']}: {info['total_episodes']} episodes, {info['total_frames']} frames at {info['fps']} fps; "
      f"features: {', '.join(sorted(info['features']))}")
PY
