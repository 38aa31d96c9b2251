"""sim-deploy end to end: a fleet of 20 robots (the envs of a cartpole sim-server), a deployer and
agent processes, with real models trained by sim-train, a registry signed with a fresh key, and the
deployer's SQLite file read here with Python's own sqlite3 as the independent record.

- a good model rolls out at a limited rate (visible in the transition times) and every robot ends on it;
- a model that fails its health check aborts the job at its threshold; the robots that tried it roll
  back, those never notified are REMOVED or CANCELED, none ends on it;
- tampered and unsigned releases are REJECTED by every agent and never activated;
- an execution stuck IN_PROGRESS (its sim-server stopped with SIGSTOP) becomes TIMED_OUT and aborts the job;
- kill -9 of the deployer and of agent processes, several times mid-rollout: the job completes, the
  transition log has every transition once, and no robot ends on a version it was not given;
- kill -9 of a robot's sim-server in the middle of its health check, started again on the same
  address: the agent reconnects by itself, plays the cut episode again, and the check ends as it did
  without the restart.

The binaries come from ``$ROBOSIM_BIN_DIR`` (default ``.build/debug``), as in test_server.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

ROBOTS = 20
AGENT_PROCESSES = 5  # 4 robots each


@pytest.fixture(scope="module")
def bins(sim_train):
    import test_server

    return test_server


def run(bins, *args, timeout=120) -> str:
    r = subprocess.run([str(bins.BIN_DIR / args[0]), *args[1:]], cwd=bins.REPO, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{args}: {r.stdout[-2000:]}{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def models(bins, tmp_path_factory):
    """A good cartpole policy (100% success) and a bad one (a few updates: 0%), trained here."""
    root = tmp_path_factory.mktemp("models")
    for name, steps in (("good", 32768), ("bad", 1024)):
        run(bins, "sim-train", "train", "--scene", "Scenes/cartpole", "--envs", "8", "--steps", str(steps), "--seed", "7",
            "--eval-episodes", "8", "--out", str(root / name), timeout=600)
    return root / "good" / "checkpoint.safetensors", root / "bad" / "checkpoint.safetensors"


@pytest.fixture(scope="module")
def registry(bins, models, tmp_path_factory):
    """Versions 1.0 and 3.0 (good), 2.0-bad (fails the health check), 4.0-tampered (a flipped byte
    after signing) and 5.0-unsigned (no signature)."""
    root = tmp_path_factory.mktemp("registry")
    run(bins, "sim-deploy", "keygen", "--out", str(root / "keys" / "fleet"))
    good, bad = models
    for version, checkpoint in (("1.0", good), ("2.0-bad", bad), ("3.0", good), ("4.0-tampered", good), ("5.0-unsigned", good)):
        run(bins, "sim-deploy", "publish", str(checkpoint), "--version", version, "--registry", str(root / "reg"),
            "--key", str(root / "keys" / "fleet.key"))
    artifact = root / "reg" / "versions" / "4.0-tampered" / "artifact.safetensors"
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0x01
    artifact.write_bytes(bytes(data))
    (root / "reg" / "versions" / "5.0-unsigned" / "manifest.sig").unlink()
    out = subprocess.run([str(bins.BIN_DIR / "sim-deploy"), "versions", "--registry", str(root / "reg"), "--public-key",
                          str(root / "keys" / "fleet.pub")], capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout.count("verified") == 3 and out.stdout.count("REJECTED") == 2, out.stdout
    return root


class Fleet:
    """A deployer and agent processes over one sim-server; each can be killed and restarted."""

    def __init__(self, bins, root: Path, registry: Path, server: str):
        self.bins, self.root, self.registry, self.server = bins, root, registry, server
        self.db = root / "fleet.sqlite"
        self.address = f"tcp://127.0.0.1:{bins._free_port_triple()}"
        self.deployer: subprocess.Popen | None = None
        self.agents: dict[int, subprocess.Popen] = {}
        self.logs: list = []

    def robots(self, k: int) -> list[str]:
        per = ROBOTS // AGENT_PROCESSES
        return [f"robot-{i:02d}" for i in range(k * per, (k + 1) * per)]

    def _log(self, name: str):
        f = open(self.root / f"{name}.log", "ab")
        self.logs.append(f)
        return f

    def start_deployer(self):
        self.deployer = subprocess.Popen(
            [str(self.bins.BIN_DIR / "sim-deploy"), "deployer", "--db", str(self.db), "--registry", str(self.registry / "reg"),
             "--listen", self.address, "--tick", "0.1"], cwd=self.bins.REPO, stdout=self._log("deployer"), stderr=subprocess.STDOUT)

    def start_agent(self, k: int, server: str | None = None, robots: list[str] | None = None, envs: list[int] | None = None,
                    group: str = "fleet", extra: tuple[str, ...] = ()):
        robots = robots or self.robots(k)
        envs = envs if envs is not None else [int(r.split("-")[1]) for r in robots]
        argv = [str(self.bins.BIN_DIR / "sim-deploy"), "agent", "--group", group, "--state", str(self.root / "agents"),
                "--public-key", str(self.registry / "keys" / "fleet.pub"), "--deployer", self.address,
                "--server", server or self.server, "--poll", "0.5"]
        for r, e in zip(robots, envs):
            argv += ["--robot-id", r, "--env", str(e)]
        argv += extra
        self.agents[k] = subprocess.Popen(argv, cwd=self.bins.REPO, stdout=self._log(f"agent-{k}"), stderr=subprocess.STDOUT)

    def kill9(self, process: subprocess.Popen | None):
        if process and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def stop(self):
        for p in [self.deployer, *self.agents.values()]:
            self.kill9(p)
        for f in self.logs:
            f.close()

    def deploy(self, *args: str) -> str:
        return run(self.bins, "sim-deploy", *args, "--db", str(self.db)).strip()

    def create_job(self, job: str, version: str, *args: str, targets=("fleet",)) -> str:
        return self.deploy("create-job", "--job-id", job, "--version", version, "--targets", *targets, *args)

    def status(self, job: str) -> dict:
        return json.loads(self.deploy("status", job, "--json"))

    def wait_job(self, job: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            s = self.status(job)
            if s["status"] in ("COMPLETED", "CANCELED") and all(e["status"] not in ("QUEUED", "IN_PROGRESS") for e in s["executions"]):
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job} did not end in {timeout} s: {s['counts']}\n{self.tail()}")
            time.sleep(0.3)

    def registered(self) -> set[str]:
        """The robots in the deployer's file (none while the deployer has not made it, or its tables, yet)."""
        if not self.db.exists():
            return set()
        try:
            return {robot for (robot,) in self.query("SELECT id FROM robots")}
        except sqlite3.OperationalError as e:  # the file is there, its schema not yet
            if "no such table" not in str(e):
                raise
            return set()

    def wait_registered(self, count: int, timeout: float = 60, robot: str | None = None):
        """Until ``count`` robots are registered (and ``robot`` among them)."""
        deadline = time.monotonic() + timeout
        while len(found := self.registered()) < count or (robot is not None and robot not in found):
            assert time.monotonic() < deadline, f"only {sorted(found)} registered\n{self.tail()}"
            time.sleep(0.2)

    def query(self, sql: str, *args):
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)) as c:
            return c.execute(sql, args).fetchall()

    def agent_state(self, robot: str) -> dict:
        return json.loads((self.root / "agents" / robot / "state.json").read_text())

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:]) for p in sorted(self.root.glob("*.log")))


