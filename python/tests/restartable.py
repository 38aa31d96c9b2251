"""A sim-server that a test can kill -9 and start again with the same command on the same address.

    from restartable import RestartableServer, require_sim_server

    require_sim_server()                                  # skips the module without the binary
    with RestartableServer("Scenes/cartpole", "--mode", "lockstep", "--envs", "4", log_dir=tmp_path) as srv:
        srv.address                                       # tcp://127.0.0.1:<port>, the same after restarts
        srv.kill()                                        # SIGKILL, waits for the process to end
        srv.start()                                       # the same command again; srv.wait_ready() waits
        srv.restart()                                     # both, then waits

The binary is ``$ROBOSIM_BIN_DIR/sim-server`` (default ``.build/debug`` at the repository root), as in
test_server.py; the server runs in the repository root with ``--parent-pid`` (it stops when the test
process ends) and its output goes to ``log`` (every run appended). :meth:`stop` (and leaving the
``with``) stops it with SIGINT. Shared by the Python and the Swift clients' restart tests.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import pytest

import robosim
from robosim.server import free_port_triple

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("ROBOSIM_BIN_DIR", REPO / ".build" / "debug"))
SIM_SERVER = BIN_DIR / "sim-server"


def require_sim_server() -> Path:
    """The sim-server binary; skips the calling test (or fails, with ROBOSIM_REQUIRE_SERVER=1) without it."""
    if not SIM_SERVER.exists():
        reason = f"sim-server not built in {BIN_DIR} (swift build, or set ROBOSIM_BIN_DIR)"
        if os.environ.get("ROBOSIM_REQUIRE_SERVER") == "1":
            raise RuntimeError(reason)
        pytest.skip(reason, allow_module_level=True)
    return SIM_SERVER


class RestartableServer:
    """``sim-server ARGS --listen ADDRESS --parent-pid PID`` that can be killed and started again.

    ``args`` are the sim-server arguments without ``--listen`` (``"Scenes/cartpole", "--mode",
    "lockstep"``); ``port`` fixes the first of the three ports (default: three free ones).
    ``starts`` counts the processes started.
    """

    def __init__(self, *args: str, log_dir: Union[str, Path], port: Optional[int] = None,
                 binary: Union[str, Path, None] = None, ready_timeout: float = 60.0):
        self.binary = Path(binary) if binary is not None else require_sim_server()
        self.address = f"tcp://127.0.0.1:{port if port is not None else free_port_triple()}"
        self.args: Sequence[str] = args
        self.log = Path(log_dir) / f"sim-server-{self.address.rsplit(':', 1)[1]}.log"
        self.ready_timeout = ready_timeout
        self.process: Optional[subprocess.Popen] = None
        self.starts = 0

    @property
    def argv(self):
        return [str(self.binary), *self.args, "--listen", self.address, "--parent-pid", str(os.getpid())]

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, wait: bool = True) -> "RestartableServer":
        """Starts the command (again); with ``wait``, until it answers ``/sim/describe``."""
        if self.alive():
            raise RuntimeError(f"sim-server at {self.address} is running already (pid {self.pid})")
        with open(self.log, "ab") as log_file:
            log_file.write(f"--- start {self.starts + 1}: {' '.join(self.argv)}\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(self.argv, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        self.starts += 1
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: Optional[float] = None) -> None:
        """Waits until the server answers ``/sim/describe``; fails the test when it exits or never does."""
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        # The server listens without keys, whatever this process's key variables say (CURVE clients).
        plain = {"server_key": ""} if "server_key" in inspect.signature(robosim.Client).parameters else {}
        with robosim.Client(self.address, name="restartable_probe", timeout=0.3, **plain) as probe:
            while True:
                if not self.alive():
                    pytest.fail(f"sim-server exited with {self.process.returncode if self.process else None} "
                                f"before answering:\n{self.log_tail()}")
                try:
                    probe.describe()
                    return
                except TimeoutError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"sim-server did not answer /sim/describe within {timeout:g} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """``kill -9`` and waits for the process to end (no clean shutdown: leases, channels lost)."""
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """:meth:`kill`, then the same command again, waiting until it answers."""
        self.kill()
        self.start()

    def stop(self) -> Optional[int]:
        """SIGINT, then SIGKILL after 30 s; returns the exit code (None if never started)."""
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> "RestartableServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RestartableServer({self.address!r}, pid={self.pid}, starts={self.starts})"
