"""Evaluate a LeRobot policy in RoboSim: ``python -m robosim.lerobot eval``.

    python -m robosim.lerobot eval --policy outputs/train/cartpole/checkpoints/last/pretrained_model \\
        --scene Scenes/cartpole --episodes 50 --envs 10 --seed 0 --video eval.mp4 --device cpu

loads a ``pretrained_model`` folder written by ``lerobot-train`` with lerobot's own loading code (the
policy class from its ``config.json`` through ``lerobot.policies.factory.make_policy``, its pre- and
post-processors through ``make_pre_post_processors``, as ``lerobot-eval`` does), runs it on N seeded
episodes over several envs at once (``robosim/<Scene>-v0`` envs, :mod:`robosim.envs`, leased on one
``sim-server``), and prints a JSON report shaped like ``lerobot-eval``'s ``eval_info.json``
(``per_episode``: ``episode_ix``, ``seed``, ``sum_reward``, ``max_reward``, ``success``, ``length``;
``aggregated``: ``avg_sum_reward``, ``avg_max_reward``, ``pc_success``, ``eval_s``, ``eval_ep_s``),
and optionally an mp4 of the first batch of episodes.

The policy's inputs are found by the dataset's feature names: ``observation.state``,
``observation.environment_state`` and ``observation.images.<cam>`` (the cameras to render come from the policy's own input features), fed
as ``lerobot-eval`` feeds its envs' observations (state ``float32 (B, D)``, images
``float32 (B, 3, H, W)`` in ``[0, 1]``), plus ``task`` (the env's task text).

lerobot is an optional extra (``pip install 'robosim[lerobot]'``, or ``pip install lerobot==0.4.4``);
everything here but :func:`load_policy` works without it.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .envs import ENV_STATE_KEY, IMAGE_PREFIX, STATE_KEY

__all__ = ["INSTALL_HINT", "LeRobotMissing", "LeRobotPolicy", "episode_seeds", "load_policy", "main",
           "policy_cameras", "require_lerobot", "run_episodes", "to_policy_observation"]

#: The lerobot release this module follows (its ``lerobot_eval.py``).
LEROBOT_VERSION = "0.4.4"
INSTALL_HINT = (f"install it with: pip install 'robosim[lerobot]'  (or: pip install lerobot=={LEROBOT_VERSION}); "
                f"scripts/lerobot-loop.sh sets up a separate venv with it")


class LeRobotMissing(RuntimeError):
    """lerobot (or torch) cannot be imported."""


def require_lerobot() -> Any:
    """Imports and returns the ``lerobot`` package, or raises :class:`LeRobotMissing` with how to install it."""
    try:
        import lerobot  # noqa: PLC0415
        import torch  # noqa: F401, PLC0415
    except ImportError as exc:
        raise LeRobotMissing(f"python -m robosim.lerobot eval needs lerobot {LEROBOT_VERSION} ({exc}); "
                             f"{INSTALL_HINT}") from None
    return lerobot


# -- the feature mapping (no lerobot needed) -----------------------------------------------------------

def policy_cameras(input_features: Mapping[str, Any]) -> List[str]:
    """The cameras a policy takes, from its input feature names (``observation.images.<cam>``)."""
    return [key[len(IMAGE_PREFIX):] for key in input_features if key.startswith(IMAGE_PREFIX)]


def to_policy_observation(obs: Mapping[str, np.ndarray], input_features: Optional[Sequence[str]] = None,
                          task: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """A batch of env observations (dataset names, as :class:`robosim.envs.SceneEnv` gives them,
    batched) in the form lerobot's policies get them from ``lerobot-eval``:

    - ``observation.state`` and ``observation.environment_state``: ``float32 (B, D)``;
    - ``observation.images.<cam>``: ``uint8 (B, H, W, 3)`` -> ``float32 (B, 3, H, W)`` in ``[0, 1]``
      (what ``LeRobotDataset`` yields for a video frame, and ``preprocess_observation`` for env pixels);
    - ``task``: one text per env, when given.

    ``input_features``: the policy's input names; each must be in ``obs`` (a ``KeyError`` names the
    missing ones), and only these are passed on. None passes every key.
    """
    keys = list(obs) if input_features is None else list(input_features)
    missing = [k for k in keys if k not in obs]
    if missing:
        raise KeyError(f"the policy takes {missing}, which the env does not give (it gives {sorted(obs)}); "
                       f"make the env with the cameras the dataset was recorded with")
    out: Dict[str, Any] = {}
    for key in keys:
        value = np.asarray(obs[key])
        if key.startswith(IMAGE_PREFIX):
            if value.ndim != 4 or value.shape[-1] != 3 or value.dtype != np.uint8:
                raise ValueError(f"{key}: expected uint8 (B, H, W, 3), got {value.dtype} {value.shape}")
            out[key] = np.ascontiguousarray(value.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)
        else:
            if value.ndim != 2:
                raise ValueError(f"{key}: expected (B, D), got {value.shape}")
            out[key] = np.ascontiguousarray(value, dtype=np.float32)
    if task is not None:
        out["task"] = list(task)
    return out


def episode_seeds(seed: int, episodes: int) -> List[int]:
    """The seed of each episode: ``seed + episode index`` (with seed index 0: the same episodes
    whatever the env count)."""
    return [int(seed) + i for i in range(int(episodes))]


def run_episodes(envs: Any, policy: Any, episodes: int, seed: int = 0,
                 input_features: Optional[Sequence[str]] = None,
                 on_frame: Optional[Callable[[Any, np.ndarray], None]] = None,
                 max_steps: Optional[int] = None,
                 progress: Optional[Callable[[int, int], None]] = None) -> List[Dict[str, Any]]:
    """Runs ``episodes`` seeded episodes in batches of ``envs.num_envs``, as ``lerobot-eval`` does:
    per batch, ``policy.reset()``, ``envs.reset(seed=[...])``, then ``policy.select_action(batch)``
    (``batch`` from :func:`to_policy_observation`; it returns ``(num_envs, action_size)`` actions)
    and ``envs.step`` until every env of the batch has ended an episode. An env that ended waits
    (its later steps do not count); the last batch's spare envs run episodes that are not counted.

    ``envs``: a Gymnasium vector env of :class:`robosim.envs.SceneEnv` (dict observations with the
    dataset's names, ``info["is_success"]``). Returns one dict per episode: ``episode_ix``, ``seed``,
    ``sum_reward``, ``max_reward``, ``success`` (the task reported success in one of its frames),
    ``length`` (frames). ``on_frame(envs, done)`` is called after the reset and every step of the
    first batch (for video); ``max_steps`` caps a batch's frames (None: the envs' own time limits).
    """
    n = int(envs.num_envs)
    seeds = episode_seeds(seed, episodes)
    tasks = list(envs.get_attr("task_description")) if hasattr(envs, "get_attr") else None
    results: List[Dict[str, Any]] = []
    for start in range(0, len(seeds), n):
        batch_seeds = seeds[start:start + n]
        active = len(batch_seeds)
        # Spare envs of the last batch run further seeds; their episodes are not counted.
        wire_seeds = batch_seeds + [seeds[-1] + 1 + k for k in range(n - active)]
        policy.reset()
        obs, _ = envs.reset(seed=wire_seeds)
        done = np.zeros(n, np.bool_)
        done[active:] = True
        sum_reward = np.zeros(n)
        max_reward = np.full(n, -np.inf)
        success = np.zeros(n, np.bool_)
        length = np.zeros(n, np.int64)
        if on_frame is not None and start == 0:
            on_frame(envs, done.copy())
        steps = 0
        while not done.all() and (max_steps is None or steps < max_steps):
            actions = np.asarray(policy.select_action(to_policy_observation(obs, input_features, tasks)))
            if actions.ndim == 1:
                actions = actions.reshape(n, -1)
            obs, reward, terminated, truncated, info = envs.step(actions)
            live = ~done
            reward = np.asarray(reward, np.float64)
            sum_reward[live] += reward[live]
            max_reward[live] = np.maximum(max_reward[live], reward[live])
            length[live] += 1
            flags = np.asarray(info.get("is_success", np.zeros(n, np.bool_)), np.bool_)
            success[live] |= flags[live]
            done |= np.asarray(terminated, np.bool_) | np.asarray(truncated, np.bool_)
            steps += 1
            if on_frame is not None and start == 0:
                on_frame(envs, done.copy())
        for k in range(active):
            results.append({"episode_ix": start + k, "seed": batch_seeds[k], "sum_reward": float(sum_reward[k]),
                            "max_reward": float(max_reward[k]) if length[k] else 0.0,
                            "success": bool(success[k]), "length": int(length[k])})
        if progress is not None:
            progress(len(results), len(seeds))
    return results


def aggregate(results: Sequence[Mapping[str, Any]], eval_s: float) -> Dict[str, float]:
    """``lerobot-eval``'s aggregated figures: average sum and max reward, success in percent, times."""
    count = max(1, len(results))
    return {"avg_sum_reward": float(np.mean([r["sum_reward"] for r in results])) if results else math.nan,
            "avg_max_reward": float(np.mean([r["max_reward"] for r in results])) if results else math.nan,
            "pc_success": 100.0 * sum(bool(r["success"]) for r in results) / count,
            "eval_s": float(eval_s), "eval_ep_s": float(eval_s) / count}


