#!/usr/bin/env python3
"""Soak test: one realtime sim-server under churning clients for M minutes; its memory and open file
descriptors must stay flat.

One `sim-server SCENE --mode realtime --envs N` (default Scenes/tbar_push, 2 envs, its two 128x128
cameras) while, for `--minutes`:

* `--workers` churn processes loop: open a `robosim.Client`, describe, take a lease (`/sim/lease`,
  count 1, a short ttl), set and read its reward (`/sim/set_reward`, `/sim/reward_statistics`), reset
  its env, render a camera (`/sim/render`), subscribe to 1-3 topics (camera images among them) and
  wait for a message, publish on a topic, announce the node (`/graph/announce`: a new node name every
  cycle), call `/sim/get_parameters` and `/graph/list`, then release the lease (or, one time in four,
  let it expire) and close the client;
* a killer thread starts victim processes that lease an env, subscribe to a camera's images and to
  joint states, publish and announce, and SIGKILLs each after 0.5-3 s (no release, no goodbye).

Every `--sample-s` seconds the server's VmRSS (/proc/PID/status) and open fds (/proc/PID/fd) go to
a CSV. At the end of warm-up and every `--checkpoint-s` the churn pauses: every client closes, the
killer's victim is dead, and after `--settle-s` a "quiet" sample is taken (what the server holds with
no client). Verdict, printed and as the exit code (0 flat, 1 not flat):

* flat slopes: least-squares slope of RSS and of fds over the churning samples (quiet ones left
  out) of the second half of the run below
  `--max-rss-slope` MiB/min and `--max-fd-slope` fds/min;
* back to where it was: the last quiet sample's fds at most `--fd-margin` above the first quiet
  sample's (after warm-up), its RSS at most `--rss-margin` MiB above.

    .venv/bin/python Benchmarks/python/soak.py --minutes 12 --bin-dir .build/debug
    .venv/bin/python Benchmarks/python/soak.py --minutes 1 --inject-leak 5   # must say NOT FLAT
    .venv/bin/python Benchmarks/python/soak.py --mode lockstep --envs 6 --minutes 6   # + vector envs on step channels

`--mode lockstep` adds to every churn cycle (and to every victim, which is killed with it open) a
`RoboSimVectorEnv` of one env on the same-host step channel: a lease, `/sim/open_channel` (a thread
and a memory file on the server), a reset and 5-30 random steps, then close (the lease released).

`--inject-leak K` keeps every K-th churn client open (never closed) to check that the verdict
catches a leak: each one holds server-side connections (fds) and hub state.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))  # this checkout's client even when not pip-installed

MIB = 1024 * 1024


# -- the server's resources ------------------------------------------------------------------------
def proc_sample(pid: int) -> dict:
    """VmRSS, VmHWM (bytes), threads and open fds of process `pid`."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
            elif key == "Threads":
                out["threads"] = int(value)
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def slope_per_min(points: Sequence[tuple]) -> float:
    """Least-squares slope of (seconds, value) points, per minute; 0 for fewer than 3 points."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return 60.0 * sum((t - mt) * (v - mv) for t, v in points) / var


@dataclass
class Bounds:
    rss_slope_mib_per_min: float = 1.0
    fd_slope_per_min: float = 1.0
    rss_margin_mib: float = 16.0
    fd_margin: int = 2


@dataclass
class Verdict:
    rss_slope: float          # MiB/min over the second half
    fd_slope: float           # fds/min over the second half
    rss_growth_mib: float     # last quiet - first quiet
    fd_growth: int            # last quiet - first quiet
    failures: List[str] = field(default_factory=list)

    @property
    def flat(self) -> bool:
        return not self.failures


def judge(samples: List[dict], quiet: List[dict], bounds: Bounds) -> Verdict:
    """The verdict over `samples` (every sample: t, rss, fds) and `quiet` (the quiet samples, first after warm-up)."""
    if not samples or len(quiet) < 2:
        raise ValueError("need samples and at least two quiet samples (after warm-up and at the end)")
    end = samples[-1]["t"]
    start = quiet[0]["t"]
    half = start + (end - start) / 2
    second = [s for s in samples if s["t"] >= half and not s.get("quiet")]  # the churning server
    rss_slope = slope_per_min([(s["t"], s["rss"] / MIB) for s in second])
    fd_slope = slope_per_min([(s["t"], s["fds"]) for s in second])
    v = Verdict(rss_slope, fd_slope, (quiet[-1]["rss"] - quiet[0]["rss"]) / MIB, quiet[-1]["fds"] - quiet[0]["fds"])
    if rss_slope >= bounds.rss_slope_mib_per_min:
        v.failures.append(f"RSS slope {rss_slope:.2f} MiB/min >= {bounds.rss_slope_mib_per_min:g}")
    if fd_slope >= bounds.fd_slope_per_min:
        v.failures.append(f"fd slope {fd_slope:.2f}/min >= {bounds.fd_slope_per_min:g}")
    if v.rss_growth_mib > bounds.rss_margin_mib:
        v.failures.append(f"quiet RSS grew {v.rss_growth_mib:.1f} MiB > {bounds.rss_margin_mib:g}")
    if v.fd_growth > bounds.fd_margin:
        v.failures.append(f"quiet fds grew {v.fd_growth} > {bounds.fd_margin}")
    return v


# -- churn (child processes) -----------------------------------------------------------------------
def _vector_env_life(address: str, name: str, rng: random.Random, abandon: bool):
    """Lockstep: a RoboSimVectorEnv of 1 env on the same-host step channel (a lease, /sim/open_channel,
    its thread and memory file on the server), reset and a few random steps; closed (lease released)
    unless `abandon` (the process is about to be killed)."""
    from robosim.gym import RoboSimVectorEnv
    env = RoboSimVectorEnv(address, num_envs=1, client_name=name, ttl_s=rng.uniform(1.0, 3.0), transport="auto")
    try:
        env.reset(seed=rng.randrange(1000))
        for _ in range(rng.randint(5, 30)):
            env.step(env.action_space.sample())
    except BaseException:
        env.close()
        raise
    if not abandon:
        env.close()
    return env


def _churn_cycle(robosim, msgs, address: str, name: str, rng: random.Random, lockstep: bool = False):
    """One client's life; returns the client (closed, or open when the caller leaks it)."""
    srv, std_msgs, trajectory_msgs = msgs
    client = robosim.Client(address, name=name, timeout=10.0)
    d = client.describe()
    envs, cameras = d.env_count, [c.name for c in d.cameras if c.rgb]
    if lockstep:
        try:
            _vector_env_life(address, name, rng, abandon=False)
        except robosim.ServiceError as exc:
            if exc.code != "RESOURCE_EXHAUSTED":
                raise  # else every env is leased by others: fine
    lease = ""
    try:
        r = client.call("/sim/lease", srv.LeaseRequest(count=1, client_name=name, ttl_s=rng.uniform(1.0, 3.0)),
                        srv.LeaseResponse)
        lease = r.lease
    except robosim.ServiceError:
        pass  # all envs leased by others: fine
    if lease:
        terms = [t.name for t in d.task.reward_terms]
        if terms:
            client.call("/sim/set_reward", srv.SetRewardRequest(lease=lease, expression=f"2 * {rng.choice(terms)} - 0.1"),
                        srv.SetRewardResponse)
        client.call("/sim/reward_statistics", srv.RewardStatisticsRequest(lease=lease), srv.RewardStatisticsResponse)
        if rng.random() < 0.3:
            client.call("/sim/reset", srv.ResetRequest(lease=lease), srv.ResetResponse)
        if cameras and rng.random() < 0.5:
            client.call("/sim/render", srv.RenderRequest(lease=lease, cameras=[rng.choice(cameras)]), srv.RenderResponse)
    topics = ["/clock"] + [f"/env_{rng.randrange(envs)}/{t}" for t in ("joint_states", "tf", "objects")]
    topics += [f"/env_{rng.randrange(envs)}/camera/{c}/image_raw" for c in cameras]
    types = {t.name: t.type for t in d.topics}
    subs = [client.subscribe(t, types[t]) for t in rng.sample(topics, rng.randint(1, 3)) if t in types]
    pub = client.publisher(f"/soak/chatter_{rng.randrange(4)}", std_msgs.String)
    if rng.random() < 0.5:
        client.announce()
    for k in range(3):
        pub.publish(std_msgs.String(data=f"{name} {k}"))
    if rng.random() < 0.3 and lease:
        cmd = client.publisher(f"/env_{rng.randrange(envs)}/joint_commands", trajectory_msgs.JointTrajectoryPoint)
        cmd.publish(trajectory_msgs.JointTrajectoryPoint(velocities=[0.0] * 6))
    deadline = time.monotonic() + 1.0
    for s in subs:
        try:
            s.recv(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            pass
    client.call("/sim/get_parameters", srv.GetParametersRequest(), srv.GetParametersResponse)
    client.graph()
    if subs and rng.random() < 0.5:
        subs[0].close()  # unsubscribe before the client goes
    if lease and rng.random() < 0.75:
        try:
            client.call("/sim/release", srv.ReleaseRequest(lease=lease), srv.Empty)
        except robosim.ServiceError:
            pass  # it expired meanwhile (ttl 1-3 s)
    return client


def _messages():
    from robosim.msgs.robosim import srv_pb2
    from robosim.msgs.std_msgs import msg_pb2 as std_msgs
    from robosim.msgs.trajectory_msgs import msg_pb2 as trajectory_msgs
    return srv_pb2, std_msgs, trajectory_msgs


def churn_worker(address: str, wid: int, seed: int, stop, pause, idle, cycles, errors, leak_every: int,
                 lockstep: bool = False) -> None:
    import robosim
    msgs = _messages()
    rng = random.Random(seed * 1000 + wid)
    leaked = []
    cycle = 0
    while not stop.is_set():
        if pause.is_set():
            idle.set()
            time.sleep(0.05)
            continue
        idle.clear()
        cycle += 1
        client = None
        try:
            client = _churn_cycle(robosim, msgs, address, f"soak_churn_{wid}_{cycle}", rng, lockstep)
        except (TimeoutError, robosim.ServiceError, robosim.ProtocolError, RuntimeError) as exc:
            with errors.get_lock():
                errors.value += 1
            print(f"soak: worker {wid}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            if client is not None:
                if leak_every and cycle % leak_every == 0:
                    leaked.append(client)  # the injected leak: never closed
                else:
                    client.close()
        with cycles.get_lock():
            cycles.value += 1


def victim(address: str, seed: int, ready, lockstep: bool = False) -> None:
    """Leases an env, subscribes (camera images, joint states), publishes, announces (lockstep: also
    steps a vector env on a step channel, left open); then waits to be SIGKILLed."""
    import robosim
    srv, std_msgs, _ = _messages()
    rng = random.Random(seed)
    held = None  # noqa: F841  (kept alive until the SIGKILL)
    if lockstep:
        try:
            held = _vector_env_life(address, f"soak_victim_{os.getpid()}", rng, abandon=True)  # noqa: F841
        except robosim.ServiceError:
            pass  # every env leased by others
    client = robosim.Client(address, name=f"soak_victim_{os.getpid()}", timeout=10.0)
    d = client.describe()
    try:
        client.call("/sim/lease", srv.LeaseRequest(count=1, client_name="soak_victim", ttl_s=2.0), srv.LeaseResponse)
    except robosim.ServiceError:
        pass
    cameras = [c.name for c in d.cameras if c.rgb]
    env = rng.randrange(d.env_count)
    subs = [client.subscribe(f"/env_{env}/joint_states", "sensor_msgs/msg/JointState")]
    if cameras:
        subs.append(client.subscribe(f"/env_{env}/camera/{rng.choice(cameras)}/image_raw", "sensor_msgs/msg/Image"))
    pub = client.publisher("/soak/victim", std_msgs.String)
    client.announce()
    pub.publish(std_msgs.String(data="about to die"))
    ready.set()
    while True:
        for s in subs:
            try:
                s.recv(timeout=0.2)
            except TimeoutError:
                pass


# -- the run ---------------------------------------------------------------------------------------
class Soak:
    """The server, the churn and the sampler of one run."""

    def __init__(self, binary: Path, scene: str, envs: int, rtf: float, workers: int, seed: int,
                 leak_every: int = 0, log=print, mode: str = "realtime"):
        self.log = log
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["robosim", "robosim.msgs.robosim.srv_pb2"])
        port = __import__("robosim.server", fromlist=["free_port_triple"]).free_port_triple()
        self.address = f"tcp://127.0.0.1:{port}"
        self.server_log = tempfile.NamedTemporaryFile(prefix="soak_server_", suffix=".log", delete=False)
        self.lockstep = mode == "lockstep"
        argv = [str(binary), scene, "--mode", mode, "--rtf", str(rtf), "--envs", str(envs), "--listen",
                self.address, "--seed", str(seed), "--parent-pid", str(os.getpid())]
        self.argv = argv
        self.server = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=self.server_log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.stop, self.pause = self.ctx.Event(), self.ctx.Event()
        self.cycles, self.errors = self.ctx.Value("q", 0), self.ctx.Value("q", 0)
        self.kills = 0
        self.killer_idle = threading.Event()
        self.samples: List[dict] = []
        self.quiet: List[dict] = []
        self.t0 = time.monotonic()
        self.seed, self.workers_n, self.leak_every = seed, workers, leak_every
        self.workers: list = []
        self.idles: list = []
        self.victim: Optional[mp.Process] = None
        self._wait_ready()

    def _wait_ready(self) -> None:
        import robosim
        deadline = time.monotonic() + 120
        with robosim.Client(self.address, name="soak_probe", timeout=0.5) as probe:
            while True:
                if self.server.poll() is not None:
                    raise SystemExit(f"sim-server exited with {self.server.returncode}: {self.server_tail()}")
                try:
                    self.description = probe.describe()
                    return
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"sim-server did not answer within 120 s: {self.server_tail()}")

    def server_tail(self) -> str:
        return Path(self.server_log.name).read_text(errors="replace")[-2000:]

    # churn
    def start_churn(self) -> None:
        for wid in range(self.workers_n):
            idle = self.ctx.Event()
            p = self.ctx.Process(target=churn_worker, name=f"soak-churn-{wid}", daemon=True,
                                 args=(self.address, wid, self.seed, self.stop, self.pause, idle, self.cycles,
                                       self.errors, self.leak_every, self.lockstep))
            p.start()
            self.workers.append(p)
            self.idles.append(idle)
        self.killer = threading.Thread(target=self._killer, name="soak-killer", daemon=True)
        self.killer.start()

    def _killer(self) -> None:
        rng = random.Random(self.seed)
        n = 0
        while not self.stop.is_set():
            if self.pause.is_set():
                self.killer_idle.set()
                time.sleep(0.05)
                continue
            self.killer_idle.clear()
            n += 1
            ready = self.ctx.Event()
            self.victim = self.ctx.Process(target=victim, args=(self.address, self.seed * 7919 + n, ready, self.lockstep),
                                           daemon=True)
            self.victim.start()
            ready.wait(30)
            time.sleep(rng.uniform(0.5, 3.0))
            self.victim.kill()  # SIGKILL: no release, no leaving announcement, no socket close
            self.victim.join()
            self.kills += 1
            self.victim = None

    def quiesce(self, settle_s: float) -> dict:
        """Pauses the churn until every client is gone, waits `settle_s`, samples, resumes."""
        self.pause.set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (all(e.is_set() for e in self.idles)
                                                    and (not self.workers or self.killer_idle.is_set())):
            time.sleep(0.05)
        time.sleep(settle_s)
        s = self.sample(quiet=True)
        self.quiet.append(s)
        self.pause.clear()
        return s

    # sampling
    def sample(self, quiet: bool = False) -> dict:
        if self.server.poll() is not None:
            raise SystemExit(f"sim-server exited with {self.server.returncode} during the soak: {self.server_tail()}")
        p = proc_sample(self.server.pid)
        s = {"t": time.monotonic() - self.t0, "rss": p["VmRSS"], "hwm": p["VmHWM"], "fds": p["fds"],
             "threads": p["threads"], "cycles": self.cycles.value, "kills": self.kills, "errors": self.errors.value,
             "quiet": int(quiet)}
        self.samples.append(s)
        return s

    def close(self) -> None:
        self.stop.set()
        self.pause.clear()
        for p in self.workers:
            p.join(15)
            if p.is_alive():
                p.kill()
                p.join()
        if getattr(self, "killer", None) is not None:
            self.killer.join(10)
        if self.victim is not None and self.victim.is_alive():
            self.victim.kill()
        if self.server.poll() is None:
            self.server.send_signal(signal.SIGINT)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server_log.close()

    def run(self, seconds: float, warmup_s: float, sample_s: float, checkpoint_s: float, settle_s: float,
            progress=None) -> None:
        """Warm-up churn, a quiet sample, churn with samples (and quiet checkpoints) for `seconds`, a quiet sample."""
        self.start_churn()
        self.sample()
        end_warmup = time.monotonic() + warmup_s
        while time.monotonic() < end_warmup:
            time.sleep(min(sample_s, max(0.0, end_warmup - time.monotonic())))
            self.sample()
        self.quiesce(settle_s)
        start = time.monotonic()
        next_checkpoint = start + checkpoint_s if checkpoint_s > 0 else float("inf")
        while True:
            now = time.monotonic()
            if now >= start + seconds:
                break
            time.sleep(min(sample_s, start + seconds - now))
            s = self.sample()
            if progress:
                progress(s)
            if time.monotonic() >= next_checkpoint and time.monotonic() < start + seconds - sample_s:
                self.quiesce(settle_s)
                next_checkpoint += checkpoint_s
        self.quiesce(settle_s)

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t_s", "rss_mib", "hwm_mib", "fds", "threads", "churn_cycles", "kills", "errors", "quiet"])
            for s in self.samples:
                w.writerow([f"{s['t']:.1f}", f"{s['rss'] / MIB:.2f}", f"{s['hwm'] / MIB:.2f}", s["fds"], s["threads"],
                            s["cycles"], s["kills"], s["errors"], s["quiet"]])


