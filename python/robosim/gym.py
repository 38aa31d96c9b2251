"""Gymnasium vector environment over a RoboSim server's ``/sim/step`` (lockstep mode).

    >>> from robosim.gym import RoboSimVectorEnv
    >>> envs = RoboSimVectorEnv("tcp://127.0.0.1:7700", num_envs=8)   # doctest: +SKIP
    >>> obs, infos = envs.reset(seed=1)                                # doctest: +SKIP
    >>> obs, rewards, terminated, truncated, infos = envs.step(envs.action_space.sample())  # doctest: +SKIP
    >>> envs.close()                                                   # doctest: +SKIP

One :class:`RoboSimVectorEnv` drives a set of the server's envs (by default it leases them, so that
two trainers on one server never step each other's envs). Each ``step`` is one ``/sim/step`` call for
all of them; the server steps them in parallel and resets the envs whose episode ended within the
same call, so the env uses Gymnasium's ``SAME_STEP`` autoreset mode: the observation returned for
such an env is the first of its new episode, and the last one of the finished episode is in
``infos["final_obs"][i]`` (an object array, ``None`` elsewhere) with ``infos["_final_obs"][i]`` set.
``autoreset_mode=AutoresetMode.NEXT_STEP`` (gymnasium's own default, EnvPool's) has the server start
the next episode in the env's next step instead: the ending step returns the final observation, and
the next step ignores the env's action and returns the first observation, reward 0, not done.

Pixel observations: ``obs_mode="pixels"`` or ``"state+pixels"`` asks the server to render the scene's
observation cameras (``/sim/describe``'s ``cameras`` with ``observation`` set) in every ``/sim/step``
and ``/sim/reset`` (``render``); observations are then dicts::

    {"pixels": {"<cam>": uint8 (num_envs, H, W, 3),          # cameras with rgb
                "<cam>_depth": float32 (num_envs, H, W)},   # cameras with depth: metres, +inf = no hit
     "state": float64 (num_envs, observation_size)}         # "state+pixels" only

and ``infos["final_obs"][i]`` holds the final observation in the same (unbatched) dict form.

Transport: on the server's own machine, state observations go through a shared-memory step channel
(``/sim/open_channel``, :mod:`robosim.channel`) instead of a socket: same results, far less time
per call. ``transport="socket"`` turns it off; ``"shm"`` insists on it.

This module is the only part of :mod:`robosim` that needs ``gymnasium`` (``pip install 'robosim[gym]'``).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import gymnasium
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import channel as _channel
from .client import Client, ClosedError, ProtocolError, ServiceError
from .images import image_to_numpy
from .msgs.robosim import srv_pb2 as _srv
from .reconnect import RESTART_REASON, ReconnectingMixin, ServerChangedError, ServerLostError

__all__ = ["OBS_MODES", "TRANSPORTS", "RoboSimEnv", "RoboSimVectorEnv", "ServerChangedError", "ServerLostError"]

_UINT64_MAX = 2**64 - 1

#: The observation modes of :class:`RoboSimVectorEnv`.
OBS_MODES = ("state", "pixels", "state+pixels")
#: How :class:`RoboSimVectorEnv` reaches the server for reset and step.
TRANSPORTS = ("auto", "shm", "socket")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# StepRequest.actions is field 3, `repeated double` (packed): key byte (3 << 3) | 2.
_ACTIONS_KEY = bytes([(3 << 3) | 2])


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise ValueError("varint too long")


class _Step:
    """The arrays of a ``StepResponse`` (obs and final_obs flat, as on the wire)."""

    __slots__ = ("observations", "rewards", "terminated", "truncated", "final_observations", "final_env_ids",
                 "images", "final_images", "success")


def _parse_step_response(buf: bytes) -> _Step:
    """Decodes a ``robosim.StepResponse`` straight into numpy arrays.

    The server writes every repeated field packed, once: then the arrays are read with
    ``np.frombuffer`` (faster than going through protobuf's repeated fields). Anything else that a
    protobuf encoder may legally write (unpacked or split fields, multi-byte bools, unknown fields)
    goes through the generated ``StepResponse`` instead, with the same result; so do responses with
    images (``images``/``final_images``: lists of ``sensor_msgs.Image``, empty without them).
    """
    try:
        spans = [None] * 10
        pos, end = 0, len(buf)
        while pos < end:
            key = buf[pos]
            if key & 7 != 2 or not (1 <= key >> 3 <= 6 or key >> 3 == 9) or spans[key >> 3] is not None:
                raise ValueError("not the packed layout")
            length = buf[pos + 1]
            pos += 2
            if length >= 0x80:
                length, pos = _read_varint(buf, pos - 1)
            if pos + length > end:
                raise ValueError("truncated")
            spans[key >> 3] = (pos, length)
            pos += length
        out = _Step()
        doubles = []
        for span in (spans[1], spans[2], spans[5]):
            if span is None:
                doubles.append(np.zeros(0))
            elif span[1] % 8:
                raise ValueError("partial double")
            else:
                doubles.append(np.frombuffer(buf, "<f8", span[1] >> 3, span[0]).astype(np.float64))
        out.observations, out.rewards, out.final_observations = doubles
        flags = []
        for span in (spans[3], spans[4], spans[9]):
            if span is None:
                flags.append(np.zeros(0, np.bool_))
            else:
                if buf[span[0]:span[0] + span[1]].strip(b"\x00\x01"):
                    raise ValueError("multi-byte bool")
                flags.append(np.frombuffer(buf, np.uint8, span[1], span[0]).astype(np.bool_))
        out.terminated, out.truncated, out.success = flags
        ids: List[int] = []
        if spans[6] is not None:
            pos, stop = spans[6][0], spans[6][0] + spans[6][1]
            while pos < stop:
                value, pos = _read_varint(buf, pos)
                ids.append(value)
            if pos != stop:
                raise ValueError("env id runs past its field")
        out.final_env_ids = ids
        out.images = out.final_images = []
        return out
    except (ValueError, IndexError):
        pass
    try:
        r = _srv.StepResponse.FromString(buf)
    except Exception as exc:
        raise ProtocolError(f"/sim/step: reply does not decode as robosim.StepResponse: {exc}") from None
    out = _Step()
    out.observations = np.asarray(r.observations, dtype=np.float64)
    out.rewards = np.asarray(r.rewards, dtype=np.float64)
    out.terminated = np.asarray(r.terminated, dtype=np.bool_)
    out.truncated = np.asarray(r.truncated, dtype=np.bool_)
    out.final_observations = np.asarray(r.final_observations, dtype=np.float64)
    out.final_env_ids = list(r.final_env_ids)
    out.success = np.asarray(r.success, dtype=np.bool_)
    out.images = list(r.images)
    out.final_images = list(r.final_images)
    return out


class RoboSimVectorEnv(ReconnectingMixin, VectorEnv):
    """A :class:`gymnasium.vector.VectorEnv` whose sub-environments are envs of a RoboSim server.

    Args:
        server: the server's service address (``tcp://host:port``), or a connected
            :class:`robosim.Client` (which is then not closed by :meth:`close`). None: ``$SIM_SERVER``,
            else ``tcp://127.0.0.1:7700``.
        num_envs: how many envs to drive; None: all of the server's envs.
        lease: lease the envs (``/sim/lease``), so that no other client can step them; False drives
            envs ``0 .. num_envs-1`` without a lease (refused by the server if someone else leased one).
        client_name: the name the lease is taken under (shown in errors to other clients).
        ttl_s: the lease expires when this env has not called ``reset``/``step``/``renew_lease`` for
            this long (seconds). A trainer that pauses longer calls :meth:`renew_lease` meanwhile.
        timeout: seconds to wait for each service reply.
        obs_mode: ``"state"`` (the task's observation vector), ``"pixels"`` (the images of the scene's
            observation cameras) or ``"state+pixels"`` (both). The pixel modes raise ``ValueError`` on a
            scene without an observation camera, or a server that renders nothing
            (``--render-backend none``).
        transport: ``"auto"`` steps and resets through a shared-memory step channel when the server
            runs on this machine (a lease, ``obs_mode="state"``, Linux on x86-64), else through
            ``/sim/step``; ``"shm"`` raises when no channel can be had; ``"socket"`` never uses one.
            ``self.transport`` says which is in use. ``send``/``recv``, ``reset`` of a subset of the
            envs or with per-env seeds, and pixel observations always use sockets.
        autoreset_mode: ``AutoresetMode.SAME_STEP`` (default) or ``AutoresetMode.NEXT_STEP`` (see
            above); ``metadata["autoreset_mode"]`` says which.
        cameras: with a pixel ``obs_mode``, the names of the scene's cameras to render, in this order,
            instead of its observation cameras (any camera of ``/sim/describe``; ``sim-collect``
            records every rgb camera of a scene).
        server_key, key: the server's CURVE public key and this client's ``.secret`` file (or Z85
            texts), for a client made here from an address; default ``$ROBOSIM_SERVER_KEY`` and
            ``$ROBOSIM_KEY`` (see :class:`robosim.Client` and ``docs/security.md``). The step channel
            is negotiated over that authenticated connection.
        reconnect_timeout: seconds to wait for a server that died or restarted (default 60; 0: no
            recovery, the error propagates). See "Server restarts" below.

    With ``obs_mode="state"``, observations are ``float64`` arrays ``(num_envs, observation_size)``,
    exactly as the server computed them. With the pixel modes they are dicts (``observation_space``
    is a :class:`gymnasium.spaces.Dict`): ``obs["pixels"]["<cam>"]`` is ``uint8 (num_envs, H, W, 3)``
    for each observation camera with rgb (rows top-down), ``obs["pixels"]["<cam>_depth"]`` is
    ``float32 (num_envs, H, W)`` metres (``+inf`` where nothing was hit) for each one with depth, and
    ``obs["state"]`` (``"state+pixels"`` only) is the ``float64`` state array. Actions are ``(num_envs, action_size)`` and the server clips each component to
    ``[action_low, action_high]``. Rewards are ``float64``, terminations and truncations ``bool``.

    ``reset(seed=s)`` restarts every env's run of episodes from ``(s, env index on the server)``, so
    the same seed and actions give the same trajectories.
    ``options={"reset_mask": mask}`` resets only the envs where ``mask`` is True (the others keep
    their current observation). ``options={"seed_indices": [...]}`` (with a seed) gives each env the
    index its seed stream uses instead of its index on the server, so that an episode depends only on
    ``(seed, index)``, whichever env runs it. Other option keys are ignored.

    For an env that auto-resets in a step, ``infos["final_obs"][i]`` is its final observation in the
    single-env form of the observation (an array, or a dict of arrays in the pixel modes).

    Server restarts (:mod:`robosim.reconnect`): when the server dies and the same server command is
    started again on the same address (``kill -9``, a crash, a rolled pod), the failed ``step`` waits
    for it (``/sim/describe`` with backoff, up to ``reconnect_timeout``), checks that it is the same
    scene, env count and spaces (else :class:`ServerChangedError`), gives the old lease back, leases
    the same envs again, sets the reward expression again, reopens the step channel, and resets every
    env to the start of the episode it was playing (per ``(seed, seed index, episode index)``: the
    interrupted episodes are played again, and those that follow are an uninterrupted run's). That
    step returns the envs truncated (reward 0), ``infos["server_restarted"]`` True and
    ``infos["reason"] == "server restarted"``; with same-step autoreset the observations are the
    replayed episodes' first and ``infos["final_obs"]`` the last ones before the restart; with
    next-step autoreset the step returns the last observations and the next step starts the
    episodes again (an env whose reset step was cut starts its next episode at once, not truncated;
    pixel envs end it once more instead). ``reconnects`` and ``episodes_lost`` (the episodes in
    flight) count what happened, and a ``logging`` warning says it, and whether the server restarted
    (a new ``instance_id``) or only lost the lease (a slow server, a lease expired past ``ttl_s``):
    both are recovered the same way. A server that does not come back raises
    :class:`ServerLostError` (a ``ConnectionError``) after ``reconnect_timeout`` seconds.
    ``send``/``recv`` do not recover themselves: the next ``step`` or ``reset`` does.
    """

    metadata: Dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, server: Union[str, Client, None] = None, num_envs: Optional[int] = None,
                 lease: bool = True, client_name: str = "robosim.gym", ttl_s: float = 30.0,
                 timeout: float = 10.0, obs_mode: str = "state", transport: str = "auto",
                 autoreset_mode: Union[AutoresetMode, str] = AutoresetMode.SAME_STEP,
                 cameras: Optional[Sequence[str]] = None, server_key: Optional[str] = None, key: Optional[str] = None,
                 reconnect_timeout: float = 60.0):
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {', '.join(map(repr, OBS_MODES))}, got {obs_mode!r}")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(map(repr, TRANSPORTS))}, got {transport!r}")
        #: ``"shm"`` (a step channel) or ``"socket"`` (``/sim/step``): what reset and step go through.
        self.transport = "socket"
        self._channel: Optional[_channel.StepChannel] = None
        #: ``"state"``, ``"pixels"`` or ``"state+pixels"``.
        self.obs_mode = obs_mode
        self._render = obs_mode != "state"
        if cameras is not None and (isinstance(cameras, str) or not self._render):
            raise ValueError("cameras= takes a list of camera names, with obs_mode 'pixels' or 'state+pixels'")
        self._cameras: List[str] = list(cameras or ())
        mode = AutoresetMode(autoreset_mode)
        if mode not in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP):
            raise ValueError(f"autoreset_mode must be AutoresetMode.SAME_STEP or NEXT_STEP, got {mode}")
        self._next_step = mode == AutoresetMode.NEXT_STEP
        self.metadata = {"autoreset_mode": mode}
        self.render_mode = None
        self.closed = False
        self.lease: str = ""
        #: Seconds a failed call waits for a restarted server (0: no recovery); see "Server restarts".
        self.reconnect_timeout = float(reconnect_timeout)
        #: Recoveries from server restarts, and the episodes in flight they lost.
        self.reconnects = 0
        self.episodes_lost = 0
        # What a recovery needs again: the lease's name and TTL, the transport asked for, the reward.
        self._client_name, self._ttl_s, self._call_timeout = client_name, float(ttl_s), float(timeout)
        self._transport_wanted = transport
        self._reward_expression = ""
        # Called before each poll of a lost server: restarts a server of one's own (robosim.envs).
        self._revive: Optional[Callable[[], Any]] = None
        self._owns_client = not isinstance(server, Client)
        # server_key/key: CURVE keys of a client made here (see robosim.Client; default from the environment).
        self._client: Client = (Client(server, name=client_name, timeout=timeout, server_key=server_key, key=key)
                                if self._owns_client else server)
        try:
            self._setup(num_envs, lease, client_name, ttl_s)
            self._init_schedule()
            if transport != "socket":
                self._open_channel(required=transport == "shm", timeout=timeout)
        except BaseException:
            self._shutdown()
            self.closed = True
            raise

    def _setup(self, num_envs: Optional[int], lease: bool, client_name: str, ttl_s: float) -> None:
        d = self._client.describe()
        self.description = d
        if d.mode != "lockstep":
            raise ValueError(f"RoboSimVectorEnv needs a server in lockstep mode (sim-server --mode lockstep); "
                             f"{self._client.server} runs in {d.mode or 'unknown'} mode")
        self._pixel_keys = self._pixel_layout(d) if self._render else []
        env_count = int(d.env_count)
        if num_envs is None:
            num_envs = env_count
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise TypeError(f"num_envs must be an int or None, not {type(num_envs).__name__}")
        num_envs = int(num_envs)
        if not 1 <= num_envs <= env_count:
            raise ValueError(f"num_envs must be between 1 and {env_count} (the server's env count), got {num_envs}")
        if lease:
            response = self._client.call(
                "/sim/lease", _srv.LeaseRequest(count=num_envs, client_name=client_name, ttl_s=float(ttl_s)),
                _srv.LeaseResponse)
            self.lease = response.lease
            ids = list(response.env_ids)
            if len(ids) != num_envs:
                raise ProtocolError(f"/sim/lease gave {len(ids)} envs, {num_envs} asked")
        else:
            ids = list(range(num_envs))

        self.num_envs = num_envs
        #: The server's indices of the envs this vector env drives, in order.
        self.env_ids: Tuple[int, ...] = tuple(ids)
        self._position = {env_id: i for i, env_id in enumerate(ids)}
        self.observation_size = int(d.observation_size)
        self.action_size = int(d.action_size)
        task = d.task
        #: The task's name (its plugin's), and what success means in words ("" when never reported).
        self.task: str = task.name or d.scene
        self.success_criterion: str = task.success
        #: Names and units of the observation and action components (as in the dataset's features).
        self.observation_names: Tuple[str, ...] = tuple(q.name for q in task.observations) \
            if len(task.observations) == self.observation_size else tuple(f"observation_{i}" for i in range(self.observation_size))
        self.observation_units: Tuple[str, ...] = tuple(q.unit for q in task.observations) \
            if len(task.observations) == self.observation_size else ("",) * self.observation_size
        self.action_names: Tuple[str, ...] = tuple(q.name for q in task.actions) \
            if len(task.actions) == self.action_size else tuple(f"action_{i}" for i in range(self.action_size))
        self.action_units: Tuple[str, ...] = tuple(q.unit for q in task.actions) \
            if len(task.actions) == self.action_size else ("",) * self.action_size
        #: Reward terms and their weights, in the server's order.
        self.reward_terms: Dict[str, float] = {t.name: t.weight for t in task.reward_terms}

        low = np.full(self.action_size, -np.inf) if not d.action_low else np.asarray(d.action_low, np.float64)
        high = np.full(self.action_size, np.inf) if not d.action_high else np.asarray(d.action_high, np.float64)
        if low.shape != (self.action_size,) or high.shape != (self.action_size,):
            raise ProtocolError(f"/sim/describe: action_low/action_high have {low.size}/{high.size} values, "
                                f"action_size is {self.action_size}")
        state_space = spaces.Box(-np.inf, np.inf, (self.observation_size,), np.float64)
        if self._render:
            pixel_spaces: Dict[str, spaces.Space] = {}
            for key, encoding, shape in self._pixel_keys:
                if encoding == "rgb8":
                    pixel_spaces[key] = spaces.Box(0, 255, shape, np.uint8)
                else:
                    pixel_spaces[key] = spaces.Box(0.0, np.inf, shape, np.float32)
            parts: Dict[str, spaces.Space] = {"pixels": spaces.Dict(pixel_spaces)}
            if self.obs_mode == "state+pixels":
                parts["state"] = state_space
            self.single_observation_space = spaces.Dict(parts)
        else:
            self.single_observation_space = state_space
        #: Choices of a discrete action (0: continuous): ``single_action_space`` is then ``Discrete``.
        self.action_choices = int(task.action_choices)
        if self.action_choices > 0:
            if self.action_size != 1:
                raise ProtocolError(f"/sim/describe: a discrete action has one component, not {self.action_size}")
            self.single_action_space = spaces.Discrete(self.action_choices)
        else:
            self.single_action_space = spaces.Box(low, high, (self.action_size,), np.float64)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

        # Every StepRequest starts with the same lease and env ids; the actions are appended as one
        # packed field (protobuf concatenation merges fields, so this is a valid StepRequest).
        self._async_socket = None
        self._async_serial = 0
        self._pending: Dict[bytes, List[int]] = {}
        self._in_flight: set = set()
        self._autoreset = _srv.AUTORESET_NEXT_STEP if self._next_step else _srv.AUTORESET_SAME_STEP
        self._step_prefix = _srv.StepRequest(lease=self.lease, env_ids=ids, render=self._render,
                                             cameras=self._cameras, autoreset=self._autoreset).SerializeToString()
        self._obs = np.zeros((num_envs, self.observation_size), np.float64)
        self._obs_count = num_envs * self.observation_size
        self._pixels: Dict[str, np.ndarray] = {
            key: np.zeros((num_envs,) + shape, np.uint8 if encoding == "rgb8" else np.float32)
            for key, encoding, shape in self._pixel_keys}

    def _open_channel(self, required: bool, timeout: float) -> None:
        """Maps a step channel for the lease; without one (another machine, an older server, no
        lease, pixels) stays on sockets, or raises when ``required``."""
        why = ""
        if not _channel.available():
            why = "step channels need Linux on x86-64"
        elif not self.lease:
            why = "a step channel belongs to a lease (lease=True)"
        elif self._render:
            why = "step channels carry state observations only"
        else:
            try:
                response = self._client.call("/sim/open_channel", _srv.OpenChannelRequest(lease=self.lease),
                                             _srv.OpenChannelResponse)
                if tuple(response.env_ids) != self.env_ids:
                    raise ProtocolError(f"/sim/open_channel: envs {list(response.env_ids)}, expected {list(self.env_ids)}")
                self._channel = _channel.StepChannel(response, timeout=timeout, next_step=self._next_step)
                self.transport = "shm"
                return
            except (ServiceError, ProtocolError, OSError, ValueError) as exc:
                why = str(exc)  # a channel that is never mapped closes with the lease
        if required:
            raise ValueError(f"transport='shm': no step channel: {why}")

    def _pixel_layout(self, d: _srv.DescribeResponse) -> List[Tuple[str, str, Tuple[int, ...]]]:
        """(observation key, encoding, image shape) of each image per env, in the server's order."""
        layout: List[Tuple[str, str, Tuple[int, ...]]] = []
        by_name = {camera.name: camera for camera in d.cameras}
        unknown = [name for name in self._cameras if name not in by_name]
        if unknown:
            raise ValueError(f"cameras {unknown} are not cameras of scene {d.scene!r} "
                             f"(it has {sorted(by_name) or 'none'})")
        chosen = [by_name[name] for name in self._cameras] if self._cameras else \
            [camera for camera in d.cameras if camera.observation]
        for camera in chosen:
            h, w = int(camera.height), int(camera.width)
            if camera.rgb:
                layout.append((camera.name, "rgb8", (h, w, 3)))
            if camera.depth:
                layout.append((f"{camera.name}_depth", "32FC1", (h, w)))
        if not layout:
            raise ValueError(f"obs_mode={self.obs_mode!r} needs a scene with an observation camera "
                             f"(a camera with \"observation\": true); scene {d.scene!r} on "
                             f"{self._client.server} has none")
        if d.render_backend == "none":
            raise ValueError(f"obs_mode={self.obs_mode!r}: the server {self._client.server} (scene {d.scene!r}) "
                             f"does not render (render_backend 'none'); start sim-server with "
                             f"--render-backend osmesa or egl")
        keys = [key for key, _, _ in layout]
        if len(set(keys)) != len(keys):
            raise ProtocolError(f"/sim/describe: observation camera keys collide: {keys}")
        return layout

    def _decode_images(self, images: Sequence[Any], count: int, service: str) -> Dict[str, np.ndarray]:
        """The env-major images of ``count`` envs as ``{key: (count, ...) array}``."""
        per_env = len(self._pixel_keys)
        if len(images) != count * per_env:
            raise ProtocolError(f"{service} returned {len(images)} images for {count} envs, expected "
                                f"{per_env} per env ({', '.join(k for k, _, _ in self._pixel_keys)})")
        out = {key: np.empty((count,) + shape, np.uint8 if encoding == "rgb8" else np.float32)
               for key, encoding, shape in self._pixel_keys}
        for e in range(count):
            for j, (key, encoding, shape) in enumerate(self._pixel_keys):
                msg = images[e * per_env + j]
                if msg.encoding != encoding or (int(msg.height), int(msg.width)) != shape[:2]:
                    raise ProtocolError(f"{service}: image {e * per_env + j} is {msg.encoding} "
                                        f"{msg.width}x{msg.height}, expected {encoding} {shape[1]}x{shape[0]} "
                                        f"for {key!r}")
                try:
                    out[key][e] = image_to_numpy(msg, copy=False)
                except ValueError as exc:
                    raise ProtocolError(f"{service}: image for {key!r}: {exc}") from None
        return out

    def _observation(self, state: np.ndarray, pixels: Dict[str, np.ndarray]) -> Any:
        """The observation in this env's ``obs_mode`` form (batched or single)."""
        if not self._render:
            return state
        obs: Dict[str, Any] = {"pixels": pixels}
        if self.obs_mode == "state+pixels":
            obs["state"] = state
        return obs

    # -- Gymnasium API ------------------------------------------------------------------------------
    def reset(self, *, seed: Union[int, Sequence[Optional[int]], None] = None,
              options: Optional[Dict[str, Any]] = None) -> Tuple[Any, Dict[str, Any]]:
        """Resets the envs (``/sim/reset``) and returns ``(observations, {})``.

        ``seed``: None continues each env with its next episode; an int ``s >= 0`` restarts each env's
        run from ``(s, its index on the server)``; a list gives one seed (or None) per env.
        A server restart during the reset is recovered from (see the class docstring) and the reset done.
        """
        return self._reset_recovering(seed, options)

    def _reset_once(self, seed: Any, options: Optional[Dict[str, Any]]) -> Tuple[Any, Dict[str, Any]]:
        """``reset`` without recovery."""
        self._check_open()
        self._check_idle()
        n = self.num_envs
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds: List[Optional[int]] = [seed] * n
            if seed is not None:
                self._check_seed(seed)
                super().reset(seed=int(seed))  # seeds self.np_random like Gymnasium's own vector envs
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"seed list has {len(seeds)} entries, expected one per env ({n})")
            for s in seeds:
                if s is not None:
                    self._check_seed(s)

        seed_indices = None if not options else options.get("seed_indices")
        if seed_indices is not None:
            seed_indices = [int(i) for i in seed_indices]
            if len(seed_indices) != n or any(not 0 <= i < 2**32 for i in seed_indices):
                raise ValueError(f"options['seed_indices'] must be {n} indices in [0, 2**32), got {seed_indices!r}")
        mask = np.ones(n, dtype=bool)
        if options and options.get("reset_mask") is not None:
            mask = np.asarray(options["reset_mask"])
            if mask.dtype != np.bool_ or mask.shape != (n,):
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({n},), "
                                 f"got {mask.dtype} {mask.shape}")

        self._obs = self._obs.copy()  # step() handed out the previous array; do not change it
        self._pixels = {key: value.copy() for key, value in self._pixels.items()}
        groups: Dict[Optional[int], List[int]] = {}
        for i in range(n):
            if mask[i]:
                groups.setdefault(None if seeds[i] is None else int(seeds[i]), []).append(i)
        if self._channel is not None and len(groups) == 1 and mask.all() and seed_indices is None:
            self._channel.reset(next(iter(groups)))
            self._obs = self._channel.observations.copy()
            return self._obs.copy(), {}
        for wire_seed, positions in groups.items():
            ids = [self.env_ids[i] for i in positions]
            request = _srv.ResetRequest(lease=self.lease, env_ids=ids, render=self._render, cameras=self._cameras)
            if wire_seed is not None:
                request.seed = wire_seed   # proto3 optional: an explicit 0 is sent too
                if seed_indices is not None:
                    request.seed_indices.extend(int(seed_indices[i]) for i in positions)
            response = self._client.call("/sim/reset", request, _srv.ResetResponse)
            obs = np.asarray(response.observations, dtype=np.float64)
            if obs.size != len(ids) * self.observation_size:
                raise ProtocolError(f"/sim/reset returned {obs.size} observation values, "
                                    f"expected {len(ids)} x {self.observation_size}")
            self._obs[positions] = obs.reshape(len(ids), self.observation_size)
            if self._render:
                for key, images in self._decode_images(response.images, len(ids), "/sim/reset").items():
                    self._pixels[key][positions] = images
        return self._observation(self._obs.copy(), {k: v.copy() for k, v in self._pixels.items()}), {}

    def step(self, actions: Any) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """One control step of every env (``/sim/step``); see :meth:`_step_once`. A step that finds the
        server restarted returns every env truncated with ``infos["server_restarted"]`` (class docstring)."""
        return self._step_recovering(actions)

    def _step_once(self, actions: Any) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """One control step of every env (``/sim/step``); envs whose episode ends reset in the same call
        (SAME_STEP), or in their next step (NEXT_STEP: no ``final_obs`` then).

        Returns ``(observations, rewards, terminated, truncated, infos)``; for the envs that reset,
        ``infos["final_obs"][i]`` holds the last observation of the finished episode and
        ``infos["_final_obs"][i]`` is True (likewise ``final_info``/``_final_info``: the ended episode's
        ``is_success``). ``infos["is_success"]`` is the task's success flag of this step for every env.
        In the pixel modes observations and final observations are dicts (see the class docstring).
        """
        if self._client is None:
            raise ClosedError("RoboSimVectorEnv is closed")
        self._check_idle()
        try:
            a = np.asarray(actions, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"actions must be numbers of shape {self.action_space.shape}: {exc}") from None
        if self.action_choices > 0 and a.shape == (self.num_envs,):
            a = a.reshape(self.num_envs, 1)  # one index per env, sent as the action's one value
        elif a.shape != self.action_space.shape:
            raise ValueError(f"actions must have shape {self.action_space.shape} (num_envs={self.num_envs}, "
                             f"action_size={self.action_size}), got {a.shape}")
        if self._channel is not None:
            return self._step_channel(a)
        data = np.ascontiguousarray(a, dtype="<f8").tobytes()
        payload = self._step_prefix + _ACTIONS_KEY + _varint(len(data)) + data
        r = _parse_step_response(self._client.call("/sim/step", payload, bytes))

        n = self.num_envs
        obs, rewards, terminated, truncated = r.observations, r.rewards, r.terminated, r.truncated
        if obs.size != self._obs_count or rewards.size != n or terminated.size != n or truncated.size != n:
            raise ProtocolError(f"/sim/step returned {obs.size} observation values, {rewards.size} rewards, "
                                f"{terminated.size}/{truncated.size} terminated/truncated flags for {n} envs")
        obs = obs.reshape(n, self.observation_size)
        self._obs = obs
        if self._render:
            self._pixels = self._decode_images(r.images, n, "/sim/step")

        success = r.success if r.success.size == n else np.zeros(n, np.bool_)
        # As gymnasium-robotics does: the task's success flag of this step, per env.
        infos: Dict[str, Any] = {"is_success": success, "_is_success": np.ones(n, np.bool_)}
        if r.final_env_ids:
            count = len(r.final_env_ids)
            final = r.final_observations
            if final.size != count * self.observation_size:
                raise ProtocolError(f"/sim/step returned {final.size} final observation values for {count} envs")
            final = final.reshape(count, self.observation_size)
            final_pixels = self._decode_images(r.final_images, count, "/sim/step (final_images)") \
                if self._render else {}
            final_obs = np.full(n, None, dtype=object)
            mask = np.zeros(n, dtype=np.bool_)
            for k, env_id in enumerate(r.final_env_ids):
                i = self._position.get(env_id)
                if i is None:
                    raise ProtocolError(f"/sim/step returned a final observation of env {env_id}, "
                                        f"not one of {self.env_ids}")
                final_obs[i] = self._observation(final[k], {key: v[k] for key, v in final_pixels.items()})
                mask[i] = True
            infos["final_obs"] = final_obs
            infos["_final_obs"] = mask
            infos["final_info"] = {"is_success": success & mask, "_is_success": mask.copy()}
            infos["_final_info"] = mask.copy()
        return self._observation(obs, self._pixels), rewards, terminated, truncated, infos

    def _step_channel(self, a: np.ndarray) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """``step`` through the step channel: the same results as ``/sim/step``."""
        ch = self._channel
        ch.step(a)
        n = self.num_envs
        obs = ch.observations.copy()
        self._obs = obs
        success = ch.success.copy()
        infos: Dict[str, Any] = {"is_success": success, "_is_success": np.ones(n, np.bool_)}
        if ch.final.any():
            mask = ch.final.copy()
            final_obs = np.full(n, None, dtype=object)
            for i in np.flatnonzero(mask):
                final_obs[i] = ch.final_observations[i].copy()
            infos["final_obs"] = final_obs
            infos["_final_obs"] = mask
            infos["final_info"] = {"is_success": success & mask, "_is_success": mask.copy()}
            infos["_final_info"] = mask.copy()
        return obs, ch.rewards.copy(), ch.terminated.copy(), ch.truncated.copy(), infos

    # -- asynchronous stepping (EnvPool's send/recv) ---------------------------------------------------
    def send(self, actions: Any, env_ids: Optional[Sequence[int]] = None) -> None:
        """Starts one control step of the envs at positions ``env_ids`` (default all) without waiting.

        ``actions`` has one row per env in ``env_ids``. The server steps calls in the order they
        arrive, so a client that keeps two half batches in flight lets physics run while it works
        on the other half (EnvPool's ``send``/``recv`` with a batch smaller than the env count).
        An env may be in at most one call in flight. ``recv`` returns the results.
        """
        self._check_open()
        if self._render:
            raise ValueError("send/recv return state observations only; use step() with pixel observations")
        positions = list(range(self.num_envs)) if env_ids is None else [int(i) for i in env_ids]
        if not positions or any(not 0 <= i < self.num_envs for i in positions) or len(set(positions)) != len(positions):
            raise ValueError(f"env_ids must be distinct positions in [0, {self.num_envs}), got {env_ids!r}")
        busy = [i for i in positions if i in self._in_flight]
        if busy:
            raise ValueError(f"envs {busy} are already in a call in flight: recv() first")
        a = np.asarray(actions, dtype=np.float64)
        if self.action_choices > 0 and a.shape == (len(positions),):
            a = a.reshape(-1, 1)
        if a.shape != (len(positions), self.action_size):
            raise ValueError(f"actions must have shape {(len(positions), self.action_size)}, got {a.shape}")
        if self._async_socket is None:
            import zmq  # noqa: PLC0415
            sock = self._client._socket(zmq.DEALER)  # noqa: SLF001  (a socket of its own: replies of sync calls never mix in)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self._client.server)
            self._async_socket = sock
        prefix = _srv.StepRequest(lease=self.lease, env_ids=[self.env_ids[i] for i in positions],
                                  autoreset=self._autoreset).SerializeToString()
        data = np.ascontiguousarray(a, dtype="<f8").tobytes()
        self._async_serial += 1
        request_id = self._async_serial.to_bytes(8, "little")
        self._async_socket.send_multipart([b"", b"/sim/step", prefix + _ACTIONS_KEY + _varint(len(data)) + data, request_id])
        self._pending[request_id] = positions
        self._in_flight.update(positions)

    def recv(self, timeout: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """The results of the earliest call in flight: ``(observations, rewards, terminated,
        truncated, infos)`` for its envs, with ``infos["env_id"]`` their positions (as EnvPool gives),
        ``infos["is_success"]``, and ``final_obs``/``_final_obs`` for envs that auto-reset."""
        self._check_open()
        if not self._pending:
            raise RuntimeError("recv() without a call in flight: send() first")
        import zmq  # noqa: PLC0415
        timeout = self._client.timeout if timeout is None else float(timeout)
        if not self._async_socket.poll(max(1, int(timeout * 1000)), zmq.POLLIN):
            # Late replies must not be taken for later calls: start over with a new socket.
            self._async_socket.close(linger=0)
            self._async_socket = None
            self._pending.clear()
            self._in_flight.clear()
            raise TimeoutError(f"/sim/step: no reply within {timeout:g} s; the calls in flight are dropped")
        frames = self._async_socket.recv_multipart()
        if len(frames) != 4 or frames[3] not in self._pending:
            raise ProtocolError(f"/sim/step: unexpected reply frames ({len(frames)})")
        positions = self._pending.pop(frames[3])
        self._in_flight.difference_update(positions)
        if frames[1] != b"ok":
            from .client import _robosim_msg, _error_code_name  # noqa: PLC0415
            e = _robosim_msg.Error.FromString(frames[2])
            raise ServiceError(_error_code_name(e.code), e.message, "/sim/step")
        r = _parse_step_response(frames[2])
        n = len(positions)
        if r.observations.size != n * self.observation_size or r.rewards.size != n or r.terminated.size != n \
                or r.truncated.size != n:
            raise ProtocolError(f"/sim/step returned {r.observations.size} observation values and {r.rewards.size} rewards "
                                f"for {n} envs")
        success = r.success if r.success.size == n else np.zeros(n, np.bool_)
        infos: Dict[str, Any] = {"env_id": np.asarray(positions, np.int64), "is_success": success, "_is_success": np.ones(n, np.bool_)}
        if r.final_env_ids:
            index = {self.env_ids[p]: k for k, p in enumerate(positions)}
            final_obs = np.full(n, None, dtype=object)
            mask = np.zeros(n, np.bool_)
            finals = r.final_observations.reshape(len(r.final_env_ids), self.observation_size)
            for k, env_id in enumerate(r.final_env_ids):
                final_obs[index[env_id]] = finals[k]
                mask[index[env_id]] = True
            infos["final_obs"], infos["_final_obs"] = final_obs, mask
        self._track_step(r.terminated, r.truncated, positions)
        return r.observations.reshape(n, self.observation_size), r.rewards, r.terminated, r.truncated, infos

    def set_reward(self, expression: str) -> List[str]:
        """Replaces the task's reward for this env's lease with a reward expression
        (``/sim/set_reward``; docs/wire-protocol.md, "Rewards"), e.g.
        ``"alive - 2 * pole_angle ^ 2 - 0.01 * abs(cart_velocity)"``; ``""`` restores the task's
        reward. Returns the names the expression reads. A bad expression raises
        :class:`robosim.ServiceError` (``INVALID_ARGUMENT``, with its position) and changes nothing.
        Other clients' envs are unaffected."""
        self._check_open()
        if not self.lease:
            raise ValueError("a reward expression belongs to a lease: make the env with lease=True")
        response = self._client.call("/sim/set_reward", _srv.SetRewardRequest(lease=self.lease, expression=expression),
                                     _srv.SetRewardResponse)
        self._reward_expression = expression  # set again on a restarted server
        return list(response.names)

    def renew_lease(self, ttl_s: Optional[float] = None) -> None:
        """Keeps this env's lease alive without stepping, e.g. during a long evaluation or checkpoint.

        ``ttl_s`` (seconds, > 0) also replaces the lease's time-to-live; None keeps it. Does nothing
        for an env made with ``lease=False``. Raises :class:`robosim.ServiceError` (``NOT_FOUND``)
        when the lease has already expired: the envs may then be someone else's.
        """
        self._check_open()
        if not self.lease:
            return
        response = self._client.renew_lease(self.lease, ttl_s)
        if response.lease != self.lease or sorted(response.env_ids) != sorted(self.env_ids):
            raise ProtocolError(f"/sim/lease renewed {response.lease!r} with envs {list(response.env_ids)}, "
                                f"expected {self.lease!r} with {list(self.env_ids)}")

    def close_extras(self, **kwargs: Any) -> None:
        """Releases the lease and closes the client (if this env created it)."""
        self._shutdown()

    # -- helpers ------------------------------------------------------------------------------------
    @property
    def client(self) -> Client:
        """The :class:`robosim.Client` this env talks through."""
        return self._client

    def _check_open(self) -> None:
        if self._client is None:
            raise ClosedError("RoboSimVectorEnv is closed")

    def _check_idle(self) -> None:
        """step/reset while send() calls are in flight would race them on another socket."""
        if self._pending:
            raise RuntimeError(f"{len(self._pending)} send() calls are in flight: recv() them first")

    @staticmethod
    def _check_seed(seed: Any) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        if not 0 <= seed <= _UINT64_MAX:
            raise ValueError(f"seed must be between 0 and 2**64-1, got {seed}")

    def _shutdown(self) -> None:
        client = getattr(self, "_client", None)
        if client is None:
            return
        if getattr(self, "_async_socket", None) is not None:
            self._async_socket.close(linger=0)
            self._async_socket = None
        if getattr(self, "_channel", None) is not None:
            self._channel.close()
            self._channel = None
        lease, self.lease = self.lease, ""
        if lease and not client.closed:
            try:
                client.call("/sim/release", _srv.ReleaseRequest(lease=lease), _srv.Empty)
            except (ServiceError, TimeoutError, ClosedError, ProtocolError):
                pass  # expired already, or the server is gone: nothing left to release
        if self._owns_client:
            client.close()
        self._client = None  # type: ignore[assignment]

    def __enter__(self) -> "RoboSimVectorEnv":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not getattr(self, "closed", True):
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        server = self._client.server if getattr(self, "_client", None) is not None else "closed"
        mode = getattr(self, "obs_mode", "state")
        return (f"RoboSimVectorEnv({server!r}, num_envs={getattr(self, 'num_envs', None)}, "
                f"env_ids={getattr(self, 'env_ids', ())}" + (f", obs_mode={mode!r})" if mode != "state" else ")"))


class RoboSimEnv(gymnasium.Env):
    """One env of a RoboSim server as a plain :class:`gymnasium.Env` (it passes
    ``gymnasium.utils.env_checker.check_env``).

    A :class:`RoboSimVectorEnv` of one leased env with next-step autoreset underneath: the step that
    ends an episode returns its final observation with ``terminated``/``truncated``; call ``reset()``
    for the next one, as with any gymnasium env. ``info["is_success"]`` is the task's success flag.
    Takes :class:`RoboSimVectorEnv`'s keyword arguments (``obs_mode``, ``transport``,
    ``reconnect_timeout``, ...). A server restart truncates the episode in flight: that step returns
    ``truncated=True`` with ``info["server_restarted"]`` and ``info["reason"] == "server restarted"``;
    ``reconnects`` and ``episodes_lost`` count them (see :class:`RoboSimVectorEnv`).
    """

    metadata: Dict[str, Any] = {"render_modes": []}

    def __init__(self, server: Union[str, Client, None] = None, **kwargs: Any):
        kwargs.pop("num_envs", None)
        kwargs.pop("autoreset_mode", None)
        self.vector = RoboSimVectorEnv(server, num_envs=1, autoreset_mode=AutoresetMode.NEXT_STEP, **kwargs)
        self.observation_space = self.vector.single_observation_space
        self.action_space = self.vector.single_action_space
        self.render_mode = None
        #: The task's names (see :class:`RoboSimVectorEnv`).
        self.task = self.vector.task
        self.observation_names = self.vector.observation_names
        self.action_names = self.vector.action_names

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> Tuple[Any, Dict[str, Any]]:
        super().reset(seed=seed)
        obs, _ = self.vector.reset(seed=seed)
        return self._single(obs), {}

    def step(self, action: Any) -> Tuple[Any, float, bool, bool, Dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(1, -1)
        if self.vector.action_choices > 0:
            a = a.reshape(1)  # the vector env takes one index per env
        obs, reward, terminated, truncated, infos = self.vector.step(a)
        info: Dict[str, Any] = {"is_success": bool(infos["is_success"][0])}
        if "server_restarted" in infos and bool(infos["server_restarted"][0]):
            info.update(server_restarted=True, reason=RESTART_REASON)
        return self._single(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    @property
    def reconnects(self) -> int:
        """Recoveries from server restarts (see :class:`RoboSimVectorEnv`)."""
        return self.vector.reconnects

    @property
    def episodes_lost(self) -> int:
        """Episodes a server restart cut short."""
        return self.vector.episodes_lost

    def set_reward(self, expression: str) -> List[str]:
        """See :meth:`RoboSimVectorEnv.set_reward`."""
        return self.vector.set_reward(expression)

    def close(self) -> None:
        self.vector.close()

    @staticmethod
    def _single(obs: Any) -> Any:
        if isinstance(obs, dict):
            return {k: RoboSimEnv._single(v) for k, v in obs.items()}
        return obs[0]
