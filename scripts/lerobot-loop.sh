#!/usr/bin/env bash
# The imitation-learning loop, end to end, on this CPU (not in CI: lerobot is an ~8 GB install):
#   1. a separate venv with lerobot 0.4.4 and the robosim package ($LEROBOT_VENV,
#      default ~/.cache/robosim/lerobot-venv; created once, reused after);
#   2. a state-only cartpole dataset from the scripted expert with action noise
#      (sim-collect --policy scripted --action-noise 0.3 --only-success);
#   3. lerobot-train (ACT, from scratch, offline, state inputs only) on it;
#   4. python -m robosim.lerobot eval over 50 seeded episodes back in RoboSim;
# and prints the policy type, training steps, wall times and the success rate.
#
#   scripts/lerobot-loop.sh                       # everything, in $WORK (default runs/lerobot-loop)
#   STEPS=5000 EPISODES=200 scripts/lerobot-loop.sh
#
# Needs the Swift binaries (swift build; or ROBOSIM_BIN_DIR=... for another build of the same commit).
#
# Observations: state only. The cartpole task names its pole as the environment, so the dataset has
# observation.state (cart_position, cart_velocity) and observation.environment_state (pole_angle,
# pole_angular_velocity), the layout of LeRobot's PushT keypoints; ACT takes the environment state in
# place of an image (it needs one or the other). The recorded scene is Scenes/cartpole without its
# camera (a copy of the manifest in $WORK/scene/cartpole: same model, physics and task), so nothing
# is rendered while recording; the evaluation runs on Scenes/cartpole itself, whose camera only films
# the video (the policy takes no image).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

VENV=${LEROBOT_VENV:-$HOME/.cache/robosim/lerobot-venv}
WORK=${WORK:-$root/runs/lerobot-loop}
BIN=${ROBOSIM_BIN_DIR:-$root/.build/debug}
EPISODES=${EPISODES:-100}          # recorded (successful) expert episodes
STEPS=${STEPS:-2000}               # lerobot-train steps (about 6 min here)
NOISE=${NOISE:-0.3}                # sim-collect --action-noise: the expert's recoveries, which cloning needs
BATCH=${BATCH:-64}
EVAL_EPISODES=${EVAL_EPISODES:-50}
EVAL_ENVS=${EVAL_ENVS:-10}
EVAL_SEED=${EVAL_SEED:-100000}     # evaluation seeds: EVAL_SEED .. EVAL_SEED+49 (the dataset used seed 1000, envs 0..7)
export ROBOSIM_BIN_DIR=$BIN

for exe in sim-server sim-collect; do
    [ -x "$BIN/$exe" ] || { echo "lerobot-loop: $BIN/$exe not built (swift build, or set ROBOSIM_BIN_DIR)" >&2; exit 1; }
done

# 1. The venv (torch from PyPI comes with CUDA libraries; it runs on the CPU all the same).
if ! "$VENV/bin/python" -c 'import lerobot, robosim' 2>/dev/null; then
    echo "lerobot-loop: installing lerobot 0.4.4 into $VENV (several GB, once)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q 'lerobot==0.4.4'
    "$VENV/bin/pip" install -q -e "$root/python[gym]"
fi
"$VENV/bin/python" -c 'import lerobot, importlib.metadata as m; print("lerobot", m.version("lerobot"))' >&2

mkdir -p "$WORK"
# 2. The dataset: cartpole without cameras, the scripted PD expert, 60 fps (the control rate). With
#    clean expert actions the poles are upright within a few frames, so almost every frame shows a
#    balanced pole and a policy cloned from them never learns the first hard pushes (0% back in the
#    simulator); noise on the executed actions (DART) makes the expert show recoveries all along.
scene="$WORK/scene/cartpole"
mkdir -p "$scene"
python3 - "$root/Scenes/cartpole" "$scene" <<'EOF'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
manifest = json.load(open(os.path.join(src, "scene.json")))
manifest["model"] = os.path.relpath(os.path.join(src, manifest["model"]), dst)
manifest["cameras"] = []
json.dump(manifest, open(os.path.join(dst, "scene.json"), "w"), indent=2)
EOF
data="$WORK/data"
if [ ! -f "$data/meta/info.json" ]; then
    t0=$(date +%s)
    "$BIN/sim-collect" --scene "$scene" --envs 8 --out "$data" --episodes "$EPISODES" --policy scripted \
        --only-success --seed 1000 --action-noise "$NOISE"
    echo "lerobot-loop: dataset recorded in $(( $(date +%s) - t0 )) s" >&2