def default_binary() -> Path:
    from robosim.server import find_sim_server
    return find_sim_server(os.environ.get("ROBOSIM_BIN_DIR"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="churn time after warm-up (default 10)")
    parser.add_argument("--bin-dir", type=Path, help="folder with sim-server (default: $ROBOSIM_BIN_DIR, PATH, "
                        ".build/release, .build/debug)")
    parser.add_argument("--scene", default="Scenes/tbar_push", help="scene (default Scenes/tbar_push: 2 cameras)")
    parser.add_argument("--envs", type=int, default=2, help="server env count (default 2)")
    parser.add_argument("--rtf", type=float, default=1.0, help="real-time factor (default 1)")
    parser.add_argument("--mode", choices=("realtime", "lockstep"), default="realtime",
                        help="server mode (default realtime); lockstep adds vector envs on step channels to the churn "
                             "(use --settle-s above the leases' 3 s ttl)")
    parser.add_argument("--workers", type=int, default=2, help="churn processes (default 2), besides the killer")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="churn before the first quiet sample (default 60)")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--checkpoint-s", type=float, default=120.0,
                        help="seconds between quiet checkpoints during the churn (default 120; 0: only at the end)")
    parser.add_argument("--settle-s", type=float, help="seconds of quiet before a quiet sample (default 3; lockstep 5, "
                        "above the killed clients' lease ttl, after which their leases and step channels end)")
    parser.add_argument("--csv", type=Path, default=Path("soak.csv"), help="samples out (default ./soak.csv)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-rss-slope", type=float, default=Bounds.rss_slope_mib_per_min,
                        help="MiB/min, second half (default %(default)s)")
    parser.add_argument("--max-fd-slope", type=float, default=Bounds.fd_slope_per_min,
                        help="fds/min, second half (default %(default)s)")
    parser.add_argument("--rss-margin", type=float, default=Bounds.rss_margin_mib,
                        help="MiB the last quiet RSS may exceed the first (default %(default)s)")
    parser.add_argument("--fd-margin", type=int, default=Bounds.fd_margin,
                        help="fds the last quiet count may exceed the first (default %(default)s)")
    parser.add_argument("--inject-leak", type=int, default=0, metavar="K",
                        help="keep every K-th churn client open (a deliberate leak, to check the verdict)")
    args = parser.parse_args()
    if args.minutes <= 0 or args.workers < 0 or args.envs < 1 or args.sample_s <= 0:
        parser.error("--minutes and --sample-s must be > 0, --workers >= 0, --envs >= 1")
    if args.settle_s is None:
        args.settle_s = 5.0 if args.mode == "lockstep" else 3.0
    binary = (args.bin_dir / "sim-server") if args.bin_dir else default_binary()
    if not binary.exists():
        raise SystemExit(f"no sim-server at {binary}")
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    bounds = Bounds(args.max_rss_slope, args.max_fd_slope, args.rss_margin, args.fd_margin)

    soak = None
    interrupted = False

    def on_term(signum, frame):  # SIGTERM behaves like Ctrl-C: the finally below cleans up
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        soak = Soak(binary.resolve(), args.scene, args.envs, args.rtf, args.workers, args.seed, args.inject_leak,
                    mode=args.mode)
        print(f"server: {shlex.join(soak.argv)} (pid {soak.server.pid}, version {soak.description.version})", flush=True)

        def progress(s):
            print(f"  t={s['t']:6.0f}s rss={s['rss'] / MIB:7.1f} MiB fds={s['fds']:4d} threads={s['threads']} "
                  f"cycles={s['cycles']} kills={s['kills']} errors={s['errors']}", flush=True)

        soak.run(args.minutes * 60, args.warmup_s, args.sample_s, args.checkpoint_s, args.settle_s, progress)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted; stopping", file=sys.stderr)
    finally:
        if soak is not None:
            soak.close()
    if soak is None:
        return 2
    soak.write_csv(args.csv)
    s, q = soak.samples, soak.quiet
    print(f"\nsamples: {len(s)} over {s[-1]['t']:.0f} s -> {args.csv}; churn cycles {s[-1]['cycles']}, "
          f"victims SIGKILLed {s[-1]['kills']}, client-side errors {s[-1]['errors']}")
    print("quiet samples (no client connected):")
    print("| t (s) | RSS (MiB) | fds | threads | churn cycles | kills |")
    print("|---:|---:|---:|---:|---:|---:|")
    for x in q:
        print(f"| {x['t']:.0f} | {x['rss'] / MIB:.1f} | {x['fds']} | {x['threads']} | {x['cycles']} | {x['kills']} |")
    rss = [x["rss"] / MIB for x in s]
    fds = [x["fds"] for x in s]
    print(f"all samples: RSS {min(rss):.1f}-{max(rss):.1f} MiB, fds {min(fds)}-{max(fds)}, peak RSS (VmHWM) "
          f"{s[-1]['hwm'] / MIB:.1f} MiB")
    if interrupted or len(q) < 2:
        print("verdict: none (interrupted)")
        return 2
    v = judge(s, q, bounds)
    print(f"second half: RSS slope {v.rss_slope:+.3f} MiB/min (bound {bounds.rss_slope_mib_per_min:g}), fd slope "
          f"{v.fd_slope:+.3f}/min (bound {bounds.fd_slope_per_min:g}); quiet first->last: RSS {v.rss_growth_mib:+.1f} MiB "
          f"(margin {bounds.rss_margin_mib:g}), fds {v.fd_growth:+d} (margin {bounds.fd_margin})")
    print("verdict: FLAT" if v.flat else "verdict: NOT FLAT: " + "; ".join(v.failures))
    return 0 if v.flat else 1


if __name__ == "__main__":
    sys.exit(main())
