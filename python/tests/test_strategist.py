"""End-to-end tests of `sim-strategist` against the real `sim-server` on Scenes/tbar_push: the offline
planner pushes T-bars into their slots over topics, publishes its strategies and logs them; with an
OpenAI-compatible backend that proposes an unsafe strategy, validation rejects it and the offline
planner takes over. Binaries as in test_server.py (skipped without them unless ROBOSIM_REQUIRE_SERVER=1).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

import robosim
from robosim.msgs.robosim import msg_pb2 as robosim_msg
from fake_llm import fake_openai
from test_server import BIN_DIR, REPO, run_server

SIM_STRATEGIST = BIN_DIR / "sim-strategist"

if not SIM_STRATEGIST.exists():
    reason = f"sim-strategist not built in {BIN_DIR}"
    if os.environ.get("ROBOSIM_REQUIRE_SERVER") == "1":
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)


def strategist(server, *args, timeout=240):
    return subprocess.run([str(SIM_STRATEGIST), "--server", server.address, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def read_logs(log_dir):
    lines = []
    for path in sorted(log_dir.glob("env_*_episode_*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def run_offline(tmp_path_factory, log_dir, rtf):
    """8 seeded episodes of the offline planner on 4 envs at real-time factor ``rtf``: the summary
    line's (succeeded, ended), the per-episode lines, the last /env_0/strategy and the server log."""
    with run_server(tmp_path_factory, "Scenes/tbar_push", "--envs", "4", "--rtf", rtf) as server:
        with robosim.Client(server.address, timeout=5.0) as client:
            strategies = client.subscribe("/env_0/strategy", robosim_msg.Strategy, qos="reliable")
            assert strategies.wait_connected(5.0)
            run = strategist(server, "--episodes", "8", "--seed", "3", "--log-dir", str(log_dir))
            assert run.returncode == 0, run.stderr[-3000:]
            first = run.stdout.splitlines()[0]
            succeeded, ended = int(first.split()[1]), int(first.split()[3])
            assert ended == 8, run.stdout
            strategy = strategies.recv(timeout=5.0)
        return (succeeded, ended), run.stdout, strategy, server


def test_offline_strategist_pushes_tbars_into_their_slots(tmp_path_factory, tmp_path):
    (succeeded, _), stdout, s, _ = run_offline(tmp_path_factory, tmp_path, "3")
    # The offline planner succeeds in about 90% of episodes at any --rtf (scripts/strategist-rtf.sh:
    # 83-94% over runs of 48; a realtime run is not bit-exact). 5 of 8 fails by chance in 0.5% of
    # runs at 90%; a strategist that does not pace (12% at --rtf 0) passes it in 0.1%.
    assert succeeded >= 5, stdout
    assert s.backend == "offline" and s.push_side and len(s.waypoints) >= 2 and s.rationale
    assert abs(s.waypoints[-1].position.z - 0.763) < 1e-6
    logs = read_logs(tmp_path)
    assert logs and all(line["backend"] == "offline" and "rejection" not in line for line in logs)
    assert {line["env"] for line in logs} == {0, 1, 2, 3}


def test_strategist_paces_a_server_running_as_fast_as_it_can(tmp_path_factory, tmp_path):
    """At --rtf 0 the server outruns any client that acts on wall-clock ticks (12% success before
    /pace); the strategist holds it to its own sim time through /pace and succeeds as at --rtf 1."""
    (succeeded, _), stdout, _, server = run_offline(tmp_path_factory, tmp_path, "0")
    assert succeeded >= 5, stdout   # the floor of the test above
    log = server.log.read_text()
    assert "pacing: the step loop now waits for this client's sim time" in log
    assert "pacing: client stopped pacing" in log, "the strategist did not say it stopped pacing"


def unsafe_plan(_body):
    """A strategy whose first waypoint is inside the table."""
    plan = {"push_side": "translate:stem_end", "contact_point": [0.05, -0.28], "direction": [0, 1],
            "waypoints": [[0.05, -0.32, 0.60], [0.05, -0.25, 0.763]], "rationale": "straight in"}
    return "Plan:\n" + json.dumps(plan)


