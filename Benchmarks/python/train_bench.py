#!/usr/bin/env python3
"""Wall time to solve a task with sim-train's PPO against Stable-Baselines3's PPO, same run, same machine.

Both train on the same RoboSim scene with 16 envs and the same PPO settings (128 steps per env per
rollout, 4 minibatches, 10 epochs, learning rate 3e-4, gamma 0.99, GAE 0.95, clip 0.2, SB3's value loss
(MSE x 0.5, no value clipping),
gradient norm 0.5, [64, 64] tanh actor and critic, observation and reward normalization) and the same
reward (the task's, or `--reward`), and stop once `--target` (95%) of the last 100 training episodes succeeded. Each policy is then evaluated (mean actions) on 64
episodes of held-out seeds. SB3 runs with torch on one thread (`torch.set_num_threads(1)`) through
`robosim.sb3.RoboSimVecEnv` and `VecNormalize`; sim-train is the release build.

    scripts/bench-train.sh                 # installs torch (CPU) and SB3 into .venv-train, then runs this
    python Benchmarks/python/train_bench.py --scene Scenes/cartpole --seeds 1,2,3

A heavy peer (torch, SB3): kept out of CI.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from step_bench import SimServer  # noqa: E402

ENVS = 16


def sim_train(binary: Path, scene: str, seed: int, max_steps: int, target: float, reward: str | None) -> tuple[float, int, float]:
    """(training wall seconds, env steps, evaluation success rate) of `sim-train train`."""
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([str(binary), "train", "--scene", scene, "--envs", str(ENVS), "--steps", str(max_steps),
                            "--seed", str(seed), "--stop-at-success", str(target), "--out", out, "--eval-episodes", "64",
                            # SB3's value loss: plain MSE x 0.5 (sim-train's default is CleanRL's clipped one).
                            "--value-clip", "none", "--value-coefficient", "1"]
                           + (["--reward", reward] if reward else []),
                           cwd=REPO, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise SystemExit(f"sim-train failed: {r.stdout[-2000:]}{r.stderr[-2000:]}")
        m = re.search(r"sim-train: (\d+) env steps in ([\d.]+) s", r.stdout)
        e = re.search(r"success ([\d.]+)%", r.stdout.split("eval:")[-1])
        return float(m.group(2)), int(m.group(1)), float(e.group(1)) / 100


def sb3(binary: Path, scene: str, seed: int, max_steps: int, target: float, reward: str | None) -> tuple[float, int, float]:
    """(training wall seconds, env steps, evaluation success rate) of SB3's PPO."""
    import torch  # noqa: PLC0415
    from stable_baselines3 import PPO  # noqa: PLC0415
    from stable_baselines3.common.callbacks import BaseCallback  # noqa: PLC0415
    from stable_baselines3.common.vec_env import VecNormalize  # noqa: PLC0415

    from robosim.sb3 import RoboSimVecEnv  # noqa: PLC0415

    torch.set_num_threads(1)

    class StopAtSuccess(BaseCallback):
        def _on_step(self) -> bool:
            buf = self.model.ep_success_buffer
            return not (len(buf) >= 100 and np.mean(buf) >= target)

    server = SimServer(binary, scene, ENVS, [])
    try:
        venv = RoboSimVecEnv(server.address, num_envs=ENVS, client_name="sb3")
        if reward:
            venv.venv.set_reward(reward)
        venv.seed(seed)
        env = VecNormalize(venv, norm_obs=True, norm_reward=True, clip_obs=10.0, clip_reward=10.0, gamma=0.99)
        model = PPO("MlpPolicy", env, n_steps=128, batch_size=128 * ENVS // 4, n_epochs=10, learning_rate=3e-4, gamma=0.99,
                    gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, seed=seed, device="cpu",
                    policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": torch.nn.Tanh}, verbose=0)
        start = time.perf_counter()
        model.learn(max_steps, callback=StopAtSuccess())
        seconds = time.perf_counter() - start
        steps = model.num_timesteps
        # Evaluation: mean actions, 64 episodes, held-out seed.
        env.training, env.norm_reward = False, False
        venv.seed(seed + 1_000_003)
        obs = env.reset()
        successes, episodes = [], 0
        while episodes < 64:
            actions, _ = model.predict(obs, deterministic=True)
            obs, _, dones, infos = env.step(actions)
            for i in np.flatnonzero(dones):
                if episodes < 64:
                    successes.append(bool(infos[i].get("is_success", False)))
                    episodes += 1
        env.close()
        return seconds, steps, float(np.mean(successes))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", default="Scenes/cartpole")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds; each side runs every seed")
    parser.add_argument("--max-steps", type=int, default=1_000_000, help="give up after this many env steps")
    parser.add_argument("--bin-dir", type=Path, default=REPO / ".build" / "release")
    parser.add_argument("--target", type=float, default=0.95, help="stop at this success rate over the last 100 training episodes")
    parser.add_argument("--reward", help="a reward expression for both sides (default: the task's reward)")
    args = parser.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]))
    import stable_baselines3  # noqa: PLC0415
    import torch  # noqa: PLC0415
    print(f"stable-baselines3 {stable_baselines3.__version__}, torch {torch.__version__} (1 thread); {os.cpu_count()} CPUs")
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        ours = sim_train(args.bin_dir / "sim-train", args.scene, seed, args.max_steps, args.target, args.reward)
        theirs = sb3(args.bin_dir / "sim-server", args.scene, seed, args.max_steps, args.target, args.reward)
        print(f"seed {seed}: sim-train {ours[0]:.1f} s, {ours[1]} steps, eval success {100 * ours[2]:.0f}%; "
              f"SB3 {theirs[0]:.1f} s, {theirs[1]} steps, eval success {100 * theirs[2]:.0f}%", flush=True)
        rows.append((seed, ours, theirs))
    print()
    print("| seed | sim-train s | sim-train env steps | sim-train eval success | SB3 s | SB3 env steps | SB3 eval success | SB3 s / sim-train s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for seed, o, t in rows:
        print(f"| {seed} | {o[0]:.1f} | {o[1]:,} | {100 * o[2]:.0f}% | {t[0]:.1f} | {t[1]:,} | {100 * t[2]:.0f}% | {t[0] / o[0]:.2f}x |")
    med = lambda k, side: statistics.median(r[side][k] for r in rows)  # noqa: E731
    print(f"median: sim-train {med(0, 1):.1f} s, SB3 {med(0, 2):.1f} s")


if __name__ == "__main__":
    main()
