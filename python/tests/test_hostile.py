"""No client can break the server: property-based requests to every service and command topic of a
real ``sim-server`` process, with random and extreme values in every field (0, -0, denormals, 1e308,
-1, NaN, infinity, huge counts and strings, bytes that are not protobuf at all).

Each call must get a reply within the client's timeout: success, or an error whose code says the
request was refused (never ``INTERNAL``, ``UNAVAILABLE`` or silence). Afterwards the server still
answers ``/sim/describe``, steps, and its resident memory stays under ``MEMORY_BOUND_MIB``. A server
stopped with SIGTERM in the middle of a long render exits within 2 s.

Hypothesis drives the values (``python/requirements-dev.txt``); the number of examples per service is
``ROBOSIM_HOSTILE_EXAMPLES`` (default 300, about 4000 calls in all).
"""

from __future__ import annotations

import math
import os
import signal
import struct
import threading
import time

import numpy as np
import pytest
import zmq

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import robosim  # noqa: E402
from robosim.msgs.geometry_msgs import msg_pb2 as geometry_msgs  # noqa: E402
from robosim.msgs.robosim import msg_pb2 as robosim_msg  # noqa: E402
from robosim.msgs.robosim import srv_pb2 as robosim_srv  # noqa: E402
from robosim.msgs.trajectory_msgs import msg_pb2 as trajectory_msgs  # noqa: E402

from test_server import run_server  # noqa: E402  (skips without a built sim-server)

EXAMPLES = int(os.environ.get("ROBOSIM_HOSTILE_EXAMPLES", "300"))
#: The server's resident memory after the storm (camera_box, 4 envs, OSMesa render threads).
MEMORY_BOUND_MIB = 512
#: Codes that mean "refused": the request was bad or asked too much, the server is fine.
REFUSED = {"INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "MALFORMED", "TOO_LARGE"}

EXTREME = [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1e-9, -1.0, 1.0, 1e308, -1e308, math.nan, math.inf, -math.inf]
floats = st.one_of(st.sampled_from(EXTREME), st.floats(allow_nan=True, allow_infinity=True))
uint32 = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 2**31 - 1, 2**31, 2**32 - 1]), st.integers(0, 2**32 - 1))
uint64 = st.one_of(st.sampled_from([0, 1, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1))
texts = st.one_of(st.sampled_from(["", "top", "side", "front", "x" * 5000, "\x00", "é" * 300]), st.text(max_size=200))
number_texts = st.one_of(floats.map(repr), st.sampled_from(["nan", "inf", "-inf", "1e308", "5e-324", "-1", "0", "true",
                                                             "[1e308, -1e308]", "[nan, 1]", "[0, 1e7]", "[-1, 1]", "[1, 0]",
                                                             "[0.1, 0.2]", "", "[", "]]", "[1,2,3]"]), texts)
PARAMETERS = ["real_time_factor", "paused", "mode", "env_count", "seed", "rate.joint_states", "rate.tf",
              "rate.camera.top", "rate.camera.side", "reset.joint.box_x", "reset.joint.box_y", "rate.nothing"]
ids_lists = st.lists(uint32, max_size=40) | st.lists(st.integers(0, 5), max_size=10)
float_lists = st.lists(floats, max_size=300)


def settings_for(examples: int = EXAMPLES):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory, "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "4",
                    "--render-backend", "osmesa", "--render-threads", "2") as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with robosim.Client(server.address, name="hostile", timeout=20.0) as c:
        yield c


def call(client, service: str, request, response=None):
    """Calls and returns the response, or None when the server refused the request."""
    try:
        return client.call(service, request, response if response is not None else bytes)
    except robosim.ServiceError as e:
        assert e.code in REFUSED, f"{service}: {e.code}: {e.message[:300]}"
        assert len(e.message) < 4096, f"{service}: an error message of {len(e.message)} characters"
        return None


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# -- every service, random and extreme fields -----------------------------------------------------------

@settings_for()
@given(lease=texts, ids=ids_lists, actions=float_lists, targets=float_lists, render=st.booleans(),
       cameras=st.lists(texts, max_size=5))
def test_step(client, lease, ids, actions, targets, render, cameras):
    call(client, "/sim/step", robosim_srv.StepRequest(lease=lease, env_ids=ids, actions=actions, ee_targets=targets,
                                                      render=render, cameras=cameras))


