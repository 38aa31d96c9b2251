"""The Python vector envs survive a sim-server restart (kill -9, then the same command on the same
address): the step that finds it returns every env truncated with ``infos["server_restarted"]``,
``reconnects``/``episodes_lost`` count it, and the episodes that follow are those of an uninterrupted
run's seed schedule. Against the real binary (restartable.py), a lockstep cartpole server of 4 envs.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import types

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.vector import AutoresetMode  # noqa: E402

from restartable import RestartableServer, require_sim_server  # noqa: E402

require_sim_server()

import robosim  # noqa: E402,F401  (registers the envs)
from robosim.channel import ChannelClosed  # noqa: E402
from robosim.gym import RoboSimVectorEnv, ServerChangedError, ServerLostError  # noqa: E402

SEED = 7
ENVS = 4
ZEROS = np.zeros((ENVS, 1))  # cartpole with no push: the pole falls, episodes of ~25-80 steps
SERVER_ARGS = ("Scenes/cartpole", "--mode", "lockstep", "--envs", str(ENVS))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RestartableServer(*SERVER_ARGS, log_dir=tmp_path_factory.mktemp("restart")) as srv:
        yield srv


@pytest.fixture
def srv(server):
    """The shared server, running (a test before may have left it killed)."""
    if not server.alive():
        server.start()
    return server


def make(srv, **kwargs) -> RoboSimVectorEnv:
    kwargs.setdefault("timeout", 1.0)
    kwargs.setdefault("reconnect_timeout", 20.0)
    return RoboSimVectorEnv(srv.address, num_envs=ENVS, client_name="test_restart", **kwargs)


class Starts:
    """Each env's episode-start observations, in order (SAME_STEP: the observation of a done step;
    NEXT_STEP: the one of the step after it)."""

    def __init__(self, env: RoboSimVectorEnv, obs: np.ndarray):
        self.next_step = env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        self.starts = [[obs[i].copy()] for i in range(ENVS)]
        self.ended = np.zeros(ENVS, bool)
        self.steps = np.zeros(ENVS, int)   # physics steps into each env's current episode

    def record(self, obs, terminated, truncated) -> None:
        done = terminated | truncated
        new = self.ended if self.next_step else done
        for i in np.flatnonzero(new):
            self.starts[i].append(obs[i].copy())
        # Under next-step autoreset the step after an end is the reset step (no physics).
        self.steps = np.where(self.ended, 0, self.steps + 1) if self.next_step else self.steps + 1
        self.steps[done] = 0
        self.ended = done


@pytest.fixture(scope="module")
def reference(server):
    """Episode starts of an uninterrupted run: reset(seed=SEED), 240 steps of zeros."""
    if not server.alive():
        server.start()
    with make(server, transport="socket") as env:
        obs, _ = env.reset(seed=SEED)
        starts = Starts(env, obs)
        for _ in range(240):
            obs, _, terminated, truncated, _ = env.step(ZEROS)
            starts.record(obs, terminated, truncated)
        assert env.reconnects == 0
    assert all(len(s) >= 4 for s in starts.starts)
    return starts.starts


def restart_later(srv, delay: float) -> threading.Thread:
    """Kills the server now and starts the same command again after ``delay`` seconds."""
    srv.kill()
    thread = threading.Thread(target=lambda: (time.sleep(delay), srv.start(wait=False)), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("transport, autoreset, down_s, steps", [
    ("shm", AutoresetMode.SAME_STEP, 0.0, 40),     # the channel sees the server's pid vanish
    ("socket", AutoresetMode.SAME_STEP, 1.5, 40),  # /sim/step times out (timeout 1 s), describe polls meanwhile
    ("shm", AutoresetMode.NEXT_STEP, 0.0, 40),
    # Env 1's episode ends at step 46 (seed 7, zeros): the step the restart cuts is its reset step.
    ("shm", AutoresetMode.NEXT_STEP, 0.0, 46),
])
def test_kill_restart_truncates_and_keeps_the_seed_schedule(srv, reference, transport, autoreset, down_s, steps, caplog):
    caplog.set_level(logging.WARNING, logger="robosim.reconnect")
    with make(srv, transport=transport, autoreset_mode=autoreset) as env:
        assert env.transport == transport
        obs, _ = env.reset(seed=SEED)
        starts = Starts(env, obs)
        for _ in range(steps):
            obs, _, terminated, truncated, _ = env.step(ZEROS)
            starts.record(obs, terminated, truncated)
        if steps == 46:
            assert list(np.flatnonzero(starts.ended)) == [1]
        last = obs.copy()
        in_flight = int(np.count_nonzero(starts.steps > 0))   # an episode just started loses nothing
        old_lease, old_pid = env.lease, srv.pid
        # The episodes the restart cuts: every env's (same step), or under next-step autoreset those of
        # the envs whose next step is not their reset step (an ended one starts its next episode).
        cut = ~starts.ended if starts.next_step else np.ones(ENVS, bool)
        before = [len(s) for s in starts.starts]

        thread = restart_later(srv, down_s)
        obs, rewards, terminated, truncated, infos = env.step(ZEROS)
        thread.join()
        assert srv.pid != old_pid and srv.starts >= 2
        assert np.array_equal(truncated, cut) and not terminated.any() and not rewards.any()
        assert np.array_equal(infos["server_restarted"], cut)
        assert list(infos["reason"]) == ["server restarted" if c else "" for c in cut]
        assert env.reconnects == 1 and env.episodes_lost == in_flight
        assert env.lease and env.lease != old_lease and env.env_ids == (0, 1, 2, 3)
        assert env.transport == transport  # the step channel is open again
        if starts.next_step:
            assert np.array_equal(obs[cut], last[cut]) and "final_obs" not in infos  # they start again next step
        else:
            assert infos["_final_obs"].all()
            assert np.array_equal(np.stack(list(infos["final_obs"])), last)
        starts.record(obs, terminated, truncated)

        for _ in range(110):
            obs, rewards, terminated, truncated, infos = env.step(ZEROS)
            assert "server_restarted" not in infos
            starts.record(obs, terminated, truncated)
        assert env.reconnects == 1

    # Each env plays the episode the restart cut again from its start (the same seed, index and
    # episode number), then the next ones of the uninterrupted run, bit for bit.
    for i in range(ENVS):
        got, want = list(starts.starts[i]), reference[i]
        if cut[i]:
            assert np.array_equal(got[before[i]], got[before[i] - 1]), f"env {i}: the cut episode did not start again"
            del got[before[i]]
        assert 3 <= len(got) <= len(want)
        for k, (a, b) in enumerate(zip(got, want)):
            assert np.array_equal(a, b), f"env {i} episode {k}: {a} != {b}"
    text = caplog.text
    assert srv.address in text and "restarted (a new server process)" in text
    assert f"{in_flight} episode(s) in flight lost" in text


def test_pixel_envs_under_next_step_autoreset_start_their_episodes_again(tmp_path):
    """Pixel envs cannot step some envs apart from the others, so after a restart under next-step
    autoreset every env waits for its next step (an env whose reset step was cut ends once more, then
    starts its next episode): the step after the truncated one renders and starts every episode."""
    with RestartableServer("Scenes/object_tracker", "--mode", "lockstep", "--envs", "2", log_dir=tmp_path) as pixels_srv:
        with RoboSimVectorEnv(pixels_srv.address, num_envs=2, obs_mode="state+pixels", timeout=5.0, reconnect_timeout=30.0,
                              autoreset_mode=AutoresetMode.NEXT_STEP, transport="socket") as env:
            first, _ = env.reset(seed=SEED)
            actions = np.zeros((2, 2))
            for _ in range(10):
                env.step(actions)
            pixels_srv.restart()
            obs, _, terminated, truncated, infos = env.step(actions)
            assert truncated.all() and not terminated.any() and infos["server_restarted"].all() and env.reconnects == 1
            obs, rewards, terminated, truncated, _ = env.step(actions)   # the episodes start again
            assert not (terminated | truncated).any() and not rewards.any()
            assert np.array_equal(obs["state"], first["state"])
            assert np.array_equal(obs["pixels"]["follower_camera"], first["pixels"]["follower_camera"])
            obs, _, terminated, truncated, _ = env.step(actions)
            assert not (terminated | truncated).any()


def test_server_that_never_comes_back_raises_within_the_timeout(srv):
    with make(srv, transport="shm", timeout=0.5, reconnect_timeout=2.0) as env:
        env.reset(seed=SEED)
        env.step(ZEROS)
        srv.kill()
        started = time.monotonic()
        with pytest.raises(ServerLostError) as raised:
            env.step(ZEROS)
        waited = time.monotonic() - started
    assert isinstance(raised.value, ConnectionError)
    assert 2.0 <= waited < 2.0 + 1.5, waited
    assert srv.address in str(raised.value) and raised.value.server == srv.address
    assert 2.0 <= raised.value.waited_s < 3.5 and f"{raised.value.waited_s:.1f} s" in str(raised.value)


def test_reconnect_timeout_zero_propagates_the_error(srv):
    with make(srv, transport="shm", reconnect_timeout=0) as env:
        env.reset(seed=SEED)
        srv.kill()
        with pytest.raises(ChannelClosed, match="is gone"):
            env.step(ZEROS)
        assert env.reconnects == 0


def test_server_back_as_another_scene_is_refused(srv, tmp_path):
    port = int(srv.address.rsplit(":", 1)[1])
    with make(srv, transport="socket") as env:
        env.reset(seed=SEED)
        srv.kill()
        # The same env count (a step queued meanwhile reaches it and names an unknown lease), another scene.
        other = RestartableServer("Scenes/cartpole_discrete", "--mode", "lockstep", "--envs", str(ENVS),
                                  log_dir=tmp_path, port=port)
        other.start(wait=False)
        try:
            with pytest.raises(ServerChangedError, match=r"came back as another server: scene 'cartpole' -> 'cartpole_discrete'"):
                env.step(ZEROS)
        finally:
            other.stop()


def test_an_expired_lease_on_the_same_server_is_recovered_and_not_called_a_restart(srv, reference, caplog):
    """The server's instance id tells a lease that expired (a client idle past its ttl) from a restart."""
    caplog.set_level(logging.WARNING, logger="robosim.reconnect")
    with make(srv, transport="socket", ttl_s=0.5) as env:
        obs, _ = env.reset(seed=SEED)
        old_lease, pid = env.lease, srv.pid
        time.sleep(1.5)   # past the ttl: the server drops the lease at the next call
        obs, rewards, terminated, truncated, infos = env.step(ZEROS)
        assert srv.pid == pid and env.reconnects == 1 and env.lease != old_lease
        assert truncated.all() and infos["server_restarted"].all()
        # The cut episodes (no step taken) start again: the same first observations.
        assert np.array_equal(obs, np.stack([reference[i][0] for i in range(ENVS)]))
        assert env.episodes_lost == 0
    assert "did not restart, but the lease was lost" in caplog.text and "new server process" not in caplog.text


