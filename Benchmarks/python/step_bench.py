#!/usr/bin/env python3
"""Env-steps per second of robosim.gym.RoboSimVectorEnv against Gymnasium's own SyncVectorEnv.

Starts `sim-server Scenes/cartpole --mode lockstep --envs N` on free local ports, steps a
RoboSimVectorEnv over all N envs with uniform random actions (a fixed numpy Generator, drawn before
timing), then does the same with `gymnasium.vector.SyncVectorEnv` of N MuJoCo `InvertedPendulum-v5`
envs (v4 where v5 is missing) in this process. Both run SAME_STEP autoreset and two physics steps
per env step (cartpole: decimation 2 at 1/120 s; InvertedPendulum: frame_skip 2 at 0.02 s).

Prints the command line, the server binary and its build, and a markdown table row:
| envs | steps | RoboSim env-steps/s | Gymnasium env-steps/s | ratio |

    .venv/bin/python Benchmarks/python/step_bench.py                 # 64 envs, 300 steps after 20 warm-up
    .venv/bin/python Benchmarks/python/step_bench.py --envs 16 --steps 1000 --bin-dir .build/release

Needs: the robosim package (python/), gymnasium, mujoco and imageio (python/requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import signal
import socket
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

import robosim  # noqa: E402
from robosim.gym import RoboSimVectorEnv  # noqa: E402
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


def free_port_triple() -> int:
    """A port P with P, P+1 and P+2 free on 127.0.0.1 (service ROUTER, XPUB, XSUB)."""
    for _ in range(200):
        port = random.randint(20000, 60000)
        sockets = []
        try:
            for p in (port, port + 1, port + 2):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no three consecutive free ports")


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


def pendulum_id() -> str:
    for version in ("v5", "v4"):
        if f"InvertedPendulum-{version}" in gymnasium.registry:
            return f"InvertedPendulum-{version}"
    raise SystemExit("gymnasium has no InvertedPendulum-v5 or -v4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, help="folder with sim-server (default: `swift build "
                        "--show-bin-path` for release if .build/release/sim-server exists, else for debug)")
    parser.add_argument("--envs", type=int, default=64, help="parallel envs on both sides (default 64)")
    parser.add_argument("--steps", type=int, default=300, help="timed vector steps per run (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed vector steps first (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side; the median is reported (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="reset seed of both sides (default 1)")
    parser.add_argument("--scene", default="Scenes/cartpole", help="sim-server scene (default Scenes/cartpole)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="extra sim-server argument (repeatable), e.g. --server-arg=--threads=4")
    args = parser.parse_args()
    if args.envs < 1 or args.steps < 1 or args.warmup < 0 or args.repeats < 1:
        parser.error("--envs, --steps and --repeats must be >= 1, --warmup >= 0")

    print("command:", shlex.join([sys.executable, *sys.argv]))
    if args.bin_dir is None:
        bin_dir, how = default_bin_dir()
    else:
        bin_dir = args.bin_dir.resolve()
        how = f"{bin_dir.name} (--bin-dir)"
    binary = bin_dir / "sim-server"
    if not binary.exists():
        raise SystemExit(f"no sim-server in {bin_dir} (swift build [-c release], or pass --bin-dir)")
    print(f"sim-server: {binary} [{how}]")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}, "
          f"numpy {np.__version__}, gymnasium {gymnasium.__version__}, mujoco {__import__('mujoco').__version__}")

    # RoboSim: all envs of a fresh server, through the Gymnasium API.
    server = SimServer(binary, args.scene, args.envs, args.server_arg)
    try:
        print("server command:", shlex.join(server.argv))
        print(f"server: scene {server.description.scene}, {server.description.env_count} envs, "
              f"threads {server.parameters.get('threads', '?')}, version {server.description.version or '?'}")
        robosim_rates = []
        with RoboSimVectorEnv(server.address, num_envs=args.envs, client_name="step_bench") as env:
            actions = uniform_actions(env.single_action_space, (args.warmup + args.steps) * args.envs, 0)
            actions = actions.reshape(args.warmup + args.steps, *env.action_space.shape)
            for _ in range(args.repeats):
                env.reset(seed=args.seed)
                robosim_rates.append(time_steps(env, actions, args.warmup))
    finally:
        server.stop()

    # Gymnasium: SyncVectorEnv of MuJoCo envs in this process.
    env_id = pendulum_id()
    gym_rates = []
    envs = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make(env_id) for _ in range(args.envs)],
                                          autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)
    try:
        actions = uniform_actions(envs.single_action_space, (args.warmup + args.steps) * args.envs, 0)
        actions = actions.reshape(args.warmup + args.steps, *envs.action_space.shape)
        for _ in range(args.repeats):
            envs.reset(seed=args.seed)
            gym_rates.append(time_steps(envs, actions, args.warmup))
    finally:
        envs.close()

    fmt = lambda rates: ", ".join(f"{r:,.0f}" for r in rates)  # noqa: E731
    print(f"RoboSimVectorEnv ({server.description.scene}) runs: {fmt(robosim_rates)} env-steps/s")
    print(f"SyncVectorEnv ({env_id}) runs: {fmt(gym_rates)} env-steps/s")
    robosim_rate, gym_rate = statistics.median(robosim_rates), statistics.median(gym_rates)
    build = bin_dir.name
    print()
    print(f"| envs | steps | RoboSimVectorEnv {server.description.scene} ({build}) env-steps/s "
          f"| gymnasium SyncVectorEnv {env_id} env-steps/s | ratio |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {args.envs} | {args.steps} | {robosim_rate:,.0f} | {gym_rate:,.0f} | {robosim_rate / gym_rate:.2f}x |")


if __name__ == "__main__":
    main()