def check_log(fleet: Fleet, job: str):
    """Every execution's transitions, from the SQLite file: one path of allowed moves from QUEUED,
    each status once, ending at the execution's status."""
    allowed = {("QUEUED", "IN_PROGRESS"), ("QUEUED", "CANCELED"), ("QUEUED", "REMOVED"), ("IN_PROGRESS", "SUCCEEDED"),
               ("IN_PROGRESS", "FAILED"), ("IN_PROGRESS", "REJECTED"), ("IN_PROGRESS", "TIMED_OUT"), ("IN_PROGRESS", "CANCELED")}
    rows = fleet.query("SELECT robot_id, from_status, to_status FROM transitions WHERE job_id = ? ORDER BY sequence", job)
    status = dict(fleet.query("SELECT robot_id, status FROM executions WHERE job_id = ?", job))
    paths: dict[str, list] = {}
    for robot, a, b in rows:
        paths.setdefault(robot, []).append((a, b))
    job_path = paths.pop("")
    assert job_path[0] == (None, "SCHEDULED") and job_path[1] == ("SCHEDULED", "IN_PROGRESS"), job_path
    assert set(paths) == set(status)
    for robot, path in paths.items():
        assert path[0] == (None, "QUEUED"), (robot, path)
        for (_, b), (c, d) in zip(path, path[1:]):
            assert b == c and (c, d) in allowed, (robot, path)
        assert len({b for _, b in path}) == len(path), (robot, path)
        assert path[-1][1] == status[robot], (robot, path, status[robot])