class VideoWriter:
    """Frames of the first batch, the envs side by side, into an mp4 through ``ffmpeg`` (H.264)."""

    def __init__(self, path: Path, fps: float):
        self.path = Path(path)
        self.fps = fps
        self.frames: List[np.ndarray] = []
        self._last: Optional[List[np.ndarray]] = None

    def __call__(self, envs: Any, done: np.ndarray) -> None:
        images = [np.asarray(img) for img in envs.call("render")]
        if self._last is not None:  # an env that ended keeps showing its last frame
            images = [self._last[i] if done[i] and self._was_done[i] else images[i] for i in range(len(images))]
        self._last, self._was_done = images, done
        self.frames.append(np.concatenate(images, axis=1))

    def write(self) -> None:
        if not self.frames:
            return
        h, w, _ = self.frames[0].shape
        self.path.parent.mkdir(parents=True, exist_ok=True)
        argv = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                "-r", f"{self.fps:g}", "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264",
                "-pix_fmt", "yuv420p", str(self.path)]
        process = subprocess.run(argv, input=b"".join(np.ascontiguousarray(f, np.uint8).tobytes() for f in self.frames),
                                 capture_output=True)
        if process.returncode != 0:
            raise RuntimeError(f"ffmpeg could not write {self.path}: {process.stderr.decode(errors='replace').strip()}")