def test_unsafe_llm_strategy_is_rejected_and_the_offline_planner_takes_over(tmp_path_factory, tmp_path):
    with fake_openai(unsafe_plan) as (endpoint, requests):
        with run_server(tmp_path_factory, "Scenes/tbar_push", "--envs", "1", "--rtf", "3") as server:
            run = strategist(server, "--backend", "openai", "--endpoint", endpoint,
                             "--model", "fake-llm", "--episodes", "1", "--seed", "3", "--log-dir", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert requests, "the strategist never asked the backend"
    path, body = requests[0]
    assert path == "/v1/chat/completions" and body["model"] == "fake-llm"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "position_error" in body["messages"][1]["content"]
    assert "falling back to the offline planner" in run.stderr
    logs = read_logs(tmp_path)
    assert logs and all(line["backend"] == "offline" for line in logs)
    for line in logs:
        assert line["rejection"].startswith("strategy rejected by validation:"), line["rejection"]
        assert "waypoint 0: (0.050, -0.320, 0.600) is outside the workspace box" in line["rejection"], line["rejection"]
    assert all("reply" in line and "system" in line and "user" in line for line in logs)


def test_strategist_goes_on_after_a_server_restart(tmp_path):
    """kill -9 of the server mid-run and the same command again: the strategist notices (a new
    instance id, whether its clock went back first or not), says which episodes in flight were lost,
    reseeds the envs at those episodes and finishes the run with the usual success rate."""
    from restartable import RestartableServer

    with RestartableServer("Scenes/tbar_push", "--envs", "2", "--rtf", "3", log_dir=tmp_path) as srv:
        p = subprocess.Popen([str(SIM_STRATEGIST), "--server", srv.address, "--episodes", "6", "--seed", "3"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(6)   # mid-way through the first episodes
            srv.restart()
            stdout, stderr = p.communicate(timeout=240)
        finally:
            if p.poll() is None:
                p.kill()
    assert p.returncode == 0, stderr[-3000:]
    # One restart: seen by its new instance id, or (a loaded machine) by its clock going back while
    # the new server did not answer yet.
    assert len(re.findall(r"the server restarted \(.*?\): episodes in flight lost", stderr)) == 1, stderr[-3000:]
    check_one_restart(stdout, stderr)


def check_one_restart(stdout, stderr):
    """The summary of a 2-env, 6-episode seeded run with one restart: the episodes in flight it lost,
    each env reseeded at the episode it was playing, and the run finished with the usual success."""
    first = stdout.splitlines()[0]
    lost = re.findall(r"env (\d+) episode (\d+)", re.search(r"strategist\.lost=(.*?) \[", stderr).group(1))
    # Both envs were playing, unless one had just ended an episode when the server went.
    assert 1 <= len(lost) <= 2 and f"1 server restart(s), {len(lost)} episode(s) in flight lost" in first, (lost, stdout)
    reseeded = re.search(r"strategist\.episodes=(.*?) \[StrategistKit\] reseeded", stderr)
    assert reseeded, stderr[-3000:]
    # Each env starts again at the episode it was playing (an env between episodes at its next one).
    schedule = dict(re.findall(r"env (\d+): (\d+)", reseeded.group(1)))
    assert sorted(schedule) == ["0", "1"] and all(schedule[env] == episode for env, episode in lost), (lost, schedule)
    succeeded, ended = int(first.split()[1]), int(first.split()[3])
    # The planner succeeds in about 9 of 10 episodes: 3 of 6 is a floor that only a broken restart misses.
    assert ended == 6 and succeeded >= 3, stdout


def clock_seconds(m):
    return m.clock.sec + m.clock.nanosec * 1e-9


def test_strategist_counts_a_restart_whose_clock_raced_past_the_old_one(tmp_path):
    """At --rtf 0 a server nobody paces yet runs tens of sim seconds per wall second, so a restarted
    one can be past the old one's time when the strategist first hears it: its clock never goes back,
    and only the instance id (/sim/describe) tells. Made certain rather than likely: the strategist
    is stopped (SIGSTOP) over the kill -9 and the start, and let go on (SIGCONT) only when the new
    server's clock, unpaced, is well past anything the old one published. One restart is counted,
    the episodes in flight are played again, and the run ends as usual."""
    from restartable import RestartableServer

    out, err = tmp_path / "strategist.out", tmp_path / "strategist.err"
    with RestartableServer("Scenes/tbar_push", "--envs", "2", "--rtf", "0", log_dir=tmp_path) as srv:
        probe = robosim.Client(srv.address, timeout=5.0)
        old_clock = probe.subscribe("/clock", "rosgraph_msgs/msg/Clock")
        assert old_clock.wait_connected(5.0)
        with open(out, "w") as stdout_file, open(err, "w") as stderr_file:
            p = subprocess.Popen([str(SIM_STRATEGIST), "--server", srv.address, "--episodes", "6", "--seed", "3"], cwd=REPO,
                                 stdout=stdout_file, stderr=stderr_file, text=True)
        try:
            deadline = time.monotonic() + 60
            while "sim-strategist running" not in err.read_text():
                assert p.poll() is None and time.monotonic() < deadline, err.read_text()[-3000:]
                time.sleep(0.1)
            time.sleep(1)   # into the first episodes (at --rtf 0 the run takes a few seconds)
            os.kill(p.pid, signal.SIGSTOP)
            try:
                # The old server stops where the strategist last paced it and says that time once more;
                # it is killed before it stops waiting for the silent strategist (1 s), so no time it
                # published is later than the latest heard here by more than a step or two.
                old, until = None, time.monotonic() + 0.4
                while time.monotonic() < until:
                    try:
                        old = max(old or 0.0, clock_seconds(old_clock.recv(timeout=0.05)))
                    except TimeoutError:
                        pass
                probe.close()
                assert old is not None, srv.log_tail()
                srv.restart()
                # The new server runs unpaced; let the strategist go on when it is well past the old
                # time, and early in an episode (30 s), so that no episode of its own ends before the
                # strategist notices the restart and reseeds.
                with robosim.Client(srv.address, timeout=5.0) as new_probe:
                    new_clock = new_probe.subscribe("/clock", "rosgraph_msgs/msg/Clock")
                    deadline = time.monotonic() + 120
                    while True:
                        new = clock_seconds(new_clock.recv(timeout=5.0))
                        if new > old + 5 and new % 30 < 10:
                            break
                        assert time.monotonic() < deadline, (old, new)
            finally:
                os.kill(p.pid, signal.SIGCONT)
            p.wait(timeout=240)
        finally:
            probe.close()
            if p.poll() is None:
                p.kill()
                p.wait()
    stdout, stderr = out.read_text(), err.read_text()
    assert p.returncode == 0, stderr[-3000:]
    restarts = re.findall(r"the server restarted \((.*?)\)", stderr)
    assert restarts == ["new instance id"], (restarts, stderr[-3000:])
    # The clock had not gone back when the restart was noticed (it never does here: the strategist
    # hears the new server first at a time past the old one's).
    was, now = (float(re.search(rf"strategist\.clock_{k}=([0-9.]+)", stderr).group(1)) for k in ("was", "now"))
    assert now >= was, (old, was, now)
    check_one_restart(stdout, stderr)
