#!/usr/bin/env python3
"""Env-steps per second of robosim.gym.RoboSimVectorEnv against gymnasium's SyncVectorEnv and EnvPool.

Same MJCF on every side: RoboSim serves gymnasium's own `inverted_pendulum.xml` and `ant.xml`
(Scenes/gym_inverted_pendulum, Scenes/gym_ant: generic joint_control task, gymnasium's frame skip),
against `gymnasium.vector.SyncVectorEnv` of `InvertedPendulum-v5` / `Ant-v5` in this process and
EnvPool's `make_gymnasium` of the same ids (`--envpool-threads`, default 2), when envpool is installed.
RoboSim is measured through the same-host shared-memory step channel (the default on one machine) with
next-step autoreset (gymnasium's default and EnvPool's only mode: the step after an episode's end
only resets that env) and with same-step autoreset (Stable-Baselines3's: the ending step also resets,
so every env-step moves the physics), and through `/sim/step` over TCP.
Each side: uniform random actions (a fixed numpy Generator, drawn before timing), warm-up, then timed
steps; the median of `--repeats` runs. RoboSim runs `sim-server SCENE --mode lockstep --envs N` on
free local ports (TCP loopback).

    .venv/bin/python Benchmarks/python/step_bench.py                       # both models, 64 envs
    scripts/bench-peers.sh                                                  # with EnvPool, 16/64/256 envs

Needs: the robosim package (python/), gymnasium, mujoco and imageio (python/requirements-dev.txt);
EnvPool (optional, a heavy peer kept out of CI).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))  # use this checkout's client even when not pip-installed

import gymnasium  # noqa: E402
from gymnasium.vector import AutoresetMode  # noqa: E402

import robosim  # noqa: E402
from robosim.gym import RoboSimVectorEnv  # noqa: E402
from robosim.server import free_port_triple  # noqa: E402
from robosim.msgs.robosim import srv_pb2  # noqa: E402


def default_bin_dir() -> tuple[Path, str]:
    """`swift build --show-bin-path` for release if a release sim-server exists, else for debug."""
    config = "release" if (REPO / ".build" / "release" / "sim-server").exists() else "debug"
    try:
        out = subprocess.run(["swift", "build", "-c", config, "--show-bin-path"], cwd=REPO, capture_output=True,
                             text=True, timeout=120, check=True).stdout.strip()
        return Path(out), f"{config} (swift build -c {config} --show-bin-path)"
    except (OSError, subprocess.SubprocessError):
        return REPO / ".build" / config, f"{config} (swift not usable; .build/{config})"


NEXT, SAME = AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP


class SimServer:
    """sim-server as a child process; stopped with SIGINT."""

    def __init__(self, binary: Path, scene: str, envs: int, extra: list[str]):
        self.address = f"tcp://127.0.0.1:{free_port_triple()}"
        self.argv = [str(binary), scene, "--mode", "lockstep", "--envs", str(envs), "--listen", self.address, *extra]
        self.log = tempfile.NamedTemporaryFile(prefix="step_bench_server_", suffix=".log", delete=False)
        self.process = subprocess.Popen(self.argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        with robosim.Client(self.address, name="step_bench_probe", timeout=0.5) as probe:
            while True:
                if self.process.poll() is not None:
                    raise SystemExit(f"sim-server exited with {self.process.returncode}: {self.log_tail()}")
                try:
                    self.description = probe.describe()
                    params = probe.call("/sim/get_parameters", srv_pb2.GetParametersRequest(),
                                        srv_pb2.GetParametersResponse)
                    self.parameters = {p.name: p.value for p in params.parameters}
                    return
                except TimeoutError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise SystemExit(f"sim-server did not answer within 120 s: {self.log_tail()}")

    def log_tail(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        os.unlink(self.log.name)


def time_steps(env, actions: np.ndarray, warmup: int) -> float:
    """Steps `env` through `actions` (warm-up first); returns env-steps per second of the timed part."""
    for a in actions[:warmup]:
        env.step(a)
    timed = actions[warmup:]
    start = time.perf_counter()
    for a in timed:
        env.step(a)
    elapsed = time.perf_counter() - start
    return len(timed) * env.num_envs / elapsed


def uniform_actions(space, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(space.low, space.high, size=(count, *space.shape)).astype(space.dtype)


MODELS = {
    # model: (RoboSim scene on gymnasium's MJCF, gymnasium id, EnvPool id)
    "inverted_pendulum": ("Scenes/gym_inverted_pendulum", "InvertedPendulum-v5", "InvertedPendulum-v5"),
    "ant": ("Scenes/gym_ant", "Ant-v5", "Ant-v5"),
}


class GymnasiumSide:
    """gymnasium's SyncVectorEnv of `env_id` (NEXT_STEP autoreset, its default and EnvPool's), kept open across runs."""

    def __init__(self, env_id: str, n: int, args):
        self.envs = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make(env_id) for _ in range(n)],
                                                   autoreset_mode=NEXT)
        actions = uniform_actions(self.envs.single_action_space, (args.warmup + args.steps) * n, 0)
        self.actions = actions.reshape(args.warmup + args.steps, *self.envs.action_space.shape)
        self.args = args

    def run(self) -> float:
        self.envs.reset(seed=self.args.seed)
        return time_steps(self.envs, self.actions, self.args.warmup)

    def close(self) -> None:
        self.envs.close()


class EnvPoolSide:
    """EnvPool's make_gymnasium of `env_id` with `--envpool-threads` threads, kept open across runs."""

    def __init__(self, envpool, env_id: str, n: int, args):
        self.env = envpool.make_gymnasium(env_id, num_envs=n, num_threads=args.envpool_threads, seed=args.seed)
        self.num_envs = n
        actions = uniform_actions(self.env.action_space, (args.warmup + args.steps) * n, 0)
        self.actions = actions.reshape(args.warmup + args.steps, n, *self.env.action_space.shape)
        self.args = args

    def step(self, a):  # time_steps wants num_envs and step
        return self.env.step(a)

    def run(self) -> float:
        self.env.reset()
        return time_steps(self, self.actions, self.args.warmup)

    def close(self) -> None:
        self.env.close()


