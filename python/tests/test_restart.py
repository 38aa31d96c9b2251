"""Server restarts under the Swift clients, end to end with the real binaries.

A lockstep sim-server is killed with SIGKILL in the middle of a run and the same command is started
again on the same address. sim-collect still writes exactly the episodes asked for (the ones in
flight are recorded again, from their start), its dataset loads, and its log says what it lost;
sim-train goes on training and reports the episodes the restart truncated.
Binaries from ``$ROBOSIM_BIN_DIR``, as in ``test_server.py``.
"""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest

import robosim
from robosim.msgs.robosim import srv_pb2 as robosim_srv

from restartable import RestartableServer
from test_server import BIN_DIR, REPO, SIM_SERVER

SIM_COLLECT = BIN_DIR / "sim-collect"
SIM_TRAIN = BIN_DIR / "sim-train"
if not (SIM_SERVER.exists() and SIM_COLLECT.exists() and SIM_TRAIN.exists()):
    pytest.skip(f"sim-server, sim-collect and sim-train are not built in {BIN_DIR}", allow_module_level=True)


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"{what}: the client exited first ({process.returncode}):\n{process.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def first_observations(address: str, seed: int, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
    """The first observation of each (env, env episode) in ``wanted`` of a seeded run (zero actions)."""
    out = {}
    with robosim.Client(address, timeout=30) as c:
        d = c.describe()
        n, size = d.env_count, d.observation_size
        lease = c.call("/sim/lease", robosim_srv.LeaseRequest(count=n, client_name="py_check", ttl_s=60)).lease
        r = c.call("/sim/reset", robosim_srv.ResetRequest(lease=lease, seed=seed))
        obs = np.array(r.observations).reshape(n, size)
        episode = [0] * n
        for _ in range(100_000):
            for k in range(n):
                if (k, episode[k]) in wanted:
                    out[(k, episode[k])] = obs[k].copy()
            if len(out) == len(wanted):
                break
            s = c.call("/sim/step", robosim_srv.StepRequest(lease=lease, actions=[0.0] * (n * d.action_size)))
            obs = np.array(s.observations).reshape(n, size)
            for k in range(n):
                if s.terminated[k] or s.truncated[k]:
                    episode[k] += 1
        c.call("/sim/release", robosim_srv.ReleaseRequest(lease=lease))
    return out


def test_collect_survives_a_server_restart(tmp_path):
    """sim-collect of 12 episodes with the server killed after 3 were sealed and started again: 12
    episodes, the dataset loads (pyarrow, the repo's LeRobot checks), each env's episodes are
    0, 1, 2... without a gap or a repeat, each starts where its (seed, env, episode) starts, and the
    log names the server and what was lost."""
    from test_collect import check_dataset, read_episodes

    server = RestartableServer("Scenes/test/camera_box", "--mode", "lockstep", "--envs", "2",
                               "--render-backend", "osmesa", "--seed", "5", log_dir=tmp_path)
    server.start()
    out = tmp_path / "ds"
    episodes = 12
    try:
        p = subprocess.Popen([str(SIM_COLLECT), "--server", server.address, "--out", str(out), "--episodes", str(episodes),
                              "--policy", "random", "--seed", "4", "--timeout", "2", "--reconnect-timeout", "30",
                              "--write-queue", "1"],  # stepping keeps pace with the writer: the kill comes mid-run
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        staging = out / ".robosim-staging"
        wait_for(lambda: len(list(staging.glob("episode-*"))) >= 3, 40, "3 sealed episodes", p)
        time.sleep(0.1)  # in the middle of the next episodes
        server.kill()
        time.sleep(0.5)
        server.start()
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, f"sim-collect failed ({p.returncode}):\n{stderr[-3000:]}"
    finally:
        if p.poll() is None:
            p.kill()
        server.stop()
    assert f"{episodes} episodes written" in stdout
    assert "lost and recorded again" in stdout, stdout
    # "server ADDRESS restarted or was lost (...)", or, where the client tells a restart from a lost lease
    # (the server's instance_id), "server ADDRESS restarted (a new server process) (...)".
    warning = [line for line in stderr.splitlines() if f"server {server.address} restarted" in line]
    assert len(warning) == 1, stderr[-3000:]
    assert server.address in warning[0] and "episodes in flight lost" in warning[0] and "reconnects 1" in warning[0]

    info = check_dataset(out)
    assert info["total_episodes"] == episodes
    assert len(read_episodes(out)) == episodes
    state = json.loads((out / "meta/robosim_collect.json").read_text())
    per_env: dict[int, list[int]] = {}
    for e in state["episodes"]:
        per_env.setdefault(e["env"], []).append(e["envEpisode"])
    for env, indices in per_env.items():
        assert sorted(indices) == list(range(len(indices))), f"env {env}: episodes {indices}"
    # Every episode, those recorded again included, starts where its seed schedule says.
    server.start()
    try:
        starts = first_observations(server.address, 4, {(e["env"], e["envEpisode"]) for e in state["episodes"]})
    finally:
        server.stop()
    pq = pytest.importorskip("pyarrow.parquet")
    meta = {e["episode_index"]: e for e in read_episodes(out)}
    data = pq.read_table(out / info["data_path"].format(chunk_index=0, file_index=0)).to_pydict()
    for e in state["episodes"]:
        first = data["observation.state"][meta[e["index"]]["dataset_from_index"]]
        assert np.array_equal(np.array(first, np.float32), starts[(e["env"], e["envEpisode"])].astype(np.float32)), e


def test_train_survives_a_server_restart(tmp_path):
    """sim-train (cartpole, 8 envs, 16 updates) with the server killed after 3 updates and started
    again: it finishes every update, and its log and events.log report the truncated episodes."""
    server = RestartableServer("Scenes/cartpole", "--mode", "lockstep", "--envs", "8", "--render-backend", "none",
                               "--seed", "1", log_dir=tmp_path)
    server.start()
    out = tmp_path / "run"
    try:
        p = subprocess.Popen([str(SIM_TRAIN), "train", "--server", server.address, "--envs", "8", "--steps", "8192",
                              "--rollout-steps", "64", "--epochs", "2", "--out", str(out), "--seed", "3", "--eval-episodes", "8",
                              "--reconnect-timeout", "30"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        metrics = out / "metrics.csv"
        wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 4, 40, "3 updates", p)
        server.kill()
        time.sleep(0.5)
        server.start()
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, f"sim-train failed ({p.returncode}):\n{stderr[-3000:]}"
    finally:
        if p.poll() is None:
            p.kill()
        server.stop()
    text = stdout + stderr
    assert len(metrics.read_text().splitlines()) == 1 + 16  # header + every update
    assert f"server {server.address} restarted" in text
    reported = [line for line in text.splitlines() if "episodes in flight truncated (server restarted)" in line]
    assert reported, text[-3000:]
    events = (out / "events.log").read_text()
    assert "restarted" in events and "episodes in flight truncated" in events
    assert "1 reconnects" in text
    assert (out / "checkpoint.safetensors").exists()
