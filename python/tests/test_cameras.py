"""Cameras from Python: image topics, robosim.image_to_numpy, and RoboSimVectorEnv's pixel observations.

Against the real `sim-server` (``$ROBOSIM_BIN_DIR``, started with the helpers of ``test_server.py``;
skipped without it unless ``ROBOSIM_REQUIRE_SERVER=1``), rendering with OSMesa (``$ROBOSIM_RENDER_BACKEND``
overrides). ``Scenes/test/camera_box``: a red 12 cm cube at ``(box_x, box_y, 0.06)`` (the first two
observation values) under the ``top`` camera at ``(0, 0, 2)`` looking straight down (image right = world
+x, image up = world +y), so the cube's top centre is at ``X = x, Y = -y, Z = 2 - 0.12`` in the optical
frame. The decoder tests at the top need no server.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest

import robosim
from robosim import image_to_numpy
from robosim.msgs.robosim import srv_pb2 as robosim_srv
from robosim.msgs.sensor_msgs import msg_pb2 as sensor_msgs

RENDER_BACKEND = os.environ.get("ROBOSIM_RENDER_BACKEND", "osmesa")
ENVS = 2
BOX_TOP = 0.12
CAMERA_HEIGHT = 2.0
EPISODE_STEPS = 50  # camera_box: 0.5 s episodes, dt 0.01, decimation 1


# -- image_to_numpy (no server) ---------------------------------------------------------------------

def test_image_to_numpy_rgb8_and_padding():
    a = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    img = image_to_numpy(sensor_msgs.Image(height=2, width=4, encoding="rgb8", step=12, data=a.tobytes()))
    assert img.dtype == np.uint8 and img.shape == (2, 4, 3) and np.array_equal(img, a)
    img[0, 0, 0] = 99  # a writable copy by default

    padded = np.zeros((2, 16), np.uint8)
    padded[:, :12] = a.reshape(2, 12)
    img = image_to_numpy(sensor_msgs.Image(height=2, width=4, encoding="rgb8", step=16, data=padded.tobytes()))
    assert np.array_equal(img, a)


def test_image_to_numpy_32fc1_both_byte_orders():
    z = np.array([[1.5, np.inf], [2.0, 0.25]], np.float32)
    little = sensor_msgs.Image(height=2, width=2, encoding="32FC1", step=8, data=z.astype("<f4").tobytes())
    big = sensor_msgs.Image(height=2, width=2, encoding="32FC1", step=8, is_bigendian=1,
                            data=z.astype(">f4").tobytes())
    for msg in (little, big):
        img = image_to_numpy(msg)
        assert img.dtype == np.float32 and img.dtype.isnative and img.shape == (2, 2)
        assert np.array_equal(img, z)
    view = image_to_numpy(little, copy=False)
    assert np.array_equal(view, z) and not view.flags.writeable


def test_image_to_numpy_refuses_other_encodings_and_bad_sizes():
    with pytest.raises(ValueError, match="mono8"):
        image_to_numpy(sensor_msgs.Image(height=1, width=2, encoding="mono8", step=2, data=b"ab"))
    with pytest.raises(ValueError, match="bytes"):
        image_to_numpy(sensor_msgs.Image(height=2, width=2, encoding="rgb8", step=6, data=b"x" * 11))
    with pytest.raises(ValueError, match="step"):
        image_to_numpy(sensor_msgs.Image(height=1, width=2, encoding="32FC1", step=4, data=b"x" * 4))


# -- helpers ----------------------------------------------------------------------------------------

def red_centroid(rgb: np.ndarray):
    """(u, v, count) of the red pixels (R > 150, R - G > 80, R - B > 80) of an HxWx3 uint8 image."""
    c = rgb.astype(np.int32)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    vs, us = np.nonzero((r > 150) & (r - g > 80) & (r - b > 80))
    if us.size == 0:
        return math.nan, math.nan, 0
    return float(us.mean()), float(vs.mean()), int(us.size)


def project_box_top(x: float, y: float, k) -> tuple:
    """Pixel of the box's top centre seen by the top camera with intrinsics k (camera_info.k)."""
    X, Y, Z = x, -y, CAMERA_HEIGHT - BOX_TOP
    return k[0] * X / Z + k[2], k[4] * Y / Z + k[5]


def describe_k(camera) -> list:
    """camera_info.k of a camera of /sim/describe: fy = fx = (h/2)/tan(fovy/2), c = (size-1)/2."""
    f = (camera.height / 2) / math.tan(math.radians(camera.fovy_deg) / 2)
    return [f, 0, (camera.width - 1) / 2, 0, f, (camera.height - 1) / 2, 0, 0, 1]


def assert_box_seen(rgb: np.ndarray, x: float, y: float, k, what: str) -> None:
    u, v, count = red_centroid(rgb)
    eu, ev = project_box_top(x, y, k)
    assert count > 20, f"{what}: only {count} red pixels"
    assert abs(u - eu) < 1.5 and abs(v - ev) < 1.5, f"{what}: centroid ({u:.2f}, {v:.2f}) vs box ({eu:.2f}, {ev:.2f})"


