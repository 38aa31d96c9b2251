"""sim-train over several servers (one learner, many simulators): the topology does not change the
training curve, and a server killed with SIGKILL mid-training is reported, the run finishes on the
others, and the server's envs join again once it is back.

The binaries come from ``$ROBOSIM_BIN_DIR`` (default ``.build/debug``), as in test_server.py.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time

import pytest


@pytest.fixture(scope="module")
def bins(sim_train):
    import test_server

    return test_server


@contextlib.contextmanager
def cartpole(bins, tmp_path_factory, envs):
    with bins.run_server(tmp_path_factory, "Scenes/cartpole", "--mode", "lockstep", "--envs", str(envs), "--log-level", "warning") as s:
        yield s


def sim_train(bins, out, servers, steps=4096, seed=3, background=False, extra=()):
    argv = [str(bins.BIN_DIR / "sim-train"), "train", *sum((["--server", s] for s in servers), []), *extra, "--envs", "8",
            "--steps", str(steps), "--rollout-steps", "64", "--epochs", "4", "--out", str(out), "--seed", str(seed),
            "--eval-episodes", "8"]
    if background:
        return subprocess.Popen(argv, cwd=bins.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    r = subprocess.run(argv, cwd=bins.REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def test_two_servers_train_the_curve_of_one(bins, tmp_path, tmp_path_factory):
    """8 envs as 4 + 4 on two servers, as 3 + 3 + 2 on three, and as 8 on one: env seeds follow the
    global env index, so metrics.csv and the checkpoint are the same bytes."""
    with cartpole(bins, tmp_path_factory, 4) as a, cartpole(bins, tmp_path_factory, 4) as b, \
            cartpole(bins, tmp_path_factory, 8) as c, cartpole(bins, tmp_path_factory, 5) as d:
        sim_train(bins, tmp_path / "two", [a.address, b.address])
        out = sim_train(bins, tmp_path / "one", [c.address])
        sim_train(bins, tmp_path / "three", [d.address, a.address, b.address])
    assert "update 8/8" in out
    one = (tmp_path / "one" / "metrics.csv").read_bytes()
    assert len(one.splitlines()) == 9
    assert (tmp_path / "two" / "metrics.csv").read_bytes() == one
    assert (tmp_path / "three" / "metrics.csv").read_bytes() == one
    assert (tmp_path / "two" / "checkpoint.safetensors").read_bytes() == (tmp_path / "one" / "checkpoint.safetensors").read_bytes()


def test_a_server_killed_mid_training_is_reported_and_rejoins(bins, tmp_path, tmp_path_factory):
    with cartpole(bins, tmp_path_factory, 4) as a:
        port = bins._free_port_triple()
        b_address = f"tcp://127.0.0.1:{port}"

        def start_b():
            p = subprocess.Popen([str(bins.SIM_SERVER), "Scenes/cartpole", "--mode", "lockstep", "--envs", "4", "--listen", b_address,
                                  "--log-level", "warning"], cwd=bins.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bins.wait_for(lambda: _answers(bins, b_address), timeout=120, what="sim-server b")
            return p

        b = start_b()
        # A killed server is waited for --reconnect-timeout seconds (a restart in place), then lost.
        trainer = sim_train(bins, tmp_path / "run", [a.address, b_address], steps=400_000, background=True,
                            extra=("--reconnect-timeout", "3"))
        try:
            metrics = tmp_path / "run" / "metrics.csv"
            bins.wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) > 20, timeout=120, what="20 updates")
            b.send_signal(signal.SIGKILL)
            b.wait()
            events = tmp_path / "run" / "events.log"
            bins.wait_for(lambda: f"server {b_address} lost" in events.read_text(), timeout=60, what="the loss in events.log")
            b = start_b()
            bins.wait_for(lambda: "is back" in events.read_text(), timeout=60, what="the return in events.log")
            output, _ = trainer.communicate(timeout=600)
        finally:
            if trainer.poll() is None:
                trainer.kill()
            b.send_signal(signal.SIGINT)
            b.wait(timeout=30)
    assert trainer.returncode == 0, output[-3000:]
    log = events.read_text()
    # Lost in a step (the rollout starts over) or found lost between updates: either way, 4 envs go on.
    assert f"server {b_address} lost" in log, log
    assert "the rollout starts over with 4 envs" in log or "lost; 4 envs" in log, log
    assert f"server {b_address} is back: 4 envs joined; 8 envs" in log, log
    assert "lost" in output and "is back" in output
    rows = [line.split(",") for line in metrics.read_text().splitlines()[1:]]
    steps = [int(r[1]) for r in rows]
    assert steps == sorted(steps) and steps[-1] >= 400_000 - 512, steps[-5:]
    # Updates on 4 envs while b was away: 256 steps each.
    assert 256 in {b - a for a, b in zip(steps, steps[1:])}


def _answers(bins, address: str) -> bool:
    import robosim

    try:
        with robosim.Client(address, name="py_probe", timeout=0.5) as probe:
            probe.describe()
            return True
    except TimeoutError:
        return False
