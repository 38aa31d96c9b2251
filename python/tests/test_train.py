"""sim-train against the real server: PPO is deterministic, its checkpoint loads with the `safetensors`
package, and a numpy forward pass of it gives sim-train's actions.

The binaries come from ``$ROBOSIM_BIN_DIR`` (default ``.build/debug``), as in test_server.py.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

safetensors_numpy = pytest.importorskip("safetensors.numpy")
from safetensors import safe_open  # noqa: E402


@pytest.fixture(scope="module")
def sim_train():
    import test_server  # skips (or fails, with ROBOSIM_REQUIRE_SERVER=1) when the binaries are not built

    binary = test_server.BIN_DIR / "sim-train"
    if not binary.exists():
        pytest.skip(f"sim-train not built in {test_server.BIN_DIR}")
    return binary, test_server.REPO


def train(sim_train, out, seed=3):
    binary, repo = sim_train
    r = subprocess.run([str(binary), "train", "--scene", "Scenes/cartpole", "--envs", "8", "--steps", "4096",
                        "--rollout-steps", "64", "--epochs", "4", "--out", str(out), "--seed", str(seed), "--eval-episodes", "8"],
                       cwd=repo, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def test_same_seed_same_curve_and_checkpoint(sim_train, tmp_path):
    out = train(sim_train, tmp_path / "a")
    train(sim_train, tmp_path / "b")
    assert "update 8/8" in out and "eval: 8 episodes" in out, out
    a, b = (tmp_path / "a" / "metrics.csv").read_bytes(), (tmp_path / "b" / "metrics.csv").read_bytes()
    assert a == b
    assert len(a.splitlines()) == 9  # header and 8 updates
    assert (tmp_path / "a" / "checkpoint.safetensors").read_bytes() == (tmp_path / "b" / "checkpoint.safetensors").read_bytes()
    train(sim_train, tmp_path / "c", seed=4)
    assert (tmp_path / "c" / "metrics.csv").read_bytes() != a
    report = json.loads((tmp_path / "a" / "eval.json").read_text())
    assert len(report["episodes"]) == 8 and 0 <= report["successRate"] <= 1


def numpy_policy(path):
    """Mean actions from the checkpoint's tensors, as its metadata documents them."""
    t = safetensors_numpy.load_file(str(path))
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    hidden = json.loads(meta["hidden"])

    def net(prefix, x):
        for layer in range(len(hidden) + 1):
            x = x @ t[f"{prefix}.layers.{layer}.weight"] + t[f"{prefix}.layers.{layer}.bias"]
            if layer < len(hidden):
                x = np.tanh(x)
        return x

    def act(obs):
        x = np.asarray(obs, np.float32)
        if meta["normalize_observations"] == "true":
            x = np.clip((x - t["obs_norm.mean"]) / np.sqrt(t["obs_norm.var"] + np.float32(1e-8)), -10, 10)
        return net("actor", x.astype(np.float32))

    return act, meta


def test_checkpoint_loads_in_python_and_numpy_gives_sim_trains_actions(sim_train, tmp_path):
    train(sim_train, tmp_path / "run")
    path = tmp_path / "run" / "checkpoint.safetensors"
    act, meta = numpy_policy(path)
    assert meta["format"] == "robosim.ppo.v1" and meta["task"] == "cartpole"
    assert json.loads(meta["observation_names"]) == ["pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity"]
    assert json.loads(meta["action_names"]) == ["cart_force"]
    rng = np.random.default_rng(0)
    obs = rng.normal(0, 1, size=(50, 4)) * [0.5, 2, 1, 2]
    binary, repo = sim_train
    r = subprocess.run([str(binary), "act", str(path)], input=json.dumps(obs.tolist()), capture_output=True, text=True,
                       cwd=repo, timeout=120)
    assert r.returncode == 0, r.stderr
    swift = np.asarray(json.loads(r.stdout))
    ours = act(obs)
    assert swift.shape == ours.shape == (50, 1)
    np.testing.assert_allclose(swift, ours, rtol=1e-5, atol=1e-6)
    assert np.ptp(ours) > 0  # different observations, different actions