def floor_mask(shape, u: float, v: float, radius: float = 20.0) -> np.ndarray:
    vs, us = np.mgrid[0:shape[0], 0:shape[1]]
    return (us - u) ** 2 + (vs - v) ** 2 > radius ** 2


# -- servers ----------------------------------------------------------------------------------------

def _server(tmp_path_factory, scene: str, envs: int):
    import test_server  # skips (or fails, with ROBOSIM_REQUIRE_SERVER=1) when sim-server is not built

    return test_server.run_server(tmp_path_factory, scene, "--mode", "lockstep", "--envs", str(envs),
                                  "--render-backend", RENDER_BACKEND)


@pytest.fixture(scope="module")
def box_server(tmp_path_factory):
    with _server(tmp_path_factory, "Scenes/test/camera_box", ENVS) as srv:
        yield srv


@pytest.fixture(scope="module")
def top_camera(box_server):
    with robosim.Client(box_server.address) as c:
        d = c.describe()
    assert d.render_backend == RENDER_BACKEND
    cameras = {cam.name: cam for cam in d.cameras}
    top = cameras["top"]
    assert (top.width, top.height, top.rgb, top.depth, top.observation) == (160, 120, True, True, True)
    assert top.frame_id
    return top


def topic_frames_after_reset(server, seed: int, timeout: float = 60.0):
    """Resets env 0 with ``seed`` (a fixed state) until a frame of image_raw, depth and camera_info of
    ``top`` has arrived on each; returns (box_x, box_y, rgb msg, depth msg, camera_info msg)."""
    request = robosim_srv.ResetRequest(env_ids=[0], seed=seed)
    with robosim.Client(server.address, name="py_camera_viewer", timeout=30.0) as client:
        # The state every frame below shows: renders of earlier states are done by the time the
        # subscriptions are connected.
        first = client.call("/sim/reset", request, robosim_srv.ResetResponse)
        x, y = first.observations[0], first.observations[1]
        subs = {
            "rgb": client.subscribe("/env_0/camera/top/image_raw", sensor_msgs.Image),
            "depth": client.subscribe("/env_0/camera/top/depth", sensor_msgs.Image),
            "info": client.subscribe("/env_0/camera/top/camera_info", sensor_msgs.CameraInfo),
        }
        for sub in subs.values():
            assert sub.wait_connected(timeout=20.0), f"{sub.topic}: subscription did not connect"
        got = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(subs):
            assert time.monotonic() < deadline, f"no frames on {sorted(set(subs) - set(got))} within {timeout:g} s"
            again = client.call("/sim/reset", request, robosim_srv.ResetResponse)
            assert list(again.observations) == list(first.observations)
            poll_until = time.monotonic() + 0.5
            for key, sub in subs.items():
                if key not in got:
                    try:
                        got[key] = sub.recv(timeout=max(0.01, poll_until - time.monotonic()))
                    except TimeoutError:
                        pass
    return x, y, got["rgb"], got["depth"], got["info"]


# -- topics ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [3, 11])
def test_top_camera_image_shows_box_where_camera_info_projects_it(box_server, top_camera, seed):
    x, y, rgb_msg, _, info = topic_frames_after_reset(box_server, seed)
    assert rgb_msg.encoding == "rgb8" and rgb_msg.step == 3 * rgb_msg.width
    assert (rgb_msg.width, rgb_msg.height) == (top_camera.width, top_camera.height)
    assert rgb_msg.header.frame_id == info.header.frame_id == top_camera.frame_id
    assert (info.width, info.height) == (top_camera.width, top_camera.height)
    k = list(info.k)
    assert len(k) == 9 and k[1] == k[3] == k[6] == k[7] == 0 and k[8] == 1
    assert k == pytest.approx(describe_k(top_camera))

    rgb = image_to_numpy(rgb_msg)
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8
    assert_box_seen(rgb, x, y, k, f"seed {seed}: box at ({x:.3f}, {y:.3f})")


def test_top_camera_depth_is_metres_along_the_optical_axis(box_server, top_camera):
    x, y, rgb_msg, depth_msg, info = topic_frames_after_reset(box_server, 5)
    assert depth_msg.encoding == "32FC1" and depth_msg.step == 4 * depth_msg.width
    depth = image_to_numpy(depth_msg)
    assert depth.shape == (120, 160) and depth.dtype == np.float32
    u, v, count = red_centroid(image_to_numpy(rgb_msg))
    assert count > 20
    floor = depth[floor_mask(depth.shape, u, v)]
    assert floor.size > 0.8 * depth.size
    assert np.all(np.abs(floor - CAMERA_HEIGHT) < 0.01), f"floor depth in [{floor.min()}, {floor.max()}]"
    eu, ev = project_box_top(x, y, list(info.k))
    assert abs(depth[round(ev), round(eu)] - (CAMERA_HEIGHT - BOX_TOP)) < 0.01


# -- RoboSimVectorEnv pixel observations ------------------------------------------------------------

