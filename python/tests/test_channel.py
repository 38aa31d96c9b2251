"""The same-host step channel (/sim/open_channel, robosim.channel) against the real `sim-server`.

RoboSimVectorEnv takes it on its own on one machine (transport="auto"): it must give exactly what
/sim/step gives, refuse what /sim/step refuses, close with its lease, leave no file behind, and never
leave a client hanging on a server that died.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

import robosim  # noqa: E402
from robosim import channel as rchannel  # noqa: E402
from robosim.client import ClosedError  # noqa: E402
from robosim.gym import RoboSimVectorEnv  # noqa: E402
from robosim.msgs.robosim import srv_pb2 as srv  # noqa: E402

pytestmark = pytest.mark.skipif(not rchannel.available(), reason="step channels need Linux on x86-64")

ENVS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import test_server  # skips (or fails, with ROBOSIM_REQUIRE_SERVER=1) when sim-server is not built

    with test_server.run_server(tmp_path_factory, "Scenes/cartpole", "--mode", "lockstep", "--envs", str(ENVS)) as srv_:
        yield srv_


def rollout(env, seed, steps):
    """reset(seed), then `steps` steps of random pushes; every array seen, final observations included."""
    rng = np.random.default_rng(3)
    obs, _ = env.reset(seed=seed)
    seen = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, infos = env.step(rng.uniform(-1, 1, env.action_space.shape) * 3)
        final = np.full((env.num_envs, env.observation_size), np.nan)
        for i in np.flatnonzero(infos.get("_final_obs", np.zeros(env.num_envs, bool))):
            final[i] = infos["final_obs"][i]
        seen += [obs, reward, terminated, truncated, infos["is_success"], final]
    return seen


def test_channel_and_socket_give_identical_rollouts(server):
    with RoboSimVectorEnv(server.address, num_envs=ENVS, transport="shm") as shm:
        assert shm.transport == "shm"
        a = rollout(shm, seed=7, steps=150)
    with RoboSimVectorEnv(server.address, num_envs=ENVS, transport="socket") as sock:
        assert sock.transport == "socket"
        b = rollout(sock, seed=7, steps=150)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
    assert any(np.asarray(t).any() for t in a[3::6]), "no episode terminated: the test would not compare final observations"


def test_auto_uses_a_sealed_channel_no_client_can_shrink(server):
    with RoboSimVectorEnv(server.address, num_envs=2) as env:
        assert env.transport == "shm"
        ch = env._channel  # noqa: SLF001
        assert ch.path.startswith(f"/proc/{ch.server_pid}/fd/"), ch.path
        fd = os.open(ch.path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            for new in (0, size // 2, size * 2):  # a smaller file would be SIGBUS in the server
                with pytest.raises(PermissionError):
                    os.ftruncate(fd, new)
        finally:
            os.close(fd)
        env.reset(seed=1)
        obs, *_ = env.step(np.zeros(env.action_space.shape))
        assert obs.shape == (2, 4)


def test_bad_actions_are_refused_and_the_channel_goes_on(server):
    with RoboSimVectorEnv(server.address, num_envs=4, transport="shm") as env:
        env.reset(seed=1)
        for value in (np.nan, np.inf, -np.inf):
            actions = np.zeros(env.action_space.shape)
            actions[2, 0] = value
            with pytest.raises(robosim.ServiceError) as info:
                env.step(actions)
            assert info.value.code == "INVALID_ARGUMENT" and info.value.service == "/sim/step"
            assert "finite" in info.value.message
        # Extreme finite values are clipped to the bounds, as on /sim/step.
        obs, *_ = env.step(np.full(env.action_space.shape, 1e308))
        assert np.isfinite(obs).all()


def test_open_channel_refusals(server):
    with robosim.Client(server.address, name="channel_probe") as c:
        with pytest.raises(robosim.ServiceError) as info:
            c.call("/sim/open_channel", srv.OpenChannelRequest(), srv.OpenChannelResponse)
        assert info.value.code == "INVALID_ARGUMENT"
        with pytest.raises(robosim.ServiceError) as info:
            c.call("/sim/open_channel", srv.OpenChannelRequest(lease="no-such-lease"), srv.OpenChannelResponse)
        assert info.value.code == "FAILED_PRECONDITION"
        lease = c.call("/sim/lease", srv.LeaseRequest(count=1, client_name="probe"), srv.LeaseResponse).lease
        first = c.call("/sim/open_channel", srv.OpenChannelRequest(lease=lease), srv.OpenChannelResponse)
        with pytest.raises(robosim.ServiceError) as info:
            c.call("/sim/open_channel", srv.OpenChannelRequest(lease=lease), srv.OpenChannelResponse)
        assert info.value.code == "FAILED_PRECONDITION" and "already has a step channel" in info.value.message
        ch = rchannel.StepChannel(first)
        ch.reset(5)
        assert ch.observations.shape == (1, 4)
        c.call("/sim/release", srv.ReleaseRequest(lease=lease), srv.Empty)
        # The released lease's channel refuses the next request (or is already closed).
        with pytest.raises((robosim.ServiceError, ClosedError)):
            ch.step(np.zeros((1, 1)))
        ch.close()
        assert c.describe().env_count == ENVS


def test_raw_garbage_in_the_channel_gets_errors_not_a_crash(server):
    rng = np.random.default_rng(11)
    with robosim.Client(server.address, name="channel_garbage") as c:
        lease = c.call("/sim/lease", srv.LeaseRequest(count=2, client_name="garbage"), srv.LeaseResponse).lease
        ch = rchannel.StepChannel(c.call("/sim/open_channel", srv.OpenChannelRequest(lease=lease), srv.OpenChannelResponse))
        extremes = np.array([0.0, -0.0, 5e-324, 1e308, -1e308, np.nan, np.inf, -np.inf, 1.0, -1.0])
        answered = refused = 0
        for k in range(400):
            ch._words[rchannel._W_OP] = rng.choice([0, 1, 2, 3, 0xFFFFFFFF])  # noqa: SLF001
            ch.actions[...] = rng.choice(extremes, ch.actions.shape) if k % 2 else \
                np.frombuffer(rng.bytes(ch.actions.nbytes), np.float64).reshape(ch.actions.shape)
            ch._map[rchannel._SEED:rchannel._HAS_SEED + 4] = rng.bytes(12)  # noqa: SLF001
            try:
                ch._call(int(ch._words[rchannel._W_OP]))  # noqa: SLF001
                answered += 1
                assert np.isfinite(ch.observations).all()
            except robosim.ServiceError as e:
                assert e.code == "INVALID_ARGUMENT", e
                refused += 1
        assert answered and refused
        ch.close()
        c.call("/sim/release", srv.ReleaseRequest(lease=lease), srv.Empty)
        assert c.describe().env_count == ENVS


def test_at_most_32_channels_and_a_released_lease_frees_its_slot(tmp_path):
    p, address = _start(tmp_path, "--envs", "40")
    try:
        with robosim.Client(address, name="many") as c:
            leases = [c.call("/sim/lease", srv.LeaseRequest(count=1, client_name=f"c{k}"), srv.LeaseResponse).lease
                      for k in range(33)]
            channels = [rchannel.StepChannel(c.call("/sim/open_channel", srv.OpenChannelRequest(lease=lease),
                                                    srv.OpenChannelResponse)) for lease in leases[:32]]
            for ch in channels:
                ch.step(np.zeros((1, 1)))
            with pytest.raises(robosim.ServiceError) as info:
                c.call("/sim/open_channel", srv.OpenChannelRequest(lease=leases[32]), srv.OpenChannelResponse)
            assert info.value.code == "RESOURCE_EXHAUSTED" and "32" in info.value.message
            c.call("/sim/release", srv.ReleaseRequest(lease=leases[0]), srv.Empty)
            deadline = time.monotonic() + 5
            while True:  # the released lease's channel closes within its next 100 ms wait
                try:
                    last = rchannel.StepChannel(c.call("/sim/open_channel", srv.OpenChannelRequest(lease=leases[32]),
                                                       srv.OpenChannelResponse))
                    break
                except robosim.ServiceError as e:
                    assert e.code == "RESOURCE_EXHAUSTED" and time.monotonic() < deadline
                    time.sleep(0.05)
            last.step(np.zeros((1, 1)))
            with pytest.raises(ClosedError):
                channels[0].step(np.zeros((1, 1)))
            for ch in channels + [last]:
                ch.close()
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0


def _start(tmp_path: Path, *args: str):
    import test_server

    port = test_server._free_port_triple()  # noqa: SLF001
    address = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path / f"server-{port}.log", "wb")
    p = subprocess.Popen([str(test_server.SIM_SERVER), "Scenes/cartpole", "--mode", "lockstep",
                          *(args or ("--envs", "4")), "--listen", address], cwd=test_server.REPO, stdout=log, stderr=subprocess.STDOUT)
    with robosim.Client(address, name="probe", timeout=0.5) as probe:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe.describe()
                return p, address
            except TimeoutError:
                assert p.poll() is None and time.monotonic() < deadline, "sim-server did not start"


def test_a_killed_server_never_leaves_the_client_hanging(tmp_path):
    p, address = _start(tmp_path)
    try:
        # reconnect_timeout=0: the error itself, without waiting for a restart (test_restart_py.py does that)
        env = RoboSimVectorEnv(address, num_envs=2, transport="shm", timeout=30, reconnect_timeout=0)
        env.reset(seed=1)
        env.step(np.zeros(env.action_space.shape))
        p.kill()
        p.wait()
        start = time.monotonic()
        with pytest.raises(ClosedError, match="gone"):
            env.step(np.zeros(env.action_space.shape))
        assert time.monotonic() - start < 3
        env._channel.close()  # noqa: SLF001
        env._channel = None  # noqa: SLF001
        env._client.timeout = 0.2  # noqa: SLF001  (the release goes nowhere)
        env.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
