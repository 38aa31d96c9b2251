"""robosim.lerobot without lerobot: the missing-lerobot message, the observation mapping, and the
episode loop with a small policy object that has lerobot's reset/select_action interface, on the real
sim-server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from robosim import lerobot as rl  # noqa: E402
from robosim.envs import SceneEnv  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_without_lerobot_the_command_says_how_to_install_it(tmp_path):
    code = ("import sys, runpy; sys.modules['lerobot'] = None; "
            "sys.argv = ['robosim.lerobot', 'eval', '--policy', %r, '--scene', 'cartpole', '--episodes', '2']; "
            "runpy.run_module('robosim.lerobot', run_name='__main__')") % str(tmp_path)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert "pip install 'robosim[lerobot]'" in p.stderr and "lerobot==0.4.4" in p.stderr
    assert p.stdout == ""


def test_observation_mapping_uses_the_dataset_names():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (2, 6, 5, 3), dtype=np.uint8)
    state = rng.normal(size=(2, 4))
    batch = rl.to_policy_observation({"observation.state": state, "observation.images.front": image},
                                     ["observation.images.front", "observation.state"], task=["a", "b"])
    assert list(batch) == ["observation.images.front", "observation.state", "task"]
    assert batch["observation.state"].dtype == np.float32 and np.allclose(batch["observation.state"], state)
    img = batch["observation.images.front"]
    assert img.dtype == np.float32 and img.shape == (2, 3, 6, 5)
    assert img[1, 2, 4, 3] == np.float32(image[1, 4, 3, 2]) / np.float32(255)
    assert img.min() >= 0 and img.max() <= 1
    assert batch["task"] == ["a", "b"]
    with pytest.raises(KeyError, match=r"observation.images.wrist"):
        rl.to_policy_observation({"observation.state": state}, ["observation.state", "observation.images.wrist"])
    assert rl.policy_cameras({"observation.state": 0, "observation.images.front": 0, "observation.images.w": 0}) \
        == ["front", "w"]


def test_policy_info_reads_the_pretrained_model_folder(tmp_path):
    model = tmp_path / "checkpoints" / "000300" / "pretrained_model"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"type": "act", "input_features": {
        "observation.state": {}, "observation.images.front": {}}}))
    (model.parent / "training_state").mkdir()
    (model.parent / "training_state" / "training_step.json").write_text('{"step": 300}')
    data = tmp_path / "data"
    (data / "meta").mkdir(parents=True)
    (data / "meta" / "info.json").write_text('{"fps": 30}')
    (model / "train_config.json").write_text(json.dumps({"dataset": {"repo_id": "local/x", "root": str(data)}}))
    info = rl.read_policy_info(model)
    assert info["type"] == "act" and info["training_step"] == 300 and info["dataset_fps"] == 30
    assert rl.policy_cameras(dict.fromkeys(info["input_features"])) == ["front"]
    with pytest.raises(FileNotFoundError):
        rl.read_policy_info(tmp_path)


class Balancer:
    """The scripted expert's PD law on the dataset's feature names, as a lerobot-like policy: the cart
    in ``observation.state``, the pole in ``observation.environment_state``."""

    def __init__(self, state_names, environment_names):
        names = list(environment_names) + list(state_names)
        self.i = {n: names.index(n) for n in ("pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity")}
        self.resets = 0
        self.batches = []

    def reset(self):
        self.resets += 1

    def select_action(self, batch):
        self.batches.append({k: (v.dtype, v.shape) for k, v in batch.items() if k != "task"})
        s = np.concatenate([batch["observation.environment_state"], batch["observation.state"]], axis=1).astype(np.float64)
        i = self.i
        u = -(2.0 * s[:, i["pole_angle"]] + 0.3 * s[:, i["pole_angular_velocity"]]) \
            + 0.05 * s[:, i["cart_position"]] + 0.1 * s[:, i["cart_velocity"]]
        return np.clip(u, -1, 1).reshape(-1, 1).astype(np.float32)


class Pushy(Balancer):
    def select_action(self, batch):
        return np.ones((len(batch["observation.state"]), 1), np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import test_server

    with test_server.run_server(tmp_path_factory, "Scenes/cartpole", "--mode", "lockstep", "--envs", "4") as srv:
        yield srv


def vector(server, count, **kwargs):
    return gymnasium.vector.SyncVectorEnv(
        [lambda: SceneEnv("cartpole", server=server.address, **kwargs) for _ in range(count)])


def test_episode_loop_same_results_whatever_the_env_count(server, tmp_path):
    envs3 = vector(server, 3, render_mode="rgb_array")
    try:
        names = envs3.envs[0].state_names, envs3.envs[0].environment_state_names
        assert names == (["cart_position", "cart_velocity"], ["pole_angle", "pole_angular_velocity"])
        policy = Balancer(*names)
        video = rl.VideoWriter(tmp_path / "eval.mp4", envs3.envs[0].fps)
        three = rl.run_episodes(envs3, policy, episodes=5, seed=40, on_frame=video)
        video.write()
    finally:
        envs3.close()
    assert policy.resets == 2  # two batches
    assert policy.batches[0] == {"observation.state": (np.float32, (3, 2)),
                                 "observation.environment_state": (np.float32, (3, 2))}
    assert [r["episode_ix"] for r in three] == [0, 1, 2, 3, 4] and [r["seed"] for r in three] == [40, 41, 42, 43, 44]
    envs1 = vector(server, 1)
    try:
        one = rl.run_episodes(envs1, Balancer(*names), episodes=5, seed=40)
    finally:
        envs1.close()
    assert one == three  # an episode depends on its seed only
    assert all(r["length"] == 300 for r in three if r["success"])  # 5 s at 60 fps
    assert any(r["success"] for r in three)
    agg = rl.aggregate(three, 1.0)
    assert agg["pc_success"] == 100.0 * sum(r["success"] for r in three) / 5
    assert agg["avg_sum_reward"] == pytest.approx(np.mean([r["sum_reward"] for r in three]))

    envs2 = vector(server, 2)
    try:
        pushed = rl.run_episodes(envs2, Pushy(*names), episodes=2, seed=40)
    finally:
        envs2.close()
    assert not any(r["success"] for r in pushed) and all(r["length"] < 300 for r in pushed)
    assert [r["sum_reward"] for r in pushed] != [r["sum_reward"] for r in three[:2]]

    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                            "stream=nb_read_frames,width,height", "-of", "json", str(tmp_path / "eval.mp4")],
                           capture_output=True, text=True, check=True)
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["width"], stream["height"]) == (3 * 128, 128)
    assert int(stream["nb_read_frames"]) == 1 + max(r["length"] for r in three[:3])