def test_reset_during_the_outage_recovers_and_resets(srv, reference):
    with make(srv, transport="socket") as env:
        env.reset(seed=SEED)
        srv.restart()
        obs, _ = env.reset(seed=SEED)  # fails on the old lease, recovers, resets
        assert env.reconnects == 1
        assert np.array_equal(obs, np.stack([reference[i][0] for i in range(ENVS)]))


@pytest.fixture
def sb3_vec_env_module(monkeypatch):
    """robosim.sb3, with Stable-Baselines3's VecEnv base class when SB3 is installed, else a stand-in
    for it (the wrapper's own layer is what is tested; SB3 needs torch, not in this venv)."""
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        class VecEnv:  # SB3's base: the constructor arguments and step = step_async + step_wait
            def __init__(self, num_envs, observation_space, action_space):
                self.num_envs, self.observation_space, self.action_space = num_envs, observation_space, action_space

            def step(self, actions):
                self.step_async(actions)
                return self.step_wait()

        names = ["stable_baselines3", "stable_baselines3.common", "stable_baselines3.common.vec_env",
                 "stable_baselines3.common.vec_env.base_vec_env"]
        for name in names:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
        sys.modules[names[-1]].VecEnv = VecEnv
        monkeypatch.delitem(sys.modules, "robosim.sb3", raising=False)
        import robosim.sb3 as module
        yield module
        sys.modules.pop("robosim.sb3", None)  # built on the stand-in: not for later imports
    else:
        import robosim.sb3 as module
        yield module