def check_activations(fleet: Fleet):
    """Every version each robot ever ran (its agent's activations.log) was given to it by a job,
    or is the version it returned to; and its last activation is what it runs now."""
    given: dict[str, set] = {}
    for robot, version in fleet.query("SELECT e.robot_id, json_extract(j.document, '$.version') FROM executions e JOIN jobs j ON j.id = e.job_id"):
        given.setdefault(robot, set()).add(version)
    for folder in sorted((fleet.root / "agents").iterdir()):
        log = folder / "activations.log"
        if not log.exists():
            continue
        lines = [line.split("\t") for line in log.read_text().splitlines()]
        for _, version, job, why in lines:
            assert version == "-" or version in given[folder.name], (folder.name, version, job, why)
        assert lines[-1][1] == (fleet.agent_state(folder.name).get("active") or "-"), (folder.name, lines[-1])


@pytest.fixture(scope="module")
def fleet(bins, registry, tmp_path_factory):
    root = tmp_path_factory.mktemp("fleet")
    with bins.run_server(tmp_path_factory, "Scenes/cartpole", "--mode", "lockstep", "--envs", str(ROBOTS), "--log-level", "warning") as server:
        f = Fleet(bins, root, registry, server.address)
        f.start_deployer()
        for k in range(AGENT_PROCESSES):
            f.start_agent(k)
        try:
            f.wait_registered(ROBOTS)
            yield f
        finally:
            f.stop()


def test_a_good_model_rolls_out_at_the_limited_rate(fleet):
    fleet.create_job("rollout-1", "1.0", "--max-per-minute", "120", "--health-episodes", "5")
    s = fleet.wait_job("rollout-1")
    assert s["status"] == "COMPLETED" and s["counts"] == {"SUCCEEDED": ROBOTS}, s["counts"]
    assert all(e["active_version"] == "1.0" for e in s["executions"])
    for e in s["executions"]:
        state = fleet.agent_state(e["robot"])
        assert state["active"] == "1.0" and "pending" not in state
        assert os.readlink(fleet.root / "agents" / e["robot"] / "active.safetensors") == "models/1.0.safetensors"
    # 120 per minute: one robot every 0.5 s, in the notification times and in the starts that follow them.
    # Notifications happen on the deployer's 0.1 s ticks: each gap is 0.5 s give or take a tick.
    notified = sorted(e["notified_at"] for e in s["executions"])
    gaps = [b - a for a, b in zip(notified, notified[1:])]
    assert min(gaps) > 0.5 - 0.1 - 0.15 and 0.45 <= (notified[-1] - notified[0]) / (ROBOTS - 1) <= 0.65, gaps
    started = sorted(at for (at,) in fleet.query("SELECT at FROM transitions WHERE job_id = 'rollout-1' AND to_status = 'IN_PROGRESS' AND robot_id != ''"))
    assert started[-1] - started[0] >= 0.5 * (ROBOTS - 1) - 1.5, started
    check_log(fleet, "rollout-1")


