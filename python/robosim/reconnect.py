"""Surviving a sim-server restart: what :class:`robosim.gym.RoboSimVectorEnv` does when its server
dies and comes back (``kill -9``, a crash, a rolled pod) on the same address.

A failure that means "the server is gone or restarted" starts the recovery:

- a service call with no reply within ``timeout`` (``TimeoutError``; the step channel's too);
- an ``UNAVAILABLE`` error (a server shutting down or still starting);
- ``NOT_FOUND``/``FAILED_PRECONDITION`` about an unknown lease (the server words it
  ``lease '...' expired or unknown`` and ``no lease '...' (released or expired)``): a new server
  never heard of it;
- the shared-memory step channel closing or its server process vanishing
  (:class:`robosim.channel.ChannelClosed`).

The recovery asks ``/sim/describe`` again and again (0.1 s apart, doubling up to 2 s) until the
server answers or ``reconnect_timeout`` seconds have passed (then :class:`ServerLostError`, a
``ConnectionError`` naming the address and the time waited). Its ``instance_id`` says whether it is
a new server process (a restart) or the same one (it was slow, or the lease expired); the log says
which, and the recovery is the same, as in the Swift clients (docs/wire-protocol.md). The scene, env
count, mode and spaces must be the ones the env was made for (else :class:`ServerChangedError`); the
env gives the old lease back (a server that was only slow still holds it), leases the same env ids
again, sets its reward expression again, resets every env to the start of the episode it was
playing (``(seed, seed index, episode index)`` of its seed schedule: ``ResetRequest.episodes``), and
reopens the step channel if it had one. So the interrupted episodes are played again from their
start, and the episodes from there on are those of a run without the restart. The step that failed
returns every env truncated, with ``infos["server_restarted"]`` set and ``infos["reason"] ==
"server restarted"``; under next-step autoreset an env whose reset step it was starts its next
episode instead (not done), so no episode ends twice. The episodes in flight are lost
(``episodes_lost``), ``reconnects`` counts the recoveries, and both are logged (``logging`` warning
on the ``robosim.reconnect`` logger).

This module holds the mixin with that machinery; :mod:`robosim.gym` uses it.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .channel import ChannelClosed
from .client import ServiceError
from .msgs.robosim import srv_pb2 as _srv

__all__ = ["RESTART_REASON", "ServerChangedError", "ServerLostError", "is_server_lost"]

_log = logging.getLogger(__name__)

#: ``infos["reason"]`` of the step that a server restart truncated.
RESTART_REASON = "server restarted"

#: How the Swift server words an unknown lease (Sources/SimServer/Server/LeaseTable.swift, StepChannels.swift).
_UNKNOWN_LEASE = re.compile(r"lease '.*' expired or unknown|no lease '.*' \(released or expired\)|lease '.*' ended")

_FIRST_DELAY_S, _MAX_DELAY_S = 0.1, 2.0


class ServerLostError(ConnectionError):
    """The server did not come back within ``reconnect_timeout``: ``server`` (its address) and
    ``waited_s`` (seconds waited) say which and how long."""

    def __init__(self, server: str, waited_s: float, cause: BaseException):
        self.server = server
        self.waited_s = waited_s
        super().__init__(f"the sim-server at {server} did not come back within {waited_s:.1f} s "
                         f"(reconnect_timeout) after: {type(cause).__name__}: {cause}")


class ServerChangedError(RuntimeError):
    """The server came back, but not as the one the env was made for (another scene, env count,
    mode or spaces), or its envs are someone else's now."""


