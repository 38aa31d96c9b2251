"""Pacing a realtime server on sim time over /pace (robosim/msg/Pace, docs/wire-protocol.md), against
the real sim-server: a pacing client holds the step loop at its stamp plus horizon, a client that
goes silent stops holding it after a second, one that leaves stops at once, and out-of-range
messages are ignored. Binaries as in test_server.py.
"""

from __future__ import annotations

import math
import time

import robosim
from robosim.msgs.robosim import msg_pb2 as robosim_msg
from robosim.msgs.rosgraph_msgs import msg_pb2 as rosgraph_msgs
from test_server import run_server


def clock_now(clock_sub, timeout=5.0) -> float:
    """The newest /clock time (seconds): the subscription keeps only the newest message."""
    m = clock_sub.recv(timeout=timeout)
    return m.clock.sec + m.clock.nanosec * 1e-9


def pace(publisher, stamp, horizon, leaving=False, node="py_pacer"):
    m = robosim_msg.Pace(node=node, horizon_s=horizon, leaving=leaving)
    m.stamp.sec, m.stamp.nanosec = int(stamp), int(round((stamp - int(stamp)) * 1e9))
    publisher.publish(m)


def hold(publisher, clock_sub, stamp, horizon, seconds):
    """Publishes /pace every 50 ms for ``seconds``; returns the clock times seen meanwhile."""
    seen, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        pace(publisher, stamp, horizon)
        time.sleep(0.05)
        while clock_sub.pending:
            m = clock_sub.recv(timeout=1.0)
            seen.append(m.clock.sec + m.clock.nanosec * 1e-9)
    return seen


def test_a_pacing_client_holds_the_server_and_a_silent_one_stops_holding_it(tmp_path_factory):
    with run_server(tmp_path_factory, "Scenes/cartpole", "--envs", "1", "--rtf", "0") as server:
        with robosim.Client(server.address, timeout=5.0) as client:
            clock_sub = client.subscribe("/clock", rosgraph_msgs.Clock, qos="sensor", depth=1)
            assert clock_sub.wait_connected(5.0)
            publisher = client.publisher("/pace", robosim_msg.Pace)
            assert publisher.wait_matching(5.0)

            # Caught: at --rtf 0 the server runs hundreds of sim seconds per wall second, so by the
            # time a first /pace arrives it is past any stamp read from /clock; it stops where it is.
            horizon = 0.5
            start = clock_now(clock_sub)
            caught = hold(publisher, clock_sub, start, horizon, 0.5)
            start = max(caught, default=start)
            # Held: a stamp ahead of where it waits moves it to stamp + horizon and no further.
            stamp = start + 2.0
            seen = hold(publisher, clock_sub, stamp, horizon, 1.5)
            assert seen and max(seen) <= stamp + horizon + 0.02, (start, max(seen))
            held_at = max(seen)
            assert held_at >= stamp + horizon - 0.05, "the server stopped short of the pacer's limit"
            later = hold(publisher, clock_sub, stamp, horizon, 0.5)
            assert not later or max(later) <= stamp + horizon + 0.02

            # Moving the stamp moves the server by as much.
            seen = hold(publisher, clock_sub, stamp + 1.0, horizon, 1.0)
            assert seen and abs(max(seen) - (stamp + 1.0 + horizon)) <= 0.05, (stamp, max(seen))

            # Silent: after a second of wall time the server no longer waits.
            time.sleep(2.0)
            assert clock_now(clock_sub) > stamp + 1.0 + horizon + 5.0

            # Out-of-range horizons are ignored: the server is not held.
            now = clock_now(clock_sub)
            for bad in (math.nan, math.inf, 0.0, 1e9, -1.0):
                pace(publisher, now, bad, node="py_bad")
            time.sleep(0.5)
            assert clock_now(clock_sub) > now + 5.0

            # Leaving: released at once, not after the silence.
            now = clock_now(clock_sub)
            hold(publisher, clock_sub, now, 0.1, 0.3)
            pace(publisher, now, 0.1, leaving=True)
            time.sleep(0.3)
            assert clock_now(clock_sub) > now + 5.0
            assert client.describe().env_count == 1   # still answering
    log = server.log.read_text()
    assert "pacing: the step loop now waits for this client's sim time" in log
    assert "pacing: client silent, no longer waited for" in log
    assert "pacing: client stopped pacing" in log


def test_a_horizon_shorter_than_a_step_and_the_clock_period_still_moves_on(tmp_path_factory):
    """/clock every 0.1 s of sim time, a client that acts on each clock it hears with a horizon of
    1 ms (shorter than the 1/60 s step): the server publishes the time it waits at and always steps
    once past a stamp, so the two go on together instead of waiting for each other for good."""
    with run_server(tmp_path_factory, "Scenes/cartpole", "--envs", "1", "--rtf", "0", "--clock-rate", "10") as server:
        with robosim.Client(server.address, timeout=5.0) as client:
            clock_sub = client.subscribe("/clock", rosgraph_msgs.Clock, qos="sensor", depth=1)
            assert clock_sub.wait_connected(5.0)
            publisher = client.publisher("/pace", robosim_msg.Pace)
            assert publisher.wait_matching(5.0)
            pace(publisher, clock_now(clock_sub), 0.001)
            seen = []
            start = time.monotonic()
            while time.monotonic() < start + 3.0:
                now = clock_now(clock_sub, timeout=2.0)   # a TimeoutError here: the two wait for each other
                seen.append((time.monotonic() - start, now))
                pace(publisher, now, 0.001)
            times = [t for _, t in seen]
            assert len(set(times)) >= 20, f"the server moved {len(set(times))} times in 3 s"
            # Held: each clock it published is at most one step (1/60 s) past the last stamp it got.
            # The first half second is left out: clocks published while it ran free before the
            # first /pace are still being read then.
            settled = [t for w, t in seen if w >= 0.5]
            steps = [b - a for a, b in zip(settled, settled[1:]) if b > a]
            assert len(steps) >= 10 and max(steps) <= 0.02 + 1e-6, (max(steps), len(steps))
    assert "pacing: the step loop now waits for this client's sim time" in server.log.read_text()
