"""A short soak (about 45 s): the churn of ``Benchmarks/python/soak.py`` against the built ``sim-server``
(``$ROBOSIM_BIN_DIR``, default ``.build/debug``): clients that lease, subscribe (camera images too),
publish, announce, call services and go, and victims SIGKILLed while holding a lease and
subscriptions. With every client gone, the server's open fds must come back to their count after
warm-up (+2) and its RSS may grow at most 16 MiB. ``soak.py --minutes M`` is the long version
(docs/scaling.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Benchmarks" / "python"))

import soak  # noqa: E402

BIN_DIR = Path(os.environ.get("ROBOSIM_BIN_DIR", REPO / ".build" / "debug"))
SIM_SERVER = BIN_DIR / "sim-server"

FD_SLACK = 2
RSS_BOUND_MIB = 16.0


def _needs_server():
    if not SIM_SERVER.exists():
        reason = f"sim-server not built in {BIN_DIR} (swift build, or set ROBOSIM_BIN_DIR)"
        if os.environ.get("ROBOSIM_REQUIRE_SERVER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def test_churn_leaves_fds_and_memory_where_they_were():
    _needs_server()
    run = soak.Soak(SIM_SERVER, "Scenes/tbar_push", envs=2, rtf=1.0, workers=2, seed=3)
    try:
        run.run(seconds=30, warmup_s=10, sample_s=2, checkpoint_s=0, settle_s=2)
    finally:
        run.close()
    first, last = run.quiet[0], run.quiet[-1]
    end = run.samples[-1]
    churned = end["cycles"] - first["cycles"]
    summary = (f"quiet after warm-up: {first['fds']} fds, {first['rss'] / soak.MIB:.1f} MiB; at the end: "
               f"{last['fds']} fds, {last['rss'] / soak.MIB:.1f} MiB; {churned} churn cycles, "
               f"{end['kills'] - first['kills']} victims killed, {end['errors']} client errors")
    print(summary)
    # The churn really happened (otherwise flat curves prove nothing).
    assert churned >= 30, summary
    assert end["kills"] - first["kills"] >= 3, summary
    assert end["errors"] <= max(2, end["cycles"] // 20), summary
    # Every connection of every client, killed ones included, is closed again.
    assert last["fds"] <= first["fds"] + FD_SLACK, summary
    assert (last["rss"] - first["rss"]) / soak.MIB <= RSS_BOUND_MIB, summary
    assert last["threads"] == first["threads"], summary


def _samples(seconds: int, fds, rss_mib):
    return [{"t": float(t), "fds": fds(t), "rss": int(rss_mib(t) * soak.MIB), "quiet": 0} for t in range(0, seconds, 5)]


def test_verdict_passes_flat_curves_and_fails_leaks():
    flat = _samples(600, lambda t: 30 + (t // 5) % 7, lambda t: 200 + 0.5 * ((t // 5) % 3))
    quiet = [dict(flat[0], quiet=1), dict(flat[-1], quiet=1)]
    assert soak.judge(flat, quiet, soak.Bounds()).flat

    # One fd every two minutes: the slope (0.5/min) stays under its bound, the quiet check catches it.
    slow_fd = _samples(600, lambda t: 30 + t // 120, lambda t: 200.0)
    v = soak.judge(slow_fd, [dict(slow_fd[0], quiet=1), dict(slow_fd[-1], quiet=1)], soak.Bounds())
    assert not v.flat and any("quiet fds" in f for f in v.failures), v

    # 2 MiB/min of memory.
    growing = _samples(600, lambda t: 30, lambda t: 200 + 2 * t / 60)
    v = soak.judge(growing, [dict(growing[0], quiet=1), dict(growing[-1], quiet=1)], soak.Bounds())
    assert not v.flat and any("RSS slope" in f for f in v.failures), v
