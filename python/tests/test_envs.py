"""robosim.envs: the registered robosim/<Scene>-v0 envs with dataset feature names, against the real
sim-server (started by the env itself through robosim.server.LocalServer, or shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

import robosim  # noqa: E402,F401  (registers the envs)
from robosim import envs as robosim_envs  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_every_scene_has_an_id():
    scenes = sorted(p.name for p in (REPO / "Scenes").iterdir() if (p / "scene.json").is_file())
    assert sorted(robosim_envs.SCENES) == scenes
    assert robosim_envs.env_id("tbar_push") == "robosim/TbarPush-v0"
    assert robosim_envs.env_id("cartpole") == "robosim/Cartpole-v0"
    assert robosim_envs.env_id("object_tracker") == "robosim/ObjectTracker-v0"
    for scene in robosim_envs.SCENES:
        spec = gymnasium.spec(robosim_envs.env_id(scene))
        assert spec.entry_point == "robosim.envs:SceneEnv" and spec.kwargs == {"scene": scene}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import test_server  # skips (or fails, with ROBOSIM_REQUIRE_SERVER=1) when sim-server is not built

    with test_server.run_server(tmp_path_factory, "Scenes/cartpole", "--mode", "lockstep", "--envs", "3") as srv:
        yield srv


def test_make_starts_its_own_server_and_passes_check_env(server):
    from gymnasium.utils.env_checker import check_env

    env = gymnasium.make("robosim/Cartpole-v0", cameras="all", render_mode="rgb_array")
    try:
        u = env.unwrapped
        assert u._local is not None and u.scene == "cartpole"
        # The dataset's split: the cart is the robot (observation.state), the pole its environment.
        assert set(env.observation_space.spaces) == {"observation.state", "observation.environment_state",
                                                     "observation.images.front"}
        assert env.observation_space["observation.state"] == gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        assert env.observation_space["observation.environment_state"] == gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        assert env.observation_space["observation.images.front"] == gymnasium.spaces.Box(0, 255, (128, 128, 3), np.uint8)
        obs, info = env.reset(seed=3)
        assert obs["observation.state"].dtype == np.float32 and obs["observation.images.front"].dtype == np.uint8
        assert info["is_success"] is False
        assert u.observation_names == ("pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity")
        assert u.state_names == ["cart_position", "cart_velocity"]
        assert u.environment_state_names == ["pole_angle", "pole_angular_velocity"]
        state = u.vector.reset(seed=3, options={"seed_indices": [0]})[0]["state"][0]  # the whole vector, task order
        assert np.array_equal(obs["observation.environment_state"], state[:2].astype(np.float32))
        assert np.array_equal(obs["observation.state"], state[2:].astype(np.float32))
        frame = env.render()
        assert frame.shape == (128, 128, 3) and np.array_equal(frame, obs["observation.images.front"])
        assert frame.std() > 0  # an image, not a blank
        check_env(u, skip_render_check=True)
    finally:
        env.close()
    assert u._local is None  # the env's own server is stopped by close()


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_state_only_on_a_running_server_same_episodes_whatever_the_env(server):
    a = robosim_envs.SceneEnv("cartpole", server=server.address)
    b = robosim_envs.SceneEnv("cartpole", server=server.address)
    try:
        assert a.vector.env_ids != b.vector.env_ids
        assert set(a.observation_space.spaces) == {"observation.state", "observation.environment_state"}
        oa, _ = a.reset(seed=11)
        ob, _ = b.reset(seed=11)
        assert same(oa, ob)  # seed index 0 on both
        oc, _ = b.reset(seed=12)
        assert not np.array_equal(oa["observation.environment_state"], oc["observation.environment_state"])
        b.reset(seed=11)
        for k in range(40):
            action = np.array([np.sin(k / 5.0)])
            ra, rb = a.step(action), b.step(action)
            assert same(ra[0], rb[0]) and ra[1:] == rb[1:]
    finally:
        a.close()
        b.close()


def test_fps_holds_the_action(server):
    fast = robosim_envs.SceneEnv("cartpole", server=server.address)
    slow = robosim_envs.SceneEnv("cartpole", server=server.address, fps=30)
    try:
        assert fast.fps == 60 and fast.steps_per_frame == 1 and slow.steps_per_frame == 2
        fast.reset(seed=5)
        slow.reset(seed=5)
        action = np.array([0.3])
        _, r1, *_ = fast.step(action)
        o2, r2, *_ = fast.step(action)
        o, r, *_ = slow.step(action)
        assert same(o, o2)
        assert r == pytest.approx(r1 + r2, abs=1e-12)  # the frame's reward sums its control steps
    finally:
        fast.close()
        slow.close()
    with pytest.raises(ValueError, match="must divide the control rate"):
        robosim_envs.SceneEnv("cartpole", server=server.address, fps=7)


def test_wrong_scene_or_camera_is_refused(server):
    with pytest.raises(ValueError, match="runs scene 'cartpole', not 'tbar_push'"):
        robosim_envs.SceneEnv("tbar_push", server=server.address)
    with pytest.raises(ValueError, match="rgb cameras"):
        robosim_envs.SceneEnv("cartpole", server=server.address, cameras=["nope"])