@settings_for()
@given(ids=st.lists(st.integers(0, 3), max_size=4, unique=True), scale=st.sampled_from([1.0, 1e308, 5e-324, -1.0]))
def test_step_valid_shapes_with_extreme_values(client, ids, scale):
    """Well-formed requests whose values are extreme: refused when not finite, clipped when out of bounds."""
    n = len(ids) or 4
    action_size = client.describe().action_size
    r = call(client, "/sim/step", robosim_srv.StepRequest(env_ids=ids, actions=[scale] * n * action_size),
             robosim_srv.StepResponse)
    if r is not None:
        assert all(math.isfinite(x) for x in r.observations)


@settings_for()
@given(lease=texts, ids=ids_lists, seed=uint64, has_seed=st.booleans(), render=st.booleans(),
       cameras=st.lists(texts, max_size=5), seed_indices=st.lists(uint64, max_size=6))
def test_reset(client, lease, ids, seed, has_seed, render, cameras, seed_indices):
    r = robosim_srv.ResetRequest(lease=lease, env_ids=ids, render=render, cameras=cameras, seed_indices=seed_indices)
    if has_seed:
        r.seed = seed
    call(client, "/sim/reset", r)


@settings_for()
@given(lease=texts, ids=ids_lists, cameras=st.lists(st.sampled_from(["top", "side", "top", "nope"]) | texts, max_size=8))
def test_render(client, lease, ids, cameras):
    call(client, "/sim/render", robosim_srv.RenderRequest(lease=lease, env_ids=ids, cameras=cameras))


@settings_for()
@given(ids=ids_lists, count=uint32, name=texts, ttl=floats, renew=texts)
def test_lease_and_release(client, ids, count, name, ttl, renew):
    r = call(client, "/sim/lease", robosim_srv.LeaseRequest(env_ids=ids, count=count, client_name=name, ttl_s=ttl),
             robosim_srv.LeaseResponse)
    call(client, "/sim/lease", robosim_srv.LeaseRequest(lease=renew, ttl_s=ttl))
    if r is not None:  # released, so that the tests after this one find free envs
        call(client, "/sim/release", robosim_srv.ReleaseRequest(lease=r.lease))
    call(client, "/sim/release", robosim_srv.ReleaseRequest(lease=renew))


reward_texts = st.text(alphabet="0123456789.eE+-*/^()<>=!&|?:, _abcdefghijklmnopqrstuvwxyz", max_size=200) | texts


@settings_for()
@given(lease=texts, take=st.booleans(), expression=reward_texts)
def test_set_reward(client, lease, take, expression):
    """Random and mutated expressions, on random and real leases: each is taken or refused."""
    if take:
        r = call(client, "/sim/lease", robosim_srv.LeaseRequest(count=1, client_name="hostile_reward"), robosim_srv.LeaseResponse)
        lease = r.lease if r is not None else lease
    call(client, "/sim/set_reward", robosim_srv.SetRewardRequest(lease=lease, expression=expression))
    if take:
        call(client, "/sim/step", robosim_srv.StepRequest(lease=lease, actions=[0.0] * client.describe().action_size))
        call(client, "/sim/release", robosim_srv.ReleaseRequest(lease=lease))


@settings_for()
@given(lease=texts, take=st.booleans(), steps=st.integers(0, 3))
def test_reward_statistics(client, lease, take, steps):
    """Random leases, and real ones stepped a few times: answered or refused, never more."""
    if take:
        r = call(client, "/sim/lease", robosim_srv.LeaseRequest(count=1, client_name="hostile_stats"), robosim_srv.LeaseResponse)
        lease = r.lease if r is not None else lease
        for _ in range(steps):
            call(client, "/sim/step", robosim_srv.StepRequest(lease=lease, actions=[0.0] * client.describe().action_size))
    r = call(client, "/sim/reward_statistics", robosim_srv.RewardStatisticsRequest(lease=lease), robosim_srv.RewardStatisticsResponse)
    if r is not None:
        assert len(r.mean) == len(r.min) == len(r.max) == len(r.names) and r.names[-2:] == ["reward", "success"]
        assert all(math.isfinite(x) for x in [*r.mean, *r.min, *r.max])
    if take:
        call(client, "/sim/release", robosim_srv.ReleaseRequest(lease=lease))