def test_a_failing_model_aborts_and_every_robot_that_tried_it_rolls_back(fleet):
    fleet.create_job("bad-2", "2.0-bad", "--max-per-minute", "60", "--abort", "FAILED:50:3", "--health-episodes", "5")
    s = fleet.wait_job("bad-2")
    # The third failure trips it; a robot notified meanwhile may still finish (and fail) after.
    m = re.match(r"aborted: (\d+) of (\d+) executed robots ended FAILED", s["reason"])
    assert s["status"] == "CANCELED" and m and m[1] == m[2] and int(m[1]) >= 3, s
    by_status: dict[str, list] = {}
    for e in s["executions"]:
        by_status.setdefault(e["status"], []).append(e["robot"])
    assert len(by_status["FAILED"]) >= 3, by_status
    assert set(by_status) <= {"FAILED", "REMOVED", "CANCELED"} and len(by_status.get("REMOVED", [])) >= ROBOTS - 5, by_status
    for e in s["executions"]:
        assert e["active_version"] == "1.0", e
        state = fleet.agent_state(e["robot"])
        assert state["active"] == "1.0"
        assert not (fleet.root / "agents" / e["robot"] / "models" / "2.0-bad.safetensors").exists()
        if e["status"] == "FAILED":
            assert "rolled back to 1.0" in e["detail"] and "success 0.00" in e["detail"], e
        else:  # never notified, or notified and never started: untouched
            assert e["started_at"] is None and e["phase"] == "", e
    check_log(fleet, "bad-2")
    check_activations(fleet)


def test_tampered_and_unsigned_releases_are_rejected_and_never_activated(fleet):
    for job, version, why in (("tampered-4", "4.0-tampered", "checksum mismatch"), ("unsigned-5", "5.0-unsigned", "unsigned")):
        fleet.create_job(job, version, "--max-per-minute", "1000")
        s = fleet.wait_job(job)
        assert s["status"] == "COMPLETED" and s["counts"] == {"REJECTED": ROBOTS}, s["counts"]
        for e in s["executions"]:
            assert why in e["detail"] and e["active_version"] == "1.0", e
            assert fleet.agent_state(e["robot"])["active"] == "1.0"
            assert not (fleet.root / "agents" / e["robot"] / "models" / f"{version}.safetensors").exists()
        check_log(fleet, job)


def test_an_execution_stuck_in_progress_times_out_and_counts_toward_the_abort(fleet, bins, tmp_path_factory):
    """One more robot whose env is on a second sim-server, stopped with SIGSTOP while the robot runs
    its health check: the execution stays IN_PROGRESS, times out, and the job aborts on it. When the
    server is continued, the agent learns the execution ended and the robot stays on what it ran."""
    with bins.run_server(tmp_path_factory, "Scenes/cartpole", "--mode", "lockstep", "--envs", "1", "--log-level", "warning") as stuck_server:
        fleet.start_agent(99, server=stuck_server.address, robots=["robot-stuck"], envs=[0], group="lab")
        fleet.wait_registered(ROBOTS + 1)
        stuck_server.process.send_signal(signal.SIGSTOP)
        try:
            fleet.create_job("stuck-6", "1.0", "--in-progress-timeout", "3", "--abort", "TIMED_OUT:100:1", targets=("robot-stuck",))
            s = fleet.wait_job("stuck-6", timeout=60)
        finally:
            stuck_server.process.send_signal(signal.SIGCONT)
        e = s["executions"][0]
        assert e["status"] == "TIMED_OUT" and s["status"] == "CANCELED" and "TIMED_OUT" in s["reason"], s
        assert e["finished_at"] - e["started_at"] >= 3
        check_log(fleet, "stuck-6")
        # The agent comes back to an execution that ended without it, and forgets it.
        deadline = time.monotonic() + 60
        while "pending" in fleet.agent_state("robot-stuck"):
            assert time.monotonic() < deadline, fleet.tail()
            time.sleep(0.3)
        assert fleet.agent_state("robot-stuck").get("active") is None
        fleet.kill9(fleet.agents.pop(99))