# -- lerobot ----------------------------------------------------------------------------------------

class LeRobotPolicy:
    """A lerobot policy with its processors behind ``reset()`` / ``select_action(batch)`` on numpy
    batches (:func:`to_policy_observation`): the steps of ``lerobot-eval``'s rollout (preprocessor,
    ``policy.select_action`` under ``torch.inference_mode``, postprocessor, to numpy)."""

    def __init__(self, policy: Any, preprocessor: Any, postprocessor: Any, env_preprocessor: Any = None,
                 env_postprocessor: Any = None):
        self.policy, self.preprocessor, self.postprocessor = policy, preprocessor, postprocessor
        self.env_preprocessor, self.env_postprocessor = env_preprocessor, env_postprocessor
        self.config = policy.config

    def reset(self) -> None:
        self.policy.reset()

    def select_action(self, batch: Mapping[str, Any]) -> np.ndarray:
        import torch  # noqa: PLC0415

        observation = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}
        if self.env_preprocessor is not None:
            observation = self.env_preprocessor(observation)
        observation = self.preprocessor(observation)
        with torch.inference_mode():
            action = self.policy.select_action(observation)
        action = self.postprocessor(action)
        if self.env_postprocessor is not None:
            action = self.env_postprocessor({"action": action})["action"]
        return action.to("cpu").numpy()


def _env_config(features: Mapping[str, Tuple[str, Tuple[int, ...]]], fps: float) -> Any:
    """A lerobot ``EnvConfig`` (type ``robosim``) whose features are the env's, under the dataset's names
    (``features_map`` is the identity): what ``make_policy`` reads the output features from."""
    from dataclasses import dataclass, field  # noqa: PLC0415

    from lerobot.configs.types import FeatureType, PolicyFeature  # noqa: PLC0415
    from lerobot.envs.configs import EnvConfig  # noqa: PLC0415

    if "robosim" not in EnvConfig.get_known_choices():
        @EnvConfig.register_subclass("robosim")
        @dataclass
        class RoboSimEnvConfig(EnvConfig):
            scene: str = "cartpole"
            features: dict = field(default_factory=dict)
            features_map: dict = field(default_factory=dict)

            @property
            def gym_kwargs(self) -> dict:
                return {"scene": self.scene}
    config_cls = EnvConfig.get_choice_class("robosim")
    policy_features = {key: PolicyFeature(type=FeatureType[kind], shape=tuple(shape))
                       for key, (kind, shape) in features.items()}
    return config_cls(fps=int(round(fps)), features=policy_features, features_map={k: k for k in features})