@settings_for()
@given(lease=texts, take=st.booleans())
def test_open_channel(client, lease, take):
    """Random leases, and real ones (whose channel is never mapped: the server closes it with the lease)."""
    if take:
        r = call(client, "/sim/lease", robosim_srv.LeaseRequest(count=1, client_name="hostile_channel"), robosim_srv.LeaseResponse)
        lease = r.lease if r is not None else lease
    call(client, "/sim/open_channel", robosim_srv.OpenChannelRequest(lease=lease))
    call(client, "/sim/open_channel", robosim_srv.OpenChannelRequest(lease=lease))  # a second one: refused
    if take:
        call(client, "/sim/release", robosim_srv.ReleaseRequest(lease=lease))


@settings_for()
@given(params=st.lists(st.tuples(st.sampled_from(PARAMETERS) | texts, number_texts), max_size=6),
       names=st.lists(st.sampled_from(PARAMETERS) | texts, max_size=20))
def test_parameters(client, params, names):
    call(client, "/sim/set_parameters", robosim_srv.SetParametersRequest(
        parameters=[robosim_srv.Parameter(name=n, value=v) for n, v in params]))
    call(client, "/sim/get_parameters", robosim_srv.GetParametersRequest(names=names))


@settings_for()
@given(name=texts, host=texts, pid=uint32, heartbeat=floats, leaving=st.booleans(),
       topics=st.lists(st.sampled_from(["/a", "/env_0/action", "bad name", "", "/x" * 150]) | texts, max_size=30))
def test_graph_announce(client, name, host, pid, heartbeat, leaving, topics):
    info = robosim_msg.NodeInfo(name=name, host=host, pid=pid, heartbeat_s=heartbeat, leaving=leaving)
    for t in topics:
        info.publishers.add(topic=t, type="std_msgs/msg/String")
        info.subscriptions.add(topic=t, type="std_msgs/msg/String")
    call(client, "/graph/announce", info)


@settings_for()
@given(service=st.sampled_from(["/sim/step", "/sim/reset", "/sim/render", "/sim/lease", "/sim/release", "/sim/describe",
                                "/sim/open_channel", "/sim/set_reward", "/sim/reward_statistics",
                                "/sim/get_parameters", "/sim/set_parameters", "/sim/pause", "/sim/resume",
                                "/graph/list", "/graph/announce", "/nope"]),
       payload=st.binary(max_size=3000))
def test_bytes_that_are_not_protobuf(client, service, payload):
    call(client, service, payload)


def test_graph_holds_at_most_its_node_limit(client):
    refused = 0
    for k in range(1100):
        try:
            client.call("/graph/announce", robosim_msg.NodeInfo(name=f"flood_{k}", host="h", pid=k, heartbeat_s=3600), bytes)
        except robosim.ServiceError as e:
            assert e.code == "RESOURCE_EXHAUSTED" and "1024" in e.message, e.message
            refused += 1
    assert refused >= 1100 - 1024
    for k in range(1100):  # leave again, so the graph is small for the tests after this one
        client.call("/graph/announce", robosim_msg.NodeInfo(name=f"flood_{k}", host="h", pid=k, leaving=True), bytes)


# -- command topics -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def realtime_server(tmp_path_factory):
    with run_server(tmp_path_factory, "Scenes/tbar_push", "--envs", "2", "--rtf", "0", "--render-backend", "none") as srv:
        yield srv


def test_command_topics_take_any_message(realtime_server):
    """Random and extreme commands on every command topic: each is applied or counted as rejected."""
    rng = np.random.default_rng(0)
    with robosim.Client(realtime_server.address, name="hostile_topics", timeout=10.0) as c:
        pubs = {
            "action": c.publisher("/env_0/action", robosim_msg.Action),
            "joint_commands": c.publisher("/env_0/joint_commands", trajectory_msgs.JointTrajectoryPoint),
            "ee_target": c.publisher("/env_1/ee_target", geometry_msgs.PoseStamped),
        }
        for p in pubs.values():
            assert p.wait_matching(timeout=10)
        values = np.array(EXTREME, dtype=np.float64)
        for k in range(1500):
            pick = lambda n: list(rng.choice(values, size=n)) if k % 2 else list(rng.standard_normal(n) * 10.0 ** rng.integers(-5, 300))
            size = int(rng.integers(0, 12))
            pubs["action"].publish(robosim_msg.Action(data=pick(size)))
            point = trajectory_msgs.JointTrajectoryPoint(positions=pick(size), velocities=pick(int(rng.integers(0, 7))),
                                                         accelerations=pick(int(rng.integers(0, 7))))
            point.time_from_start.sec = int(rng.integers(-2**31, 2**31))
            pubs["joint_commands"].publish(point)
            pose = geometry_msgs.PoseStamped()
            pose.header.frame_id = ["", "world", "base", "x" * 300][k % 4]
            pose.header.stamp.sec = int(rng.integers(-2**31, 2**31))
            (pose.pose.position.x, pose.pose.position.y, pose.pose.position.z) = pick(3)
            (pose.pose.orientation.w, pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z) = pick(4)
            pubs["ee_target"].publish(pose)
            if k % 100 == 0:
                time.sleep(0.01)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stats = {s.topic: s for s in c.describe().commands}
            if sum(s.accepted + s.rejected for s in stats.values()) >= 3 * 1500 * 0.9:
                break
            time.sleep(0.1)
        total = sum(s.accepted + s.rejected for s in stats.values())
        assert total >= 3 * 1500 * 0.9, f"only {total} commands counted"
        assert all(s.rejected > 0 for s in stats.values())
        d = c.describe()
        assert d.sim_time > 0 and realtime_server.process.poll() is None


