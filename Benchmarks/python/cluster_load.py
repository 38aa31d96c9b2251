#!/usr/bin/env python3
"""Many sim-servers on one machine as a stand-in for a cluster: total env-steps/s and per-call
latency from 1 to K servers, against K processes of a peer measured in the same run.

For each K in `--servers` (default 1,2,4,8): K `sim-server SCENE --mode lockstep --envs 8` on
distinct free loopback ports, and `--clients` client processes (default: one per server) spread
round-robin across them; each client drives `--envs-per-server / clients-on-its-server` envs of its
server through `robosim.gym.RoboSimVectorEnv` (a lease, batched `/sim/step` over TCP: one call per
vector step, uniform random actions drawn before timing, same-step autoreset on the server). After a
warm-up, every client steps for the same `--seconds` window (common start time); reported per K:
total env-steps/s (summed over clients), per-call step latency p50/p90/p99/max (all calls of all
clients), scaling against K=1 (ideal: K times), the CPU time that servers and clients used in the
window (/proc/PID/stat; "cores used" = CPU seconds per second) and env-steps per CPU-second: on a
machine shared with other work, the figure that does not depend on how much of it this run got.

Peer, measured in the same run with the same K and window: K processes each stepping 8 envs with
uniform random actions and no server: `gymnasium` (`SyncVectorEnv` of 8 `InvertedPendulum-v5`, the
peer of the step benchmarks; for cartpole-class scenes) or `mujoco` (a raw Python loop of
`mujoco.mj_step(model, data, nstep=decimation)` on 8 `MjData` of the scene's own MJCF).

    .venv/bin/python Benchmarks/python/cluster_load.py                      # cartpole, K = 1,2,4,8
    .venv/bin/python Benchmarks/python/cluster_load.py --scene Scenes/tbar_push --peer mujoco

Every server is started with --parent-pid (it stops when this script ends, even by SIGKILL); all of
them, and every client process, are stopped on exit, Ctrl-C or SIGTERM included. Servers, clients and
peer processes all stay in this script's session: with the kernel's autogroup scheduling each session
gets an equal share of a loaded machine, and both sides must get the same.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))  # this checkout's client even when not pip-installed


# -- servers ---------------------------------------------------------------------------------------
class Servers:
    """K lockstep sim-servers on distinct ports; `stop()` ends every one (SIGINT, then SIGKILL)."""

    def __init__(self, binary: Path, scene: str, count: int, envs: int, extra: List[str]):
        from robosim.server import free_port_triple
        self.processes: List[subprocess.Popen] = []
        self.addresses: List[str] = []
        self.logs = []
        try:
            for k in range(count):
                port = free_port_triple()
                while any(abs(port - int(a.rsplit(":", 1)[1])) < 3 for a in self.addresses):
                    port = free_port_triple()
                address = f"tcp://127.0.0.1:{port}"
                log = tempfile.NamedTemporaryFile(prefix=f"cluster_load_server{k}_", suffix=".log", delete=False)
                argv = [str(binary), scene, "--mode", "lockstep", "--envs", str(envs), "--listen", address,
                        "--seed", str(k), "--parent-pid", str(os.getpid()), *extra]
                self.logs.append(log)
                # In this process's session, as the peer's processes are: with the kernel's autogroup
                # scheduling (sched_autogroup_enabled) each session gets an equal CPU share, so servers
                # in sessions of their own would get more of a loaded machine than the peer does.
                self.processes.append(subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                                                       stderr=subprocess.STDOUT))
                self.addresses.append(address)
            self.version = self._wait_all()
        except BaseException:
            self.stop()
            raise

    def _wait_all(self) -> str:
        import robosim
        version = ""
        for address, process, log in zip(self.addresses, self.processes, self.logs):
            deadline = time.monotonic() + 120
            with robosim.Client(address, name="cluster_load_probe", timeout=0.5) as probe:
                while True:
                    if process.poll() is not None:
                        raise SystemExit(f"sim-server {address} exited with {process.returncode}: "
                                         f"{Path(log.name).read_text(errors='replace')[-1500:]}")
                    try:
                        version = probe.describe().version
                        break
                    except TimeoutError:
                        if time.monotonic() > deadline:
                            raise SystemExit(f"sim-server {address} did not answer within 120 s")
        return version

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in self.logs:
            log.close()
            try:
                os.unlink(log.name)
            except OSError:
                pass
        self.processes, self.logs = [], []


# -- client processes ------------------------------------------------------------------------------
def _timed_window(step, actions: np.ndarray, warmup: int, ready, go, window_s: float, out) -> None:
    """Warm-up, signal `ready`, wait for the common start time from `go`, step until it + `window_s`;
    puts {steps, latencies} on `out` (only calls that finished inside the window)."""
    n = len(actions)
    for i in range(warmup):
        step(actions[i % n])
    ready.set()
    start = go.get()
    while time.monotonic() < start:
        pass
    end = start + window_s
    lat = []
    i = 0
    t = time.monotonic()
    while True:
        step(actions[i % n])
        t2 = time.monotonic()
        if t2 > end:
            break
        lat.append(t2 - t)
        t = t2
        i += 1
    out.put({"calls": len(lat), "latencies": lat})


def robosim_client(address: str, num_envs: int, seed: int, warmup: int, window_s: float, transport: str,
                   ready, go, out) -> None:
    from robosim.gym import RoboSimVectorEnv
    try:
        with RoboSimVectorEnv(address, num_envs=num_envs, client_name=f"cluster_load_{os.getpid()}",
                              transport=transport) as env:
            rng = np.random.default_rng(seed)
            space = env.single_action_space
            actions = rng.uniform(space.low, space.high, size=(256, num_envs, *space.shape)).astype(space.dtype)
            env.reset(seed=seed)
            _timed_window(env.step, actions, warmup, ready, go, window_s, out)
    except BaseException as exc:  # reported by the parent
        ready.set()
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def peer_client(kind: str, scene: str, num_envs: int, seed: int, warmup: int, window_s: float, ready, go, out) -> None:
    try:
        rng = np.random.default_rng(seed)
        if kind == "gymnasium":
            import gymnasium
            env = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make("InvertedPendulum-v5") for _ in range(num_envs)])
            space = env.single_action_space
            actions = rng.uniform(space.low, space.high, size=(256, num_envs, *space.shape)).astype(space.dtype)
            env.reset(seed=seed)
            _timed_window(env.step, actions, warmup, ready, go, window_s, out)
            env.close()
        else:
            import mujoco
            manifest = json.loads((REPO / scene / "scene.json").read_text())
            model = mujoco.MjModel.from_xml_path(str(REPO / scene / manifest["model"]))
            model.opt.timestep = manifest["physics_dt"]
            decimation = int(manifest["decimation"])
            datas = [mujoco.MjData(model) for _ in range(num_envs)]
            for d in datas:
                if model.nkey:
                    mujoco.mj_resetDataKeyframe(model, d, 0)
                mujoco.mj_forward(model, d)
            lo, hi = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
            actions = rng.uniform(lo, hi, size=(256, num_envs, model.nu))

            def step(a):
                for d, u in zip(datas, a):
                    d.ctrl[:] = u
                    mujoco.mj_step(model, d, nstep=decimation)

            _timed_window(step, actions, warmup, ready, go, window_s, out)
    except BaseException as exc:
        ready.set()
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def summarize(runs: List[dict], window_s: float) -> dict:
    """Median env-steps/s of `runs`; latency percentiles over every call of every run."""
    rates = [r["env_steps"] / window_s for r in runs]
    per_cpu = [r["env_steps"] / r["cpu_s"] for r in runs if r["cpu_s"] > 0]
    lat = np.concatenate([r["lat_ms"] for r in runs])
    return {"rate": float(np.median(rates)), "rates": rates, "p50": float(np.percentile(lat, 50)),
            "p90": float(np.percentile(lat, 90)), "p99": float(np.percentile(lat, 99)), "max": float(lat.max()),
            "calls": int(sum(r["calls"] for r in runs)), "per_cpu_s": float(np.median(per_cpu)) if per_cpu else float("nan"),
            "cpu_share": float(np.median([r["cpu_s"] / window_s for r in runs]))}


def measure_robosim(ctx, binary: Path, k: int, args) -> dict:
    servers = Servers(binary, args.scene, k, args.envs_per_server, args.server_arg)
    try:
        clients = args.clients or k
        per_server = [sum(1 for c in range(clients) if c % k == s) for s in range(k)]
        if min(per_server) < 1 or any(args.envs_per_server % n for n in per_server):
            raise SystemExit(f"{clients} clients over {k} servers: each server needs clients dividing "
                             f"{args.envs_per_server} envs")
        targets = []
        for c in range(clients):
            s = c % k
            targets.append((robosim_client, (servers.addresses[s], args.envs_per_server // per_server[s], 1000 + c,
                                             args.warmup, args.seconds, args.transport)))
        result = run_clients(ctx, targets, [t[1][1] for t in targets], args.seconds,
                             [p.pid for p in servers.processes])
        result["version"] = servers.version
        return result
    finally:
        servers.stop()


def cpu_seconds(pids: List[int]) -> float:
    """User + system CPU seconds used so far by the processes `pids` (all their threads)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def run_clients(ctx, targets, envs_each: List[int], window_s: float, server_pids: List[int] = ()) -> dict:
    """Starts one process per (function, args) in `targets`, waits until every one is warm, gives
    them a common start time, collects results and the CPU time that the clients and `server_pids`
    used in the window; every process is ended on the way out."""
    out = ctx.Queue()
    procs, readies, gos = [], [], []
    try:
        for fn, args in targets:
            ready, go = ctx.Event(), ctx.Queue()
            p = ctx.Process(target=fn, args=(*args, ready, go, out), daemon=True)
            p.start()
            procs.append(p)
            readies.append(ready)
            gos.append(go)
        for r in readies:
            if not r.wait(300):
                raise SystemExit("a client did not get ready within 300 s")
        start = time.monotonic() + 0.5
        for g in gos:
            g.put(start)
        pids = [p.pid for p in procs] + list(server_pids)
        time.sleep(max(0.0, start - time.monotonic()))
        cpu0 = cpu_seconds(pids)
        time.sleep(max(0.0, start + window_s - time.monotonic()))
        cpu = cpu_seconds(pids) - cpu0
        results = [out.get(timeout=window_s + 300) for _ in procs]
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise SystemExit("client failed: " + "; ".join(errors))
    # Results come back in completion order; every client of one run has the same env count unless
    # clients share servers unevenly, which the caller refuses, so weigh by the common count.
    assert len(set(envs_each)) == 1, "clients must drive equal env counts"
    lat = np.concatenate([np.asarray(r["latencies"]) for r in results]) * 1e3
    calls = sum(r["calls"] for r in results)
    return {"calls": calls, "lat_ms": lat, "env_steps": calls * envs_each[0], "cpu_s": cpu}