def test_kill_9_of_the_deployer_and_agents_mid_rollout_loses_and_repeats_nothing(fleet):
    rng = random.Random(15)
    fleet.create_job("chaos-3", "3.0", "--max-per-minute", "240", "--health-episodes", "20")
    kills = []
    deadline = time.monotonic() + 240
    for round_ in range(6):
        time.sleep(rng.uniform(0.5, 1.5))
        fleet.kill9(fleet.deployer)
        victims = rng.sample(range(AGENT_PROCESSES), 2)
        for k in victims:
            fleet.kill9(fleet.agents[k])
        kills.append((round_, victims, fleet.status("chaos-3")["counts"]))
        time.sleep(rng.uniform(0.1, 0.5))
        fleet.start_deployer()
        for k in victims:
            fleet.start_agent(k)
        assert time.monotonic() < deadline
    print("kills (round, agent processes, counts before the restart):", kills)
    s = fleet.wait_job("chaos-3", timeout=240)
    assert s["status"] == "COMPLETED" and s["counts"] == {"SUCCEEDED": ROBOTS}, (s["counts"], kills, fleet.tail())
    # Some kills landed mid-rollout (robots were still queued or installing).
    assert any(c.get("QUEUED", 0) + c.get("IN_PROGRESS", 0) > 0 for _, _, c in kills), kills
    check_log(fleet, "chaos-3")
    for e in s["executions"]:
        state = fleet.agent_state(e["robot"])
        assert e["active_version"] == "3.0" and state["active"] == "3.0" and "pending" not in state, (e, state)
        assert state.get("previous") == "1.0", state
    check_activations(fleet)
    log = (fleet.root / "deployer.log").read_text(errors="replace")
    assert "pass failed" not in log and "INTERNAL" not in log, log[-3000:]


def test_do_nothing_leaves_the_failed_version_active_and_rollback_returns_to_the_one_before(fleet):
    fleet.create_job("base-7", "3.0", targets=("robot-00", "robot-01"))   # whatever ran before: 3.0 now
    assert fleet.wait_job("base-7")["counts"] == {"SUCCEEDED": 2}
    fleet.create_job("keep-7", "2.0-bad", "--failure-policy", "DO_NOTHING", targets=("robot-00", "robot-01"))
    s = fleet.wait_job("keep-7")
    assert s["counts"] == {"FAILED": 2}, s
    for e in s["executions"]:
        assert e["active_version"] == "2.0-bad" and "DO_NOTHING: left active" in e["detail"], e
        assert fleet.agent_state(e["robot"])["active"] == "2.0-bad"
    assert fleet.deploy("rollback", "keep-7") == "keep-7-rollback"
    s = fleet.wait_job("keep-7-rollback")
    assert s["status"] == "COMPLETED" and s["counts"] == {"SUCCEEDED": 2}, s
    for e in s["executions"]:
        assert e["active_version"] == "3.0" and fleet.agent_state(e["robot"])["active"] == "3.0", e
    described = json.loads(fleet.deploy("describe-execution", "keep-7-rollback", "robot-00", "--json"))
    assert [t["to"] for t in described["transitions"]] == ["QUEUED", "IN_PROGRESS", "SUCCEEDED"]
    assert described["previous_version"] == "2.0-bad"
    check_log(fleet, "keep-7-rollback")


