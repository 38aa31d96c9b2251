"""Real network faults between real processes: sim-server on one host, sim-train and sim-collect on
another, joined by a link with 50 ms of delay each way and 1% packet loss each way (netem.py: network
namespaces, a TUN device in each, the packets forwarded by this process), and a link that is cut.

Training over the slow, lossy link writes the same bytes as over loopback (determinism does not
depend on the network); collection over it writes a dataset that passes the collector's checks; a
cut link is reported within the client's timeouts, and the episodes finished before it stay.

Needs root for the namespaces: skipped elsewhere, unless ROBOSIM_REQUIRE_NETNS=1 (CI sets it).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

import netem
from test_server import BIN_DIR, REPO, run_server

_why_not = netem.available()
if _why_not:
    if os.environ.get("ROBOSIM_REQUIRE_NETNS") == "1":
        raise RuntimeError(f"network namespaces: {_why_not}")
    pytest.skip(f"network namespaces: {_why_not}", allow_module_level=True)

PORT = 7700
TRAIN = ["--envs", "8", "--steps", "1024", "--rollout-steps", "64", "--epochs", "2", "--seed", "5", "--eval-episodes", "0"]


def serve(link: netem.Link, log_path, *args: str) -> str:
    """Starts sim-server on the server host (beyond loopback: --insecure; CURVE has its own tests) and
    waits until the client host gets an answer to /sim/describe; returns its address."""
    address = f"tcp://{link.server_ip}:{PORT}"
    log = open(log_path, "wb")
    link.popen("server", [str(BIN_DIR / "sim-server"), *args, "--listen", address, "--insecure"], cwd=REPO,
               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        probe = link.run("client", [str(BIN_DIR / "simctl"), "service", "call", "/sim/describe", "{}", "--server", address,
                                    "--timeout", "2"], timeout=30, cwd=REPO)
        if probe.returncode == 0:
            return address
        if time.monotonic() > deadline:
            pytest.fail(f"sim-server on {address} did not answer across the link within 120 s:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.5)


def test_training_over_a_slow_lossy_link_writes_what_loopback_writes(tmp_path, tmp_path_factory):
    # The reference, over loopback.
    with run_server(tmp_path_factory, "Scenes/cartpole", "--mode", "lockstep", "--envs", "8", "--log-level", "warning") as local:
        r = subprocess.run([str(BIN_DIR / "sim-train"), "train", "--server", local.address, *TRAIN, "--out", str(tmp_path / "local")],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    with netem.Link(delay=0.05, loss=0.01, seed=1) as link:
        address = serve(link, tmp_path / "server.log", "Scenes/cartpole", "--mode", "lockstep", "--envs", "8", "--log-level", "warning")
        began = time.monotonic()
        r = link.run("client", [str(BIN_DIR / "sim-train"), "train", "--server", address, *TRAIN, "--timeout", "30",
                                "--out", str(tmp_path / "remote")], timeout=600, cwd=REPO)
        took = time.monotonic() - began
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
        assert link.dropped > 0, "the link dropped no packet: the loss was not exercised"
    # Over sockets (no shared memory across hosts), 128 steps at >= 100 ms per round trip.
    assert took >= 128 * 0.1, f"sim-train finished in {took:.1f} s: it did not go through the slow link"
    assert "socket" in r.stderr or "socket" in r.stdout, r.stderr[-2000:]
    for name in ("metrics.csv", "checkpoint.safetensors"):
        assert (tmp_path / "remote" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name


def test_collection_over_a_slow_lossy_link_writes_a_dataset_that_loads(tmp_path):
    from test_collect import EPISODE_STEPS, check_dataset

    out = tmp_path / "ds"
    with netem.Link(delay=0.05, loss=0.01, seed=2) as link:
        address = serve(link, tmp_path / "server.log", "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "2",
                        "--render-backend", "osmesa", "--log-level", "warning")
        r = link.run("client", [str(BIN_DIR / "sim-collect"), "record", "--server", address, "--timeout", "30", "--out", str(out),
                                "--episodes", "4", "--policy", "random", "--seed", "4", "--video-codec", "h264"],
                     timeout=600, cwd=REPO)
        assert r.returncode == 0, r.stderr[-3000:]
        assert link.dropped > 0
    assert "4 episodes written" in r.stdout
    info = check_dataset(out)
    assert info["total_episodes"] == 4 and info["total_frames"] == 4 * EPISODE_STEPS


def test_a_cut_link_is_reported_within_the_timeout_and_finished_episodes_stay(tmp_path):
    from test_collect import check_dataset

    out = tmp_path / "ds"
    timeout = 2.0
    with netem.Link(delay=0.0, loss=0.0) as link:
        address = serve(link, tmp_path / "server.log", "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "2",
                        "--render-backend", "osmesa", "--log-level", "warning")
        p = link.popen("client", [str(BIN_DIR / "sim-collect"), "record", "--server", address, "--timeout", str(timeout),
                                  *reconnect_flags(), "--out", str(out), "--episodes", "100000", "--policy", "random",
                                  "--video-codec", "h264", "--video-file-mb", "0.03"],   # small files: packed as they finish
                       cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        info = out / "meta/info.json"
        while not (info.exists() and json.loads(info.read_text())["total_episodes"] >= 2):
            if time.monotonic() > deadline or p.poll() is not None:
                pytest.fail(f"sim-collect packed fewer than 2 episodes in 120 s:\n{p.stderr.read()[-2000:] if p.poll() is not None else ''}")
            time.sleep(0.1)
        time.sleep(0.3)  # in the middle of the next episodes
        lines = []   # (time, stderr line), read as they come
        reader = threading.Thread(target=lambda: [lines.append((time.monotonic(), line)) for line in p.stderr], daemon=True)
        reader.start()
        link.cut()
        cut_at = time.monotonic()
        try:
            p.wait(timeout=180)
        except subprocess.TimeoutExpired:
            p.kill()
            pytest.fail("sim-collect did not stop within 180 s of the cut")
        exited = time.monotonic() - cut_at
        reader.join(timeout=10)
    stderr = "".join(line for _, line in lines)
    assert p.returncode != 0, stderr[-2000:]
    reported = [t - cut_at for t, line in lines if address in line and t >= cut_at]
    assert reported, f"no line names {address}:\n{stderr[-2000:]}"
    # sim-collect waits at least 30 s for a step (renders can take long), then --reconnect-timeout.
    limit = max(timeout, 30) + RECONNECT_S + 10
    assert reported[0] <= limit, f"the cut was reported after {reported[0]:.1f} s (limit {limit:.0f} s):\n{stderr[-2000:]}"
    assert exited <= reported[0] + 10, f"reported after {reported[0]:.1f} s but exited after {exited:.1f} s"
    # What was finished before the cut is a dataset that loads (packing happens on the way out).
    info = check_dataset(out, killed=True)
    assert info["total_episodes"] >= 2, stderr[-2000:]


RECONNECT_S = 3.0


def reconnect_flags() -> list:
    """A cut link looks like a server that went away: sim-collect waits this long for it to come back."""
    return ["--reconnect-timeout", str(RECONNECT_S)]