def env_features(env: Any) -> Dict[str, Tuple[str, Tuple[int, ...]]]:
    """The env's features as (lerobot feature type, shape) under the dataset's names, images HWC."""
    features: Dict[str, Tuple[str, Tuple[int, ...]]] = {"action": ("ACTION", tuple(env.action_space.shape or (1,)))}
    for key, space in env.observation_space.spaces.items():
        kind = "VISUAL" if key.startswith(IMAGE_PREFIX) else "ENV" if key == ENV_STATE_KEY else "STATE"
        features[key] = (kind, tuple(space.shape))
    return features


def load_policy(policy_dir: Path, features: Mapping[str, Tuple[str, Tuple[int, ...]]], fps: float,
                device: str = "cpu") -> LeRobotPolicy:
    """Loads ``policy_dir`` (a ``pretrained_model`` folder) as ``lerobot-eval`` does: the config
    (``PreTrainedConfig.from_pretrained``, with ``pretrained_path`` set), ``make_policy`` (with a
    RoboSim ``EnvConfig`` for the features), ``make_pre_post_processors`` from the same folder with
    the device override, and ``make_env_pre_post_processors``."""
    require_lerobot()
    from lerobot.configs.policies import PreTrainedConfig  # noqa: PLC0415
    from lerobot.envs.factory import make_env_pre_post_processors  # noqa: PLC0415
    from lerobot.policies.factory import make_policy, make_pre_post_processors  # noqa: PLC0415

    cfg = PreTrainedConfig.from_pretrained(str(policy_dir))
    cfg.pretrained_path = Path(policy_dir)
    cfg.device = device
    env_cfg = _env_config(features, fps)
    policy = make_policy(cfg=cfg, env_cfg=env_cfg, rename_map={})
    policy.eval()
    preprocessor, postprocessor = make_pre_post_processors(
        policy_cfg=cfg, pretrained_path=str(cfg.pretrained_path),
        preprocessor_overrides={"device_processor": {"device": str(policy.config.device)},
                                "rename_observations_processor": {"rename_map": {}}})
    env_pre, env_post = make_env_pre_post_processors(env_cfg=env_cfg, policy_cfg=cfg)
    return LeRobotPolicy(policy, preprocessor, postprocessor, env_pre, env_post)


def read_policy_info(policy_dir: Path) -> Dict[str, Any]:
    """What the ``pretrained_model`` folder says without lerobot: policy type, input feature names,
    the training step (``../training_state/training_step.json``) and the dataset's fps
    (``train_config.json``'s ``dataset.root``/``meta/info.json``), where present."""
    policy_dir = Path(policy_dir)
    config_path = policy_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{policy_dir} is not a lerobot pretrained_model folder (no config.json)")
    config = json.loads(config_path.read_text())
    info: Dict[str, Any] = {"type": config.get("type"), "input_features": list(config.get("input_features", {})),
                            "path": str(policy_dir)}
    step_file = policy_dir.parent / "training_state" / "training_step.json"
    if step_file.is_file():
        info["training_step"] = json.loads(step_file.read_text()).get("step")
    train_config = policy_dir / "train_config.json"
    if train_config.is_file():
        dataset = json.loads(train_config.read_text()).get("dataset") or {}
        info["dataset"] = {"repo_id": dataset.get("repo_id"), "root": dataset.get("root")}
        meta = Path(dataset.get("root") or "") / "meta" / "info.json"
        if dataset.get("root") and meta.is_file():
            info["dataset_fps"] = json.loads(meta.read_text()).get("fps")
    return info