def test_hostile_agent_requests_get_errors_and_the_deployer_keeps_serving(fleet):
    """Valid messages with extreme values and malformed bytes: every one gets a clear error (or a
    bounded answer), nothing escapes the registry, and the deployer answers real agents after."""
    import robosim
    from robosim.msgs.robosim import deploy_pb2 as d

    fleet.create_job("hostile-9", "1.0", targets=("robot-06",))
    assert fleet.wait_job("hostile-9")["counts"] == {"SUCCEEDED": 1}
    huge = "x" * (1 << 20)
    with robosim.Client(fleet.address, name="py_hostile", timeout=10) as c:
        def refused(service, request, response_type):
            with pytest.raises(robosim.ServiceError) as e:
                c.call(service, request, response_type)
            assert e.value.code in ("INVALID_ARGUMENT", "MALFORMED", "NOT_FOUND"), e.value
            return e.value

        refused("/deploy/register", d.DeployRegisterRequest(robot_id=huge), d.DeployRegisterRequest)
        refused("/deploy/register", d.DeployRegisterRequest(robot_id="ok", groups=["g"] * 100_000), d.DeployRegisterRequest)
        refused("/deploy/register", d.DeployRegisterRequest(robot_id="../etc"), d.DeployRegisterRequest)
        refused("/deploy/next", d.DeployNextRequest(robot_id="ok", active_version="../../x"), d.DeployNextResponse)
        refused("/deploy/update", d.DeployUpdateRequest(job_id="hostile-9", robot_id="robot-06", status="SUCCEEDED!"), d.DeployUpdateResponse)
        refused("/deploy/update", d.DeployUpdateRequest(job_id="nope", robot_id="robot-06", status="FAILED"), d.DeployUpdateResponse)
        refused("/deploy/update", d.DeployUpdateRequest(job_id="hostile-9", robot_id="robot-06", status="QUEUED"), d.DeployUpdateResponse)
        for version, file, offset, size in (("../../keys", "manifest.json", 0, 100), ("1.0", "../../../etc/passwd", 0, 100),
                                            ("1.0", "artifact.safetensors", 0, 0), ("1.0", "artifact.safetensors", 0, 2**32 - 1),
                                            ("1.0", "artifact.safetensors", 2**64 - 1, 100)):
            refused("/deploy/artifact", d.DeployArtifactRequest(version=version, file=file, offset=offset, max_bytes=size), d.DeployArtifactResponse)
        refused("/deploy/next", b"\xff\xff\xff\xff", d.DeployNextResponse)
        # A finished execution's end repeated is accepted and changes nothing; a different end is refused.
        same = c.call("/deploy/update", d.DeployUpdateRequest(job_id="hostile-9", robot_id="robot-06", status="SUCCEEDED"), d.DeployUpdateResponse)
        other = c.call("/deploy/update", d.DeployUpdateRequest(job_id="hostile-9", robot_id="robot-06", status="FAILED", detail=huge), d.DeployUpdateResponse)
        assert same.accepted and not other.accepted and other.status == "SUCCEEDED"
        chunk = c.call("/deploy/artifact", d.DeployArtifactRequest(version="1.0", file="manifest.json", offset=0, max_bytes=1 << 20), d.DeployArtifactResponse)
        assert chunk.found and chunk.total_size == len(chunk.data) and b'"version" : "1.0"' in chunk.data
        missing = c.call("/deploy/artifact", d.DeployArtifactRequest(version="5.0-unsigned", file="manifest.sig", offset=0, max_bytes=10), d.DeployArtifactResponse)
        assert not missing.found
    assert fleet.deployer.poll() is None
    assert fleet.query("SELECT COUNT(*) FROM transitions WHERE job_id = 'hostile-9' AND robot_id = 'robot-06'")[0][0] == 3
    # Real agents still get answers: one more good job.
    fleet.create_job("after-8", "1.0", targets=("robot-05",))
    assert fleet.wait_job("after-8")["counts"] == {"SUCCEEDED": 1}