fi

# 3. Training: ACT from scratch (no image backbone is built without images), small, re-planning every frame.
out="$WORK/train"
model="$out/checkpoints/last/pretrained_model"
train_s=0
if [ ! -f "$model/config.json" ]; then
    rm -rf "$out"
    t0=$(date +%s)
    # lerobot keeps a 1-component feature as a scalar column, so ACT gets cartpole's 1-D action chunks
    # as (B, chunk) where it expects (B, chunk, 1): this runs lerobot-train's own main with ACT's
    # forward taking the missing axis back (nothing else changes).
    cat > "$WORK/lerobot_train_act.py" <<'EOF_PY'
import sys
from lerobot.policies.act import modeling_act
from lerobot.utils.constants import ACTION

_forward = modeling_act.ACTPolicy.forward


def forward(self, batch):
    if batch[ACTION].ndim == 2 and tuple(self.config.output_features[ACTION].shape) == (1,):
        batch = dict(batch)
        batch[ACTION] = batch[ACTION].unsqueeze(-1)
    return _forward(self, batch)


modeling_act.ACTPolicy.forward = forward
from lerobot.scripts.lerobot_train import main  # noqa: E402

sys.argv[0] = "lerobot-train"
main()
EOF_PY
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "$VENV/bin/python" "$WORK/lerobot_train_act.py" \
        --dataset.repo_id=local/robosim_cartpole --dataset.root="$data" \
        --policy.type=act --policy.device=cpu --policy.push_to_hub=false \
        --policy.pretrained_backbone_weights=null \
        --policy.chunk_size=1 --policy.n_action_steps=1 \
        --policy.dim_model=128 --policy.dim_feedforward=512 --policy.n_heads=4 \
        --policy.n_encoder_layers=2 --policy.n_decoder_layers=1 --policy.use_vae=false \
        --policy.optimizer_lr=3e-4 \
        --batch_size="$BATCH" --steps="$STEPS" --save_freq="$STEPS" --log_freq=250 --eval_freq=0 \
        --num_workers=1 --wandb.enable=false --output_dir="$out" --job_name=robosim_cartpole_act
    train_s=$(( $(date +%s) - t0 ))
fi

# 4. Evaluation back in RoboSim: 50 seeded episodes, 10 envs at once, a video of the first 10.
t0=$(date +%s)
"$VENV/bin/python" -m robosim.lerobot eval --policy "$model" --scene "$root/Scenes/cartpole" \
    --episodes "$EVAL_EPISODES" --envs "$EVAL_ENVS" --seed "$EVAL_SEED" --device cpu \
    --video "$WORK/eval.mp4" --json "$WORK/eval.json" > /dev/null
eval_s=$(( $(date +%s) - t0 ))

"$VENV/bin/python" - "$WORK/eval.json" "$train_s" "$eval_s" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
agg, policy = report["aggregated"], report["policy"]
ok = sum(e["success"] for e in report["per_episode"])
print(f"policy type:      {policy['type']}")
print(f"training steps:   {policy['training_step']}")
print(f"training wall:    {sys.argv[2]} s (0: reused an earlier run)")
print(f"eval wall:        {sys.argv[3]} s ({report['envs']} envs, {report['fps']:g} fps)")
print(f"success:          {ok}/{len(report['per_episode'])} = {agg['pc_success']:.1f}% "
      f"(seeds {report['seed']}..{report['seed'] + report['episodes'] - 1})")
print(f"mean return:      {agg['avg_sum_reward']:.2f}")
print(f"report, video:    {sys.argv[1]}, {report['video']}")
EOF