def make_envpool(env_id: str, n: int, args) -> EnvPoolSide | None:
    try:
        import envpool  # noqa: PLC0415  (a heavy peer: not in requirements-dev.txt; scripts/bench-peers.sh installs it)
    except ImportError:
        return None
    if env_id not in envpool.list_all_envs():
        print(f"envpool {envpool.__version__} has no {env_id}; skipped")
        return None
    return EnvPoolSide(envpool, env_id, n, args)


def robosim_run(server: SimServer, n: int, transport: str, autoreset: AutoresetMode, args) -> float:
    """One timed run of RoboSimVectorEnv over `transport` ("shm": the same-host step channel,
    "socket": /sim/step over TCP) with `autoreset`."""
    with RoboSimVectorEnv(server.address, num_envs=n, client_name="step_bench", transport=transport,
                          autoreset_mode=autoreset) as env:
        actions = uniform_actions(env.single_action_space, (args.warmup + args.steps) * n, 0)
        actions = actions.reshape(args.warmup + args.steps, *env.action_space.shape)
        env.reset(seed=args.seed)
        return time_steps(env, actions, args.warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, help="folder with sim-server (default: `swift build "
                        "--show-bin-path` for release if .build/release/sim-server exists, else for debug)")
    parser.add_argument("--models", default="inverted_pendulum,ant", help="comma-separated: inverted_pendulum, ant")
    parser.add_argument("--envs", default="64", help="comma-separated env counts (default 64)")
    parser.add_argument("--steps", type=int, default=300, help="timed vector steps per run (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed vector steps first (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side; the median is reported (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="reset seed of every side (default 1)")
    parser.add_argument("--envpool-threads", type=int, default=2, help="EnvPool num_threads (default 2)")
    parser.add_argument("--sides", default="robosim,gymnasium,envpool",
                        help="comma-separated sides to run: robosim, gymnasium, envpool (default all; one alone: "
                             "that side in a process of its own)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="extra sim-server argument (repeatable), e.g. --server-arg=--threads=4")
    args = parser.parse_args()
    counts = [int(x) for x in args.envs.split(",")]
    chosen = set(args.sides.split(","))
    models = args.models.split(",")
    if min(counts) < 1 or args.steps < 1 or args.warmup < 0 or args.repeats < 1 or any(m not in MODELS for m in models) \
            or not chosen or not chosen <= {"robosim", "gymnasium", "envpool"}:
        parser.error("env counts, --steps and --repeats must be >= 1, --warmup >= 0, models among " + ", ".join(MODELS)
                     + ", sides among robosim, gymnasium, envpool")

    print("command:", shlex.join([sys.executable, *sys.argv]))
    if args.bin_dir is None:
        bin_dir, how = default_bin_dir()
    else:
        bin_dir = args.bin_dir.resolve()
        how = f"{bin_dir.name} (--bin-dir)"
    binary = bin_dir / "sim-server"
    if not binary.exists():
        raise SystemExit(f"no sim-server in {bin_dir} (swift build [-c release], or pass --bin-dir)")
    try:
        import envpool  # noqa: PLC0415
        envpool_version = envpool.__version__
    except ImportError:
        envpool_version = "not installed (scripts/bench-peers.sh installs it)"
    print(f"sim-server: {binary} [{how}]")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}, "
          f"numpy {np.__version__}, gymnasium {gymnasium.__version__}, mujoco {__import__('mujoco').__version__}, "
          f"envpool {envpool_version}")

    rows = []
    fmt = lambda rates: ", ".join(f"{r:,.0f}" for r in rates) or "-"  # noqa: E731
    num = lambda x: "-" if x != x else f"{x:,.0f}"  # noqa: E731  (NaN: the side was not run)
    ratio = lambda a, b: "-" if a != a or b != b else f"{a / b:.2f}x"  # noqa: E731
    med = lambda rates: statistics.median(rates) if rates else float("nan")  # noqa: E731
    for model in models:
        scene, gym_id, pool_id = MODELS[model]
        for n in counts:
            # Every side once per repeat, in turn: this VM's speed drifts over minutes, and a ratio
            # of runs made side by side is what the table reports.
            server = SimServer(binary, scene, n, args.server_arg) if "robosim" in chosen else None
            gym_side = GymnasiumSide(gym_id, n, args) if "gymnasium" in chosen else None
            pool_side = make_envpool(pool_id, n, args) if "envpool" in chosen else None
            sides = [("shm", NEXT), ("shm", SAME), ("socket", SAME)] if server else []
            ours: dict[tuple, list[float]] = {side: [] for side in sides}
            gym, pool = [], [] if pool_side else None
            try:
                for _ in range(args.repeats):
                    for side in sides:
                        ours[side].append(robosim_run(server, n, *side, args))
                    if gym_side:
                        gym.append(gym_side.run())
                    if pool_side:
                        pool.append(pool_side.run())
            finally:
                for side in (server, gym_side, pool_side):
                    if side:
                        side.stop() if side is server else side.close()
            mine = [ours[side] for side in sides] or [[], [], []]
            about = f"(server {server.description.version}, threads {server.parameters.get('threads', '?')})" if server else ""
            print(f"{model} {n} envs: RoboSim shm next-step {fmt(mine[0])}; RoboSim shm same-step {fmt(mine[1])}; "
                  f"RoboSim socket same-step {fmt(mine[2])}; gymnasium next-step {fmt(gym)}; EnvPool {fmt(pool or [])} {about}")
            rows.append((model, n, *(med(m) for m in mine), med(gym), med(pool or [])))
    print()
    print(f"| model (gymnasium's MJCF) | envs | RoboSim, shm channel, next-step ({bin_dir.name}) | RoboSim, shm, same-step "
          f"| RoboSim, socket, same-step | gymnasium SyncVectorEnv, next-step | EnvPool ({args.envpool_threads} threads) "
          f"| RoboSim next-step / gymnasium | RoboSim next-step / EnvPool |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for model, n, nxt, same, sock, gym, pool in rows:
        print(f"| {model} | {n} | {num(nxt)} | {num(same)} | {num(sock)} | {num(gym)} | {num(pool)} | {ratio(nxt, gym)} | {ratio(nxt, pool)} |")


if __name__ == "__main__":
    main()