def measure_peer(ctx, k: int, args) -> dict:
    clients = args.clients or k
    envs = args.envs_per_server * k // clients
    targets = [(peer_client, (args.peer, args.scene, envs, 2000 + c, args.warmup, args.seconds)) for c in range(clients)]
    return run_clients(ctx, targets, [envs] * clients, args.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--bin-dir", type=Path, help="folder with sim-server (default: .build/release if built, "
                        "else .build/debug)")
    parser.add_argument("--scene", default="Scenes/cartpole", help="scene (default Scenes/cartpole)")
    parser.add_argument("--servers", default="1,2,4,8", help="comma-separated server counts K (default 1,2,4,8)")
    parser.add_argument("--envs-per-server", type=int, default=8, help="envs per server (default 8)")
    parser.add_argument("--clients", type=int, default=0,
                        help="client processes, spread round-robin over the servers (default 0: one per server)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed window per K and side (default 10)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed vector steps per client first (default 50)")
    parser.add_argument("--transport", default="socket", choices=("socket", "shm", "auto"),
                        help="RoboSimVectorEnv transport (default socket: /sim/step over TCP)")
    parser.add_argument("--peer", choices=("gymnasium", "mujoco", "none"),
                        help="reference (default: gymnasium for cartpole-class scenes, mujoco otherwise)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="extra sim-server argument (repeatable), e.g. --server-arg=--threads=1")
    parser.add_argument("--repeats", type=int, default=1, help="runs per K and side; medians reported (default 1)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    ks = [int(x) for x in args.servers.split(",")]
    if min(ks) < 1 or args.repeats < 1 or args.seconds <= 0 or args.envs_per_server < 1 or args.clients < 0:
        parser.error("server counts and --envs-per-server >= 1, --seconds > 0, --clients >= 0")
    if args.peer is None:
        args.peer = "gymnasium" if "cartpole" in args.scene or "pendulum" in args.scene else "mujoco"

    if args.bin_dir is None:
        args.bin_dir = REPO / ".build" / ("release" if (REPO / ".build/release/sim-server").exists() else "debug")
    binary = (args.bin_dir / "sim-server").resolve()
    if not binary.exists():
        raise SystemExit(f"no sim-server in {args.bin_dir}")

    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    import gymnasium
    import mujoco
    load = os.getloadavg()
    print(f"sim-server: {binary}; machine: {platform.machine()}, {os.cpu_count()} CPUs (every server, client and "
          f"peer process shares them); load average before: {load[0]:.2f}; python {platform.python_version()}, "
          f"gymnasium {gymnasium.__version__}, mujoco {mujoco.__version__}", flush=True)

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["numpy", "robosim", "robosim.gym", "gymnasium", "mujoco"])

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    results = {k: {"ours": [], "peer": []} for k in ks}
    version = ""
    try:
        # Every K and side once per repeat, in turn: this VM's speed (and what else runs on it) drifts
        # over minutes; the medians of runs made side by side are what the table reports.
        for rep in range(args.repeats):
            for k in ks:
                ours = measure_robosim(ctx, binary, k, args)
                version = ours["version"]
                results[k]["ours"].append(ours)
                line = (f"repeat {rep + 1} K={k}: RoboSim {ours['env_steps'] / args.seconds:,.0f} env-steps/s "
                        f"({ours['calls']} calls, {ours['cpu_s'] / args.seconds:.2f} cores)")
                if args.peer != "none":
                    peer = measure_peer(ctx, k, args)
                    results[k]["peer"].append(peer)
                    line += (f"; {args.peer} {peer['env_steps'] / args.seconds:,.0f} env-steps/s "
                             f"({peer['cpu_s'] / args.seconds:.2f} cores)")
                print(line + f"; load average {os.getloadavg()[0]:.2f}", flush=True)
    except KeyboardInterrupt:
        print("interrupted; servers and clients stopped", file=sys.stderr)
        sys.exit(130)

    rows = [(k, summarize(results[k]["ours"], args.seconds),
             summarize(results[k]["peer"], args.seconds) if results[k]["peer"] else None) for k in ks]
    base = rows[0][1]["rate"] / rows[0][0]
    peer_base = rows[0][2]["rate"] / rows[0][0] if rows[0][2] else None
    clients = "one per server" if not args.clients else f"{args.clients}, round-robin"
    print()
    print(f"scene {Path(args.scene).name}, {args.envs_per_server} envs per server, lockstep, clients: {clients}, "
          f"transport {args.transport}, {args.seconds:g} s window, median of {args.repeats} (latencies: every call of "
          f"every repeat); server {version}; peer: {args.peer}; load average after: {os.getloadavg()[0]:.2f}")
    print("| servers K | envs | env-steps/s | vs K=1 (ideal) | p50 ms | p90 ms | p99 ms | max ms | cores used "
          f"| env-steps per CPU-s | {args.peer} env-steps/s | {args.peer} vs K=1 | {args.peer} p50 / p99 ms "
          f"| {args.peer} cores used | {args.peer} env-steps per CPU-s | ratio (env-steps/s) | ratio (per CPU-s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, o, p in rows:
        scale = o["rate"] / base
        peer_cols = (f"{p['rate']:,.0f} | {p['rate'] / peer_base:.2f}x | {p['p50']:.2f} / {p['p99']:.2f} | "
                     f"{p['cpu_share']:.2f} | {p['per_cpu_s']:,.0f} | {o['rate'] / p['rate']:.2f}x | "
                     f"{o['per_cpu_s'] / p['per_cpu_s']:.2f}x" if p else "- | - | - | - | - | - | -")
        print(f"| {k} | {k * args.envs_per_server} | {o['rate']:,.0f} | {scale:.2f}x ({k}x) | {o['p50']:.2f} | "
              f"{o['p90']:.2f} | {o['p99']:.2f} | {o['max']:.2f} | {o['cpu_share']:.2f} | {o['per_cpu_s']:,.0f} | {peer_cols} |")
    print("runs (env-steps/s): " + "; ".join(
        f"K={k} RoboSim {', '.join(f'{r:,.0f}' for r in o['rates'])}"
        + (f" / {args.peer} {', '.join(f'{r:,.0f}' for r in p['rates'])}" if p else "") for k, o, p in rows))
    if args.json:
        args.json.write_text(json.dumps([{"servers": k, "robosim": o, "peer": p} for k, o, p in rows], indent=1))


if __name__ == "__main__":
    main()