# -- afterwards ----------------------------------------------------------------------------------------

def test_queued_calls_are_bounded(server):
    """A client that sends calls without waiting for replies is pushed back, never buffered without limit."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVHWM, 0)
    s.connect(server.address)
    try:
        request = robosim_srv.RenderRequest(env_ids=[0], cameras=["side"]).SerializeToString()
        n = 3000
        for k in range(n):
            s.send_multipart([b"", b"/sim/render", request, struct.pack("<Q", k)])
        codes = {"ok": 0}
        poller = zmq.Poller()
        poller.register(s, zmq.POLLIN)
        got = 0
        deadline = time.monotonic() + 120
        while got < n and time.monotonic() < deadline:
            if not poller.poll(1000):
                continue
            frames = s.recv_multipart()
            got += 1
            status, body = frames[1], frames[2]
            if status == b"ok":
                codes["ok"] += 1
            else:
                e = robosim_msg.Error.FromString(body)
                name = robosim_msg.ErrorCode.Name(e.code)
                codes[name] = codes.get(name, 0) + 1
        assert got == n, f"{got} of {n} calls answered: {codes}"
        assert codes["ok"] > 0 and sum(v for k, v in codes.items() if k != "ok") > 0, codes
    finally:
        s.close()


def test_server_survives_with_bounded_memory(server, client):
    d = client.describe()
    assert d.scene == "camera_box" and d.env_count == 4
    lease = client.call("/sim/lease", robosim_srv.LeaseRequest(count=1, client_name="after", ttl_s=5), robosim_srv.LeaseResponse)
    r = client.call("/sim/step", robosim_srv.StepRequest(lease=lease.lease, actions=[0.0] * d.action_size),
                    robosim_srv.StepResponse)
    assert len(r.observations) == d.observation_size
    client.call("/sim/release", robosim_srv.ReleaseRequest(lease=lease.lease), bytes)
    assert server.process.poll() is None
    rss = rss_mib(server.process.pid)
    print(f"sim-server resident memory after the hostile tests: {rss:.0f} MiB (bound {MEMORY_BOUND_MIB} MiB)")
    assert rss < MEMORY_BOUND_MIB


def test_sigterm_in_the_middle_of_a_long_render_stops_within_2_s(tmp_path_factory):
    with run_server(tmp_path_factory, "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "1024",
                    "--render-backend", "osmesa", "--render-threads", "1") as srv:
        errors: list = []
        renders = []

        def render():
            # Render after render until the server goes: at the signal one is in progress.
            with robosim.Client(srv.address, name="long_render", timeout=120) as c:
                while True:
                    try:
                        c.call("/sim/render", robosim_srv.RenderRequest(cameras=["top", "side"]), bytes)
                        renders.append(time.monotonic())
                    except (robosim.ServiceError, TimeoutError, robosim.ProtocolError, robosim.ClosedError) as e:
                        errors.append(e)
                        return

        t = threading.Thread(target=render, daemon=True)
        t.start()
        time.sleep(1.0)  # 1024 envs x 2 cameras: seconds of rendering per call on one thread
        assert t.is_alive(), f"the render thread ended early: {errors}"
        start = time.monotonic()
        srv.process.send_signal(signal.SIGTERM)
        srv.process.wait(timeout=10)
        took = time.monotonic() - start
        assert took < 2.0, f"sim-server took {took:.2f} s to stop after SIGTERM"
        assert srv.process.returncode == 0
        t.join(timeout=10)
        assert errors and not t.is_alive(), "the render in progress got no answer"