def is_server_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means that the server is gone or restarted (see the module docstring)."""
    if isinstance(exc, (TimeoutError, ChannelClosed)):
        return True
    if isinstance(exc, ServiceError):
        if exc.code == "UNAVAILABLE":
            return True
        return exc.code in ("NOT_FOUND", "FAILED_PRECONDITION") and bool(_UNKNOWN_LEASE.search(exc.message))
    return False


class ReconnectingMixin:
    """The recovery of :class:`robosim.gym.RoboSimVectorEnv` (which supplies ``_client``, ``lease``,
    ``env_ids``, ``_obs``, ``_reset_once``, ``_step_once`` and the rest)."""

    #: Recoveries from a server restart so far.
    reconnects: int = 0
    #: Episodes that were in flight when the server was lost (each env's current one), so far.
    episodes_lost: int = 0

    # -- the seed schedule --------------------------------------------------------------------------
    def _init_schedule(self) -> None:
        """Each env's place in its run of episodes, as the server counts it (World.reset/step):
        the run's seed (None: the server's base seed, never set by this env), its seed index and
        the episode index; ``_ended``: under next-step autoreset, an episode ended and the next one
        starts at the env's next step or reset; ``_resync``: the server's env is not where the
        schedule says (next-step autoreset after a restart) and needs a seeded reset first."""
        n = self.num_envs
        self._server_instance: str = self.description.instance_id   # /sim/describe: new at each server start
        self._run_seeds: List[Optional[int]] = [None] * n
        self._seed_indices: List[int] = [int(i) for i in self.env_ids]
        self._episodes = np.zeros(n, np.int64)
        self._steps = np.zeros(n, np.int64)   # steps into the current episode: a restart loses those > 0
        self._ended = np.zeros(n, np.bool_)
        self._resync = np.zeros(n, np.bool_)

    def _track_reset(self, seed: Any, options: Optional[Dict[str, Any]]) -> None:
        """After a successful ``reset(seed, options)`` (its arguments already checked)."""
        n = self.num_envs
        mask = np.ones(n, np.bool_)
        if options and options.get("reset_mask") is not None:
            mask = np.asarray(options["reset_mask"], np.bool_)
        seeds = [seed] * n if seed is None or isinstance(seed, (int, np.integer)) else list(seed)
        indices = None if not options else options.get("seed_indices")
        self._steps[mask] = 0
        for i in np.flatnonzero(mask):
            if seeds[i] is None:
                self._episodes[i] += 1  # the server starts the env's next episode
            else:
                self._run_seeds[i] = int(seeds[i])
                self._seed_indices[i] = int(indices[i]) if indices is not None else int(self.env_ids[i])
                self._episodes[i] = 0
        self._ended[mask] = False
        self._resync[mask] = False

    def _track_step(self, terminated: np.ndarray, truncated: np.ndarray, positions: Optional[Sequence[int]] = None) -> None:
        """After a successful step of the envs at ``positions`` (default all)."""
        index = np.arange(self.num_envs) if positions is None else np.asarray(positions, np.intp)
        done = np.asarray(terminated, np.bool_) | np.asarray(truncated, np.bool_)
        # Under next-step autoreset an env that had ended took its reset step (no physics): 0 steps.
        steps = np.where(self._ended[index], 0, self._steps[index] + 1) if self._next_step else self._steps[index] + 1
        steps[done] = 0
        self._steps[index] = steps
        if self._next_step:
            self._episodes[index] += self._ended[index]  # the ended episodes' successors started now
            self._ended[index] = done
        else:
            self._episodes[index] += done  # same step: the next episode started already

    def _resync_envs(self, positions: Sequence[int], advance: Any = False, timeout: Optional[float] = None) -> None:
        """Puts the server's envs at ``positions`` on the schedule with seeded resets: each at its
        current episode, or the next one where ``advance`` (a bool, or one per env of the vector);
        their observations go to ``_obs``."""
        positions = [int(i) for i in positions]
        if not positions:
            return
        moves = np.broadcast_to(np.asarray(advance, np.bool_), (self.num_envs,))
        episodes = {i: int(self._episodes[i]) + int(moves[i]) for i in positions}
        base: Optional[int] = None
        groups: Dict[int, List[int]] = {}
        for i in positions:
            seed = self._run_seeds[i]
            if seed is None:
                if base is None:
                    base = self._base_seed(timeout)
                seed = base
            groups.setdefault(seed, []).append(i)
        self._obs = self._obs.copy()  # step() handed out the previous array
        self._pixels = {key: value.copy() for key, value in self._pixels.items()}
        for seed, group in groups.items():
            request = _srv.ResetRequest(lease=self.lease, env_ids=[self.env_ids[i] for i in group], seed=seed,
                                        seed_indices=[self._seed_indices[i] for i in group],
                                        episodes=[episodes[i] for i in group], render=self._render, cameras=self._cameras)
            response = self._client.call("/sim/reset", request, _srv.ResetResponse, timeout)
            obs = np.asarray(response.observations, dtype=np.float64)
            if obs.size != len(group) * self.observation_size:
                raise ServerChangedError(f"/sim/reset returned {obs.size} observation values for {len(group)} envs")
            self._obs[group] = obs.reshape(len(group), self.observation_size)
            if self._render:
                for key, images in self._decode_images(response.images, len(group), "/sim/reset").items():
                    self._pixels[key][group] = images
        for i in positions:
            self._episodes[i] = episodes[i]
        self._steps[positions] = 0
        self._ended[positions] = False
        self._resync[positions] = False

    def _base_seed(self, timeout: Optional[float]) -> int:
        """The server's ``--seed`` (its read-only ``seed`` parameter): the run seed of envs never seeded."""
        response = self._client.call("/sim/get_parameters", _srv.GetParametersRequest(names=["seed"]),
                                     _srv.GetParametersResponse, timeout)
        for p in response.parameters:
            if p.name == "seed":
                return int(p.value)
        raise ServerChangedError(f"{self._client.server} has no 'seed' parameter")

    # -- reset and step with recovery ---------------------------------------------------------------
    def _can_recover(self, exc: BaseException) -> bool:
        return self.reconnect_timeout > 0 and is_server_lost(exc)

    def _reset_recovering(self, seed: Any, options: Optional[Dict[str, Any]]) -> Tuple[Any, Dict[str, Any]]:
        self._check_open()
        self._check_idle()
        if self._resync.any():
            self._resync_pending_for_reset(seed, options)
        try:
            out = self._reset_once(seed, options)
        except Exception as exc:
            if not self._can_recover(exc):
                raise
            self._recover(exc)  # every env at its current episode; the reset moves it on
            out = self._reset_once(seed, options)
        self._track_reset(seed, options)
        return out

    def _resync_pending_for_reset(self, seed: Any, options: Optional[Dict[str, Any]]) -> None:
        """Envs waiting for their next-step reset after a restart, reset now without a seed: put them
        back at their current episode first, so that the server's unseeded reset moves them on."""
        n = self.num_envs
        mask = np.ones(n, np.bool_)
        if options and options.get("reset_mask") is not None:
            mask = np.asarray(options["reset_mask"], np.bool_)
        seeds = [seed] * n if seed is None or isinstance(seed, (int, np.integer)) else list(seed)
        unseeded = np.array([s is None for s in seeds], np.bool_)
        self._resync_envs(np.flatnonzero(self._resync & mask & unseeded))

    def _step_recovering(self, actions: Any) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        self._check_open()
        self._check_idle()
        if self._resync.any():
            return self._step_resyncing(actions)
        last_obs, last_pixels = self._obs, self._pixels
        try:
            out = self._step_once(actions)
        except Exception as exc:
            if not self._can_recover(exc):
                raise
            if self._next_step:
                # An env whose episode had ended (this was its reset step) starts its next episode, as
                # the step would have: not done, reward 0. The others' episodes end here, truncated
                # with their last observation, and their next step starts them again from the
                # beginning, as a next-step autoreset does.
                starting = self._ended.copy()
                self._recover(exc, advance=starting)
                # Pixel envs cannot step some envs apart from the others: there every env waits for
                # its next step (the ended ones report a second end, then start their next episode).
                waiting = ~starting if not self._render else np.ones(self.num_envs, np.bool_)
                self._resync[:] = waiting
                self._ended[:] = waiting
                obs = self._obs.copy()
                obs[waiting] = last_obs[waiting]
                pixels = {k: v.copy() for k, v in self._pixels.items()}
                for k, v in pixels.items():
                    v[waiting] = last_pixels[k][waiting]
                rewards, terminated, truncated = self._restart_flags()
                truncated[~waiting] = False
                return self._observation(obs, pixels), rewards, terminated, truncated, self._restart_infos(None, None, waiting)
            self._recover(exc)
            obs = self._observation(self._obs.copy(), {k: v.copy() for k, v in self._pixels.items()})
            return obs, *self._restart_flags(), self._restart_infos(last_obs, last_pixels)
        self._track_step(out[2], out[3])
        return out

    def _restart_flags(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.num_envs
        return np.zeros(n, np.float64), np.zeros(n, np.bool_), np.ones(n, np.bool_)

    def _restart_infos(self, last_obs: Optional[np.ndarray], last_pixels: Optional[Dict[str, np.ndarray]],
                       truncated: Optional[np.ndarray] = None) -> Dict[str, Any]:
        """``infos`` of the step a restart truncated (the envs of ``truncated``, default all); with
        ``last_obs`` (same-step autoreset) the observations before it are every env's ``final_obs``."""
        n = self.num_envs
        every = np.ones(n, np.bool_)
        cut = every.copy() if truncated is None else np.asarray(truncated, np.bool_)
        infos: Dict[str, Any] = {"is_success": np.zeros(n, np.bool_), "_is_success": every.copy(),
                                 "server_restarted": cut.copy(), "_server_restarted": every.copy(),
                                 "reason": np.where(cut, RESTART_REASON, ""), "_reason": cut.copy()}
        infos["reason"] = infos["reason"].astype(object)
        if last_obs is not None:
            final_obs = np.full(n, None, dtype=object)
            for i in range(n):
                final_obs[i] = self._observation(last_obs[i].copy(), {k: v[i].copy() for k, v in (last_pixels or {}).items()})
            infos["final_obs"], infos["_final_obs"] = final_obs, every.copy()
            infos["final_info"] = {"is_success": np.zeros(n, np.bool_), "_is_success": every.copy(),
                                   "reason": np.full(n, RESTART_REASON, dtype=object), "_reason": every.copy()}
            infos["_final_info"] = every.copy()
        return infos

    def _step_resyncing(self, actions: Any) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """Next-step autoreset after a restart: the envs waiting for their next episode start it (their
        actions ignored, reward 0, not done); the others step as usual."""
        waiting = np.flatnonzero(self._resync)
        others = np.flatnonzero(~self._resync)
        a = np.asarray(actions, dtype=np.float64)
        n = self.num_envs
        rewards, terminated, truncated = np.zeros(n), np.zeros(n, np.bool_), np.zeros(n, np.bool_)
        success = np.zeros(n, np.bool_)
        if len(others):
            a = a.reshape(n, -1)
            step = self._step_positions(others, a[others])
            rewards[others], terminated[others], truncated[others], success[others] = \
                step.rewards, step.terminated, step.truncated, step.success if step.success.size == len(others) else False
            self._obs = self._obs.copy()
            self._obs[others] = step.observations.reshape(len(others), self.observation_size)
            self._track_step(terminated[others], truncated[others], others)
        self._resync_envs(waiting)   # the interrupted episodes start again
        obs = self._observation(self._obs.copy(), {k: v.copy() for k, v in self._pixels.items()})
        return obs, rewards, terminated, truncated, {"is_success": success, "_is_success": np.ones(n, np.bool_)}

    def _step_positions(self, positions: np.ndarray, actions: np.ndarray):
        """One ``/sim/step`` of some envs (state observations: pixels are not stepped apart)."""
        from .gym import _parse_step_response  # noqa: PLC0415

        if self._render:
            raise ValueError("after a server restart, pixel envs reset with a reset_mask step again after reset() of all")
        request = _srv.StepRequest(lease=self.lease, env_ids=[self.env_ids[i] for i in positions],
                                   actions=np.ascontiguousarray(actions, np.float64).ravel().tolist(),
                                   autoreset=self._autoreset)
        return _parse_step_response(self._client.call("/sim/step", request.SerializeToString(), bytes))

    # -- the recovery -------------------------------------------------------------------------------
    def _recover(self, exc: BaseException, advance: Any = False) -> None:
        """Waits for the server, checks it, leases the envs again and resets them onto the seed
        schedule: each at its current episode, or the next one where ``advance`` (a bool or one per
        env); raises :class:`ServerLostError` after ``reconnect_timeout``."""
        server = self._client.server
        timeout = float(self.reconnect_timeout)
        lost = int(np.count_nonzero(self._steps > 0))   # episodes under way (a step into them at least)
        old_lease = self.lease
        _log.warning("robosim: lost the sim-server at %s (%s: %s); reconnecting for up to %g s",
                     server, type(exc).__name__, exc, timeout)
        started = time.monotonic()
        deadline = started + timeout
        delay = _FIRST_DELAY_S
        released = not old_lease
        had_channel = self._channel is not None
        dropped = False
        restarted = True
        last: BaseException = exc
        while True:
            remaining = max(0.05, deadline - time.monotonic())
            call_timeout = min(float(self._client.timeout), remaining)
            try:
                if self._revive is not None:
                    self._revive()
                d = self._client.describe(timeout=min(1.0, remaining))
                # Another process (or one too old to say): a restart. The same one was slow or let the
                # lease expire; its envs are no longer known to be where this env left them either.
                restarted = not d.instance_id or d.instance_id != self._server_instance
                if not dropped:
                    self._drop_transport()
                    dropped = True
                self._check_same_server(d)
                if not released:
                    try:   # a server that was only slow still holds the old lease: give it back
                        self._client.call("/sim/release", _srv.ReleaseRequest(lease=old_lease), _srv.Empty, call_timeout)
                    except ServiceError:
                        pass   # a restarted server never heard of it
                    released = True   # not after a timeout: the next try gives it back again
                if old_lease:
                    self._lease_again(call_timeout)
                if self._reward_expression:
                    self._client.call("/sim/set_reward", _srv.SetRewardRequest(lease=self.lease, expression=self._reward_expression),
                                      _srv.SetRewardResponse, call_timeout)
                self._resync_envs(range(self.num_envs), advance, call_timeout)
                break
            except Exception as error:  # noqa: BLE001
                if error is exc or not is_server_lost(error):
                    raise
                last = error
            now = time.monotonic()
            if now >= deadline:
                _log.error("robosim: the sim-server at %s did not come back within %.1f s", server, now - started)
                raise ServerLostError(server, now - started, last) from exc
            time.sleep(min(delay, deadline - now))
            delay = min(_MAX_DELAY_S, 2 * delay)
        if had_channel:
            self._open_channel(required=self._transport_wanted == "shm", timeout=self._call_timeout)
            if self._channel is None:
                _log.warning("robosim: no step channel from %s after the restart; stepping through /sim/step", server)
        self._server_instance = d.instance_id
        self.reconnects += 1
        self.episodes_lost += lost
        _log.warning("robosim: the sim-server at %s %s; reconnected after %.1f s (lease %r, envs %s); "
                     "%d episode(s) in flight lost; %d reconnect(s), %d episode(s) lost so far",
                     server, "restarted (a new server process)" if restarted else "did not restart, but the lease was lost",
                     time.monotonic() - started, self.lease, list(self.env_ids), lost,
                     self.reconnects, self.episodes_lost)

    def _drop_transport(self) -> None:
        """Forgets the step channel and the ``send``/``recv`` socket of the lost server."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self.transport = "socket"
        if self._async_socket is not None:
            self._async_socket.close(linger=0)
            self._async_socket = None
        self._pending.clear()
        self._in_flight.clear()

    def _check_same_server(self, d: _srv.DescribeResponse) -> None:
        """The restarted server must be the one this env was made for."""
        old = self.description
        diffs = [f"{name} {a!r} -> {b!r}" for name, a, b in (
            ("scene", old.scene, d.scene), ("env_count", old.env_count, d.env_count), ("mode", old.mode, d.mode),
            ("observation_size", old.observation_size, d.observation_size),
            ("action_size", old.action_size, d.action_size),
            ("action_low", list(old.action_low), list(d.action_low)),
            ("action_high", list(old.action_high), list(d.action_high)),
            ("action_choices", old.task.action_choices, d.task.action_choices),
            ("observation names", [q.name for q in old.task.observations], [q.name for q in d.task.observations]),
        ) if a != b]
        if diffs:
            raise ServerChangedError(f"the sim-server at {self._client.server} came back as another server: "
                                     + "; ".join(diffs))

    def _lease_again(self, timeout: float) -> None:
        """Leases the same env ids on the restarted server."""
        request = _srv.LeaseRequest(env_ids=list(self.env_ids), client_name=self._client_name, ttl_s=float(self._ttl_s))
        try:
            response = self._client.call("/sim/lease", request, _srv.LeaseResponse, timeout)
        except ServiceError as error:
            if error.code == "UNAVAILABLE":
                raise
            raise ServerChangedError(f"the sim-server at {self._client.server} restarted, but envs {list(self.env_ids)} "
                                     f"cannot be leased again: {error}") from error
        if tuple(response.env_ids) != tuple(self.env_ids):
            raise ServerChangedError(f"/sim/lease gave envs {list(response.env_ids)}, asked {list(self.env_ids)}")
        self.lease = response.lease
        self._step_prefix = _srv.StepRequest(lease=self.lease, env_ids=list(self.env_ids), render=self._render,
                                             cameras=self._cameras, autoreset=self._autoreset).SerializeToString()