def test_gym_state_plus_pixels_on_camera_box(box_server, top_camera):
    gymnasium = pytest.importorskip("gymnasium")
    from gymnasium import spaces

    from robosim.gym import RoboSimVectorEnv

    k = describe_k(top_camera)
    with RoboSimVectorEnv(box_server.address, obs_mode="state+pixels") as env:
        assert env.obs_mode == "state+pixels"
        single = env.single_observation_space
        assert isinstance(single, spaces.Dict) and set(single.spaces) == {"pixels", "state"}
        assert set(single["pixels"].spaces) == {"top", "top_depth", "side"}
        assert single["pixels"]["top"] == spaces.Box(0, 255, (120, 160, 3), np.uint8)
        assert single["pixels"]["side"] == spaces.Box(0, 255, (96, 128, 3), np.uint8)
        assert single["pixels"]["top_depth"] == spaces.Box(0.0, np.inf, (120, 160), np.float32)
        assert single["state"] == spaces.Box(-np.inf, np.inf, (4,), np.float64)
        assert env.observation_space == gymnasium.vector.utils.batch_space(single, ENVS)

        def check(obs, what):
            assert set(obs) == {"pixels", "state"}
            pixels, state = obs["pixels"], obs["state"]
            assert pixels["top"].shape == (ENVS, 120, 160, 3) and pixels["top"].dtype == np.uint8
            assert pixels["side"].shape == (ENVS, 96, 128, 3) and pixels["side"].dtype == np.uint8
            assert pixels["top_depth"].shape == (ENVS, 120, 160) and pixels["top_depth"].dtype == np.float32
            assert state.shape == (ENVS, 4) and state.dtype == np.float64
            assert obs in env.observation_space
            for i in range(ENVS):
                assert_box_seen(pixels["top"][i], state[i, 0], state[i, 1], k, f"{what}, env {i}")

        obs, infos = env.reset(seed=7)
        assert infos == {}
        check(obs, "reset")
        previous = obs["state"].copy()
        finals = 0
        for t in range(EPISODE_STEPS + 10):
            obs, reward, terminated, truncated, infos = env.step(np.zeros(env.action_space.shape))
            check(obs, f"step {t}")
            if "final_obs" in infos:
                for i in np.flatnonzero(infos["_final_obs"]):
                    final = infos["final_obs"][i]
                    assert set(final) == {"pixels", "state"}
                    assert final["pixels"]["top"].shape == (120, 160, 3) and final["pixels"]["top"].dtype == np.uint8
                    assert final["pixels"]["top_depth"].shape == (120, 160)
                    assert final["state"].shape == (4,)
                    assert final in env.single_observation_space
                    # Nothing moves the box: the episode ended where the previous step left it.
                    assert np.allclose(final["state"], previous[i], atol=1e-6)
                    assert_box_seen(final["pixels"]["top"], final["state"][0], final["state"][1], k,
                                    f"final image, step {t}, env {i}")
                    finals += 1
            previous = obs["state"].copy()
        assert finals >= ENVS  # every env's first episode ended within the 60 steps


def test_gym_pixels_refused_without_observation_cameras(tmp_path_factory):
    pytest.importorskip("gymnasium")
    from robosim.gym import RoboSimVectorEnv

    with pytest.raises(ValueError, match="obs_mode"):
        RoboSimVectorEnv("tcp://127.0.0.1:1", obs_mode="rgb")  # checked before connecting
    with _server(tmp_path_factory, "Scenes/cartpole", 1) as srv:
        for mode in ("pixels", "state+pixels"):
            with pytest.raises(ValueError, match="cartpole"):
                RoboSimVectorEnv(srv.address, obs_mode=mode)
        with RoboSimVectorEnv(srv.address) as env:  # state still works, and no lease was left behind
            obs, _ = env.reset(seed=1)
            assert isinstance(obs, np.ndarray) and obs.shape == (1, env.observation_size)


def test_gym_pixels_on_object_tracker(tmp_path_factory):
    pytest.importorskip("gymnasium")
    from gymnasium import spaces

    from robosim.gym import RoboSimVectorEnv

    with _server(tmp_path_factory, "Scenes/object_tracker", ENVS) as srv:
        with RoboSimVectorEnv(srv.address, obs_mode="pixels") as env:
            assert isinstance(env.single_observation_space, spaces.Dict)
            assert set(env.single_observation_space.spaces) == {"pixels"}
            assert env.single_observation_space["pixels"]["follower_camera"] == \
                spaces.Box(0, 255, (120, 160, 3), np.uint8)
            obs, _ = env.reset(seed=2)
            for what in ("reset", "step"):
                assert set(obs) == {"pixels"} and set(obs["pixels"]) == {"follower_camera"}
                images = obs["pixels"]["follower_camera"]
                assert images.shape == (ENVS, 120, 160, 3) and images.dtype == np.uint8
                for i in range(ENVS):
                    assert np.any(images[i] != images[i, 0, 0]), f"{what}: env {i} image is one colour"
                assert obs in env.observation_space
                obs, *_ = env.step(np.zeros(env.action_space.shape))