def test_a_sim_server_killed_mid_health_check_is_taken_back_and_the_check_ends_as_without_it(fleet, tmp_path):
    """One more robot whose env is on a RestartableServer of its own. A first job (the good model, no
    restart) measures the check: its outcome and its steps. A second job (the same model under another
    version, the same health episodes and seed) has the server killed with SIGKILL in the middle of
    an episode of its check (not the first or the last), then started again on the same address. The
    agent reconnects by itself (one warning naming the server, the failed step and the one episode in
    flight lost), plays that episode again from its start and the ones after it (the restarted
    server's step count), and the check ends as the first did: the model passes and is activated.
    Then nothing is left: the agent's lease is released and the server stops cleanly."""
    from restartable import RestartableServer

    import robosim
    from robosim.msgs.robosim import srv_pb2 as robosim_srv

    robot, episodes = "robot-restart", 10
    with RestartableServer("Scenes/cartpole", "--mode", "lockstep", "--envs", "1", "--log-level", "warning", log_dir=tmp_path) as srv, \
            robosim.Client(srv.address, name="py_restart_watch", timeout=5) as watch:
        def steps() -> int:
            """Control steps the server process has taken (its clock, over the control period)."""
            d = watch.describe()
            return round(d.sim_time / (d.physics_dt * d.decimation))

        def create(job: str, version: str):
            fleet.create_job(job, version, "--health-episodes", str(episodes), targets=(robot,))

        def ended(job: str) -> dict:
            s = fleet.wait_job(job, timeout=90)
            assert s["status"] == "COMPLETED" and s["counts"] == {"SUCCEEDED": 1}, (s, fleet.tail(), srv.log_tail())
            return s["executions"][0]

        fleet.start_agent(98, server=srv.address, robots=[robot], envs=[0], group="restart", extra=("--reconnect-timeout", "30"))
        fleet.wait_registered(1, robot=robot)
        agent_log = fleet.root / "agent-98.log"

        # Without a restart: the outcome, and every episode's length (the good model balances to the time limit).
        create("restart-base", "1.0")
        base = ended("restart-base")
        per_episode, rest = divmod(steps(), episodes)
        assert rest == 0 and per_episode >= 100, (per_episode, rest, base)
        assert "reconnected after" not in agent_log.read_text(errors="replace")

        # With one: wait for the check's steps and kill in the middle of an episode, neither the first nor the last.
        start = steps()
        create("restart-10", "3.0")
        deadline = time.monotonic() + 60
        while True:
            done = steps() - start
            if per_episode <= done < (episodes - 1) * per_episode and per_episode // 10 <= done % per_episode <= per_episode // 2:
                phase = fleet.query("SELECT phase FROM executions WHERE job_id = 'restart-10' AND robot_id = ?", robot)[0][0]
                srv.kill()
                killed_at = time.monotonic()
                break
            assert done < (episodes - 1) * per_episode, f"the check passed its kill window unseen ({done} steps)"
            assert time.monotonic() < deadline, (done, fleet.tail())
            time.sleep(0.001)
        completed = done // per_episode
        assert phase == "validating" and fleet.agents[98].poll() is None, phase
        srv.start()
        e = ended("restart-10")
        resumed_in = time.monotonic() - killed_at
        # Nothing left behind: the agent gave its lease back (env 0 can be leased at once, well within the lease's 5 s).
        lease = watch.call("/sim/lease", robosim_srv.LeaseRequest(env_ids=[0], client_name="py_restart_check", ttl_s=5)).lease
        watch.call("/sim/release", robosim_srv.ReleaseRequest(lease=lease))
        # The episode cut by the kill was played again from its start, and those after it: whole episodes
        # on the restarted server.
        assert steps() == (episodes - completed) * per_episode, (steps(), completed, per_episode)

        assert e["detail"] == base["detail"] and f"success 1.00 over {episodes} episodes" in e["detail"], (e, base)
        state = fleet.agent_state(robot)
        assert e["active_version"] == "3.0" and state["active"] == "3.0" and state["previous"] == "1.0" and "pending" not in state, (e, state)
        assert os.readlink(fleet.root / "agents" / robot / "active.safetensors") == "models/3.0.safetensors"
        check_log(fleet, "restart-10")
        # ClientKit's warning: "server ADDRESS restarted ... (/sim/step failed: ...): reconnected after ...; 1 episodes in
        # flight lost ...; reconnects 1, episodes lost 1" (any words between "restarted" and the call, but never
        # "did not restart": this server is a new process).
        warnings = [line for line in agent_log.read_text(errors="replace").splitlines() if "reconnected after" in line]
        assert len(warnings) == 1, warnings
        assert re.search(rf"server {re.escape(srv.address)} restarted\b.*\(/sim/step failed", warnings[0]), warnings[0]
        assert "1 episodes in flight lost" in warnings[0] and "reconnects 1, episodes lost 1" in warnings[0], warnings[0]
        print(f"killed after {done} steps of the check ({completed} of {episodes} episodes of {per_episode} steps done); "
              f"job ended {resumed_in:.1f} s after the kill; agent: {warnings[0]}")

        # The agent process went on by itself (no restart of it): it ends here, and the server with the block.
        assert fleet.agents[98].poll() is None, fleet.tail()
        fleet.kill9(fleet.agents.pop(98))
    assert not srv.alive() and srv.process.returncode == 0, srv.log_tail()
