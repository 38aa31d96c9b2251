"""Registered Gymnasium envs, one per scene, with the observations of a RoboSim dataset.

    >>> import gymnasium, robosim                                 # importing robosim registers them
    >>> env = gymnasium.make("robosim/Cartpole-v0")               # doctest: +SKIP  (starts a sim-server)
    >>> obs, info = env.reset(seed=0)                              # doctest: +SKIP
    >>> obs["observation.state"]                                   # doctest: +SKIP  float32 (4,)

The ids are ``robosim/<Scene>-v0`` for each scene of ``Scenes/`` (:data:`SCENES`; the scene name in
CamelCase: ``cartpole`` -> ``robosim/Cartpole-v0``, ``tbar_push`` -> ``robosim/TbarPush-v0``).
Observations use the feature names of the LeRobot datasets ``sim-collect`` records (docs/collect.md),
with the same dtypes and layout, so that a policy trained on such a dataset sees in the env what it
saw in training:

- ``observation.state``: the robot's components of the task's observation vector, ``float32`` (the
  dataset stores float32);
- ``observation.environment_state``: the components that describe the environment (the task's
  ``environment_observations``: a cartpole's pole, tbar_push's T-bar and slot), when the task names
  any, as LeRobot's PushT has it;
- ``observation.images.<cam>``: ``uint8 (H, W, 3)`` rgb for each camera asked for
  (``cameras="all"``: every rgb camera of the scene, as ``sim-collect`` records them);
- ``info["is_success"]``: the task's success flag (the dataset's ``next.success``).

``fps`` (default: the scene's control rate, as ``sim-collect --fps``) holds each action for
``control rate / fps`` control steps, as the recorder did; the reward is their sum.

Server restarts: the env survives its server dying and coming back (see
:class:`robosim.gym.RoboSimVectorEnv`, ``reconnect_timeout``): the step that finds it restarted
returns ``truncated=True`` with ``info["server_restarted"]`` and ``info["reason"] == "server
restarted"``, and ``reconnects``/``episodes_lost`` count it. A server the env started itself
(no ``server=``) is started again, on the same address, when it dies (with a logged warning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import gymnasium
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from .client import Client
from .images import image_to_numpy
from .msgs.robosim import srv_pb2 as _srv

__all__ = ["SCENES", "SceneEnv", "env_id", "register_envs", "STATE_KEY", "ENV_STATE_KEY", "IMAGE_PREFIX"]

#: The scenes of ``Scenes/`` that get an env id (``Scenes/test`` holds test fixtures only).
SCENES: Tuple[str, ...] = ("cartpole", "cartpole_discrete", "gym_ant", "gym_humanoid",
                           "gym_inverted_pendulum", "object_tracker", "object_tracker_pixels", "tbar_push")
#: The dataset feature names (LeRobot's ``OBS_STATE`` and ``OBS_IMAGES`` prefixes).
STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"
IMAGE_PREFIX = "observation.images."

#: The task text sim-collect gives each scene's episodes by default (``--task``), as ``task_description``.
DEFAULT_TASKS = {"tbar_push": "push the T-bar into the slot", "cartpole": "balance the pole on the cart",
                 "object_tracker": "follow the leader robot"}


def env_id(scene: str) -> str:
    """``robosim/<Scene>-v0`` for a scene name (``"tbar_push"`` -> ``"robosim/TbarPush-v0"``)."""
    return "robosim/" + "".join(part[:1].upper() + part[1:] for part in scene.split("_")) + "-v0"


def register_envs() -> List[str]:
    """Registers ``robosim/<Scene>-v0`` for every scene in :data:`SCENES` (again: no-op); returns the ids."""
    ids = []
    for scene in SCENES:
        name = env_id(scene)
        if name not in gymnasium.registry:
            gymnasium.register(name, entry_point="robosim.envs:SceneEnv", kwargs={"scene": scene})
        ids.append(name)
    return ids


class SceneEnv(gymnasium.Env):
    """One env of a scene, with dataset-named observations (see the module docstring).

    Args:
        scene: the scene's name or folder. Without ``server``, a ``sim-server`` of this scene is started
            (:class:`robosim.server.LocalServer`, lockstep, one env) and stopped by :meth:`close`.
        server: the address of a running lockstep server (or a :class:`robosim.Client`) to lease one env
            of instead; its scene must be ``scene`` (checked by name) when both are given.
        cameras: ``None`` (state only), ``"all"`` (every rgb camera of the scene), or camera names.
        fps: frames per second, as the dataset's (``meta/info.json`` ``fps``); must divide the
            control rate. None: the control rate.
        render_mode: ``"rgb_array"``: :meth:`render` returns ``render_camera``'s image (default: the
            first camera asked for, else the scene's first rgb camera).
        seed_index: the index of this env's seed stream: ``reset(seed=s)`` gives the episode of
            ``(s, seed_index)`` whichever of the server's envs runs it.
        bin_dir: where ``sim-server`` is (see :func:`robosim.server.find_sim_server`).
        task: the task text (``task_description``, as lerobot's envs have); default: sim-collect's.
        Other keyword arguments go to :class:`robosim.gym.RoboSimVectorEnv` (``timeout``, ``transport``...).
    """

    metadata: Dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, scene: Union[str, Path, None] = None, server: Union[str, Client, None] = None,
                 cameras: Union[str, Sequence[str], None] = None, fps: Optional[float] = None,
                 render_mode: Optional[str] = None, render_camera: Optional[str] = None,
                 seed_index: int = 0, bin_dir: Union[str, Path, None] = None, task: Optional[str] = None,
                 **kwargs: Any):
        from .gym import RoboSimVectorEnv  # noqa: PLC0415

        if scene is None and server is None:
            raise ValueError("SceneEnv needs a scene (to start a sim-server) or the server= of a running one")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.seed_index = int(seed_index)
        self._local = None
        self.vector = None
        try:
            if server is None:
                from .server import LocalServer  # noqa: PLC0415
                self._local = LocalServer(scene, envs=1, bin_dir=bin_dir)
                server = self._local.address
                # A server of our own listens on loopback without keys, whatever the environment says.
                kwargs["server_key"] = ""
            probe = server if isinstance(server, Client) else Client(
                server, name="robosim.envs", timeout=10.0, server_key=kwargs.get("server_key"), key=kwargs.get("key"))
            try:
                d = probe.describe()
            finally:
                if probe is not server:
                    probe.close()
            if scene is not None and d.scene != Path(scene).name:
                raise ValueError(f"the server at {getattr(server, 'server', server)} runs scene {d.scene!r}, not "
                                 f"{Path(scene).name!r}")
            self.scene: str = d.scene
            rgb_cameras = [c.name for c in d.cameras if c.rgb]
            if cameras is None:
                names: List[str] = []
            elif isinstance(cameras, str):
                if cameras != "all":
                    raise ValueError(f"cameras must be None, 'all' or a list of camera names, got {cameras!r}")
                names = rgb_cameras
            else:
                names = list(cameras)
            bad = [n for n in names if n not in rgb_cameras]
            if bad:
                raise ValueError(f"cameras {bad}: scene {d.scene!r} has the rgb cameras {rgb_cameras}")
            #: The cameras in the observation (``observation.images.<cam>``), in order.
            self.cameras: Tuple[str, ...] = tuple(names)
            kwargs.pop("num_envs", None)
            kwargs.pop("autoreset_mode", None)
            kwargs.pop("obs_mode", None)
            self.vector = RoboSimVectorEnv(server, num_envs=1, autoreset_mode=AutoresetMode.NEXT_STEP,
                                           obs_mode="state+pixels" if names else "state",
                                           cameras=names or None, client_name=f"robosim.envs:{d.scene}", **kwargs)
            if self._local is not None:
                self.vector._revive = self._local.revive  # a dead server of our own is started again

            control_rate = 1.0 / (d.physics_dt * d.decimation)
            #: The env's frames per second, and the control steps each action is held for.
            self.fps = float(control_rate if fps is None else fps)
            hold = round(control_rate / self.fps)
            if hold < 1 or abs(control_rate / hold - self.fps) > 1e-6 * self.fps:
                raise ValueError(f"fps {self.fps:g} must divide the control rate {control_rate:g} Hz "
                                 f"(e.g. {control_rate:g} or {control_rate / 2:g})")
            self.steps_per_frame = int(hold)
            self.metadata = dict(self.metadata, render_fps=self.fps)

            # The state split as sim-collect records it: the robot's components, then the environment's.
            observation_names = list(self.vector.observation_names)
            environment = set(d.task.environment_observations)
            self._state_index = np.array([i for i, n in enumerate(observation_names) if n not in environment], dtype=np.intp)
            self._env_state_index = np.array([i for i, n in enumerate(observation_names) if n in environment], dtype=np.intp)
            parts: Dict[str, spaces.Space] = {
                STATE_KEY: spaces.Box(-np.inf, np.inf, (len(self._state_index),), np.float32)}
            if len(self._env_state_index):
                parts[ENV_STATE_KEY] = spaces.Box(-np.inf, np.inf, (len(self._env_state_index),), np.float32)
            sizes = {c.name: (int(c.height), int(c.width), 3) for c in d.cameras}
            for name in names:
                parts[IMAGE_PREFIX + name] = spaces.Box(0, 255, sizes[name], np.uint8)
            self.observation_space = spaces.Dict(parts)
            self.action_space = self.vector.single_action_space
            #: The task's names: of the whole observation vector, of ``observation.state`` and
            #: ``observation.environment_state`` (the dataset's ``names``), and of ``action``.
            self.task = self.vector.task
            self.observation_names = self.vector.observation_names
            self.state_names = [observation_names[i] for i in self._state_index]
            self.environment_state_names = [observation_names[i] for i in self._env_state_index]
            self.action_names = self.vector.action_names
            self.task_description = task or DEFAULT_TASKS.get(d.scene, d.scene)
            self.render_camera = render_camera or (names[0] if names else (rgb_cameras[0] if rgb_cameras else None))
            if render_mode == "rgb_array" and self.render_camera not in rgb_cameras:
                raise ValueError(f"render_mode='rgb_array' needs an rgb camera; scene {d.scene!r} has {rgb_cameras}")
            self._render_size = sizes.get(self.render_camera) if self.render_camera else None
            self._last: Dict[str, np.ndarray] = {}
        except BaseException:
            self.close()
            raise

    # -- Gymnasium API ------------------------------------------------------------------------------
    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None
              ) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
        """Starts an episode: with ``seed``, the one of ``(seed, seed_index)``; without, the next one."""
        super().reset(seed=seed)
        if seed is None:
            obs, _ = self.vector.reset()
        else:
            obs, _ = self.vector.reset(seed=int(seed), options={"seed_indices": [self.seed_index]})
        return self._observation(obs), {"is_success": False}

    def step(self, action: Any) -> Tuple[Dict[str, np.ndarray], float, bool, bool, Dict[str, Any]]:
        """One frame: the action held for ``steps_per_frame`` control steps (fewer when the episode
        ends); the reward is their sum, ``info["is_success"]`` whether the task reported success."""
        a = np.asarray(action, dtype=np.float64)
        a = a.reshape(1) if self.vector.action_choices > 0 else a.reshape(1, -1)
        total, success = 0.0, False
        terminated = truncated = False
        obs = None
        info: Dict[str, Any] = {}
        for _ in range(self.steps_per_frame):
            obs, reward, term, trunc, infos = self.vector.step(a)
            total += float(reward[0])
            success = success or bool(infos["is_success"][0])
            terminated, truncated = bool(term[0]), bool(trunc[0])
            if "server_restarted" in infos and bool(infos["server_restarted"][0]):  # cut short by a server restart
                info.update(server_restarted=True, reason=str(infos["reason"][0]))
            if terminated or truncated:
                break
        return self._observation(obs), total, terminated, truncated, {"is_success": success, **info}

    @property
    def reconnects(self) -> int:
        """Recoveries from server restarts (see :class:`robosim.gym.RoboSimVectorEnv`)."""
        return self.vector.reconnects if self.vector is not None else 0

    @property
    def episodes_lost(self) -> int:
        """Episodes a server restart cut short."""
        return self.vector.episodes_lost if self.vector is not None else 0

    def render(self) -> Optional[np.ndarray]:
        """``render_mode="rgb_array"``: the ``render_camera`` image of the current state, ``uint8 (H, W, 3)``."""
        if self.render_mode != "rgb_array":
            return None
        key = IMAGE_PREFIX + self.render_camera
        if key in self._last:
            return self._last[key].copy()
        request = _srv.RenderRequest(lease=self.vector.lease, env_ids=list(self.vector.env_ids),
                                     cameras=[self.render_camera])
        response = self.vector.client.call("/sim/render", request, _srv.RenderResponse)
        for image in response.images:
            if image.encoding == "rgb8":
                return np.array(image_to_numpy(image), dtype=np.uint8)
        raise RuntimeError(f"/sim/render returned no rgb image of camera {self.render_camera!r}")

    def close(self) -> None:
        if getattr(self, "vector", None) is not None:
            self.vector.close()
            self.vector = None
        if getattr(self, "_local", None) is not None:
            self._local.close()
            self._local = None

    def _observation(self, obs: Any) -> Dict[str, np.ndarray]:
        state = np.asarray((obs["state"] if isinstance(obs, dict) else obs)[0], dtype=np.float32)
        out = {STATE_KEY: state[self._state_index]}
        if len(self._env_state_index):
            out[ENV_STATE_KEY] = state[self._env_state_index]
        if isinstance(obs, dict):
            for name in self.cameras:
                out[IMAGE_PREFIX + name] = np.ascontiguousarray(obs["pixels"][name][0], dtype=np.uint8)
        self._last = out
        return {k: v.copy() for k, v in out.items()}

    def __repr__(self) -> str:
        return f"SceneEnv({getattr(self, 'scene', None)!r}, cameras={getattr(self, 'cameras', ())})"