# -- the command ------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m robosim.lerobot", description=(
        "Evaluate a LeRobot policy (a pretrained_model folder written by lerobot-train) in RoboSim."))
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval", help="run a policy on seeded episodes; print success rate and returns (JSON)",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--policy", required=True, type=Path, help="the pretrained_model folder")
    ev.add_argument("--scene", required=True, help="scene name or folder (Scenes/cartpole)")
    ev.add_argument("--episodes", type=int, default=50, help="episodes to run (default 50)")
    ev.add_argument("--envs", type=int, default=10, help="envs run at once (default 10)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode i has seed+i (default 0)")
    ev.add_argument("--fps", type=float, default=None,
                    help="frames per second (default: the training dataset's fps, else the control rate)")
    ev.add_argument("--video", type=Path, default=None, help="write the first batch of episodes to this mp4")
    ev.add_argument("--device", default="cpu", help="torch device (default cpu)")
    ev.add_argument("--server", default=None, help="a running lockstep sim-server of the scene (default: start one)")
    ev.add_argument("--bin-dir", default=None, help="where sim-server is (default: $ROBOSIM_BIN_DIR, PATH, .build)")
    ev.add_argument("--json", type=Path, default=None, help="also write the report to this file")
    ev.add_argument("--max-steps", type=int, default=None, help="cap on a batch's frames (default: the scene's time limit)")
    return parser


def evaluate(args: argparse.Namespace) -> Dict[str, Any]:
    """``eval``: loads the policy, runs the episodes, returns the report."""
    import gymnasium  # noqa: PLC0415

    from .envs import SceneEnv  # noqa: PLC0415
    from .server import LocalServer  # noqa: PLC0415

    require_lerobot()
    if args.episodes < 1 or args.envs < 1:
        raise ValueError("--episodes and --envs must be at least 1")
    info = read_policy_info(args.policy)
    cameras = policy_cameras(dict.fromkeys(info["input_features"]))
    fps = args.fps or info.get("dataset_fps")
    envs_count = min(args.envs, args.episodes)
    local = None
    started = time.monotonic()
    try:
        server = args.server
        if server is None:
            local = LocalServer(args.scene, envs=envs_count, bin_dir=args.bin_dir)
            server = local.address
        render = "rgb_array" if args.video else None

        def make(i: int) -> Callable[[], SceneEnv]:
            # A server of our own (no --server) listens on loopback without keys.
            keys = {"server_key": ""} if local is not None else {}
            return lambda: SceneEnv(args.scene, server=server, cameras=cameras or None, fps=fps,
                                    render_mode=render, seed_index=0, **keys)

        envs = gymnasium.vector.SyncVectorEnv([make(i) for i in range(envs_count)])
        try:
            first = envs.envs[0]
            features = env_features(first)
            policy = load_policy(args.policy, features, first.fps, args.device)
            missing = [k for k in policy.config.input_features if k not in first.observation_space.spaces]
            if missing:
                raise KeyError(f"the policy takes {missing}; the env gives {sorted(first.observation_space.spaces)}")
            video = VideoWriter(args.video, first.fps) if args.video else None
            t0 = time.monotonic()

            def progress(done: int, total: int) -> None:
                print(f"robosim.lerobot eval: {done}/{total} episodes", file=sys.stderr, flush=True)

            results = run_episodes(envs, policy, args.episodes, args.seed,
                                   input_features=list(policy.config.input_features), on_frame=video,
                                   max_steps=args.max_steps, progress=progress)
            eval_s = time.monotonic() - t0
            if video is not None:
                video.write()
            report = {"policy": {"type": info["type"], "path": info["path"],
                                 "training_step": info.get("training_step"), "dataset": info.get("dataset")},
                      "scene": first.scene, "task": first.task_description, "episodes": args.episodes,
                      "envs": envs_count, "seed": args.seed, "fps": first.fps, "device": args.device,
                      "input_features": list(policy.config.input_features),
                      "per_episode": results, "aggregated": aggregate(results, eval_s),
                      "video": str(args.video) if args.video else None,
                      "wall_s": time.monotonic() - started}
        finally:
            envs.close()
    finally:
        if local is not None:
            local.close()
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        report = evaluate(args)
    except LeRobotMissing as exc:
        print(f"robosim.lerobot: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, KeyError, ValueError, RuntimeError, TimeoutError) as exc:
        print(f"robosim.lerobot: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    agg = report["aggregated"]
    print(f"robosim.lerobot eval: {report['policy']['type']} on {report['scene']}: success "
          f"{agg['pc_success']:.1f}% over {report['episodes']} episodes, mean return {agg['avg_sum_reward']:.2f}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