def test_sb3_wrapper_reports_a_restart_as_time_limit_truncation(srv, sb3_vec_env_module):
    vec = sb3_vec_env_module.RoboSimVecEnv(srv.address, ENVS, transport="socket", timeout=1.0, reconnect_timeout=20.0)
    try:
        vec.seed(SEED)
        obs = vec.reset()
        for _ in range(5):
            obs, _, _, _ = vec.step(ZEROS)
        srv.restart()
        new_obs, rewards, dones, infos = vec.step(ZEROS)
        assert dones.all() and not rewards.any()
        for i in range(ENVS):
            assert infos[i]["TimeLimit.truncated"] is True and infos[i]["server_restarted"] is True
            assert np.array_equal(infos[i]["terminal_observation"], obs[i])
        assert vec.get_attr("reconnects") == [1] * ENVS and vec.get_attr("episodes_lost") == [ENVS] * ENVS
        _, _, dones, infos = vec.step(ZEROS)
        assert not any("server_restarted" in info for info in infos)
    finally:
        vec.close()


def test_make_with_its_own_server_starts_it_again(caplog):
    caplog.set_level(logging.WARNING)
    env = gymnasium.make("robosim/Cartpole-v0", reconnect_timeout=20.0, timeout=1.0)
    try:
        u = env.unwrapped
        env.reset(seed=1)
        env.step(np.zeros(1))
        local = u._local
        old_pid = local.process.pid
        local.process.kill()  # kill -9 of the server the env started itself
        local.process.wait()
        _, reward, terminated, truncated, info = env.step(np.zeros(1))
        assert truncated and not terminated and reward == 0.0
        assert info["server_restarted"] is True and info["reason"] == "server restarted"
        assert u.reconnects == 1 and u.episodes_lost == 1 and local.restarts == 1 and local.process.pid != old_pid
        assert "starting it again" in caplog.text and local.address in caplog.text
        env.reset()
        _, _, _, truncated, info = env.step(np.zeros(1))
        assert "server_restarted" not in info
    finally:
        env.close()
