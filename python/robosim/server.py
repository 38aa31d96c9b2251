"""Starting a ``sim-server`` of one's own, in lockstep mode, for the registered Gymnasium envs and
``python -m robosim.lerobot eval``.

    >>> from robosim.server import LocalServer
    >>> with LocalServer("cartpole", envs=4) as server:          # doctest: +SKIP
    ...     print(server.address)                                 # tcp://127.0.0.1:<free port>

Where things are found:

- the ``sim-server`` executable: ``bin_dir`` if given, else ``$ROBOSIM_BIN_DIR``, else ``sim-server``
  on ``PATH``, else ``.build/release`` or ``.build/debug`` of the repository this package sits in;
- a scene given by name (``"cartpole"``): ``$ROBOSIM_SCENES/<name>``, else ``Scenes/<name>`` of that
  repository, else ``Scenes/<name>`` under the current directory. A path to a scene folder is taken as
  it is.

The server is started with ``--parent-pid`` (it stops when this process ends, however it ends), on
three free loopback ports, and :meth:`LocalServer.close` stops it with SIGINT. A server that dies
(killed, crashed) is not hidden: :meth:`LocalServer.revive` starts it again with the same command on
the same address, with a logged warning and its last output, and :class:`robosim.envs.SceneEnv`
calls it while it recovers (its step then reports ``info["server_restarted"]``).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence, Union

from .client import Client

__all__ = ["LocalServer", "find_scene", "find_sim_server", "free_port_triple"]

#: The repository this package sits in (python/robosim/ -> the root), when it is used from a checkout.
REPO_ROOT = Path(__file__).resolve().parents[2]

_log = logging.getLogger(__name__)


def find_sim_server(bin_dir: Union[str, Path, None] = None) -> Path:
    """The ``sim-server`` executable (see the module docstring); raises ``FileNotFoundError`` naming
    where it looked."""
    looked: List[str] = []
    for directory in (bin_dir, os.environ.get("ROBOSIM_BIN_DIR")):
        if directory:
            candidate = Path(directory) / "sim-server"
            if candidate.is_file():
                return candidate
            looked.append(str(candidate))
    on_path = shutil.which("sim-server")
    if on_path:
        return Path(on_path)
    looked.append("sim-server on PATH")
    for build in ("release", "debug"):
        candidate = REPO_ROOT / ".build" / build / "sim-server"
        if candidate.is_file():
            return candidate
        looked.append(str(candidate))
    raise FileNotFoundError("sim-server not found (looked at " + ", ".join(looked) +
                            "); build it with `swift build` or set ROBOSIM_BIN_DIR")


def find_scene(scene: Union[str, Path]) -> Path:
    """The folder of a scene given by name (``"cartpole"``) or path (``"Scenes/cartpole"``)."""
    path = Path(scene)
    if (path / "scene.json").is_file():
        return path.resolve()
    if len(path.parts) == 1:
        roots = [os.environ.get("ROBOSIM_SCENES"), REPO_ROOT / "Scenes", Path.cwd() / "Scenes"]
        for root in roots:
            if root and (Path(root) / path / "scene.json").is_file():
                return (Path(root) / path).resolve()
    raise FileNotFoundError(f"scene {str(scene)!r} not found: neither a folder with a scene.json nor a scene "
                            f"name under $ROBOSIM_SCENES, {REPO_ROOT / 'Scenes'} or ./Scenes")


def free_port_triple(host: str = "127.0.0.1") -> int:
    """A port P with P, P+1 and P+2 free on ``host`` (the server's ROUTER, XPUB and XSUB)."""
    for _ in range(200):
        port = random.randint(20000, 60000)
        sockets = []
        try:
            for p in (port, port + 1, port + 2):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(s)
                s.bind((host, p))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no three consecutive free ports")


class LocalServer:
    """A ``sim-server`` child process in lockstep mode.

    Args:
        scene: a scene name or folder (see :func:`find_scene`).
        envs: the server's env count.
        bin_dir: where ``sim-server`` is (see :func:`find_sim_server`).
        seed: the server's base seed (``--seed``).
        extra_args: more ``sim-server`` flags (``--render-backend none``, ...).
        startup_timeout: seconds to wait for the first ``/sim/describe`` answer.

    ``address`` is its service address; ``log`` the file its output goes to.
    """

    def __init__(self, scene: Union[str, Path], envs: int = 1, bin_dir: Union[str, Path, None] = None,
                 seed: int = 0, extra_args: Sequence[str] = (), startup_timeout: float = 120.0):
        self.scene = find_scene(scene)
        self.binary = find_sim_server(bin_dir)
        self.address = f"tcp://127.0.0.1:{free_port_triple()}"
        handle, name = tempfile.mkstemp(prefix="robosim-server-", suffix=".log")
        self.log = Path(name)
        argv = [str(self.binary), str(self.scene), "--mode", "lockstep", "--envs", str(int(envs)),
                "--seed", str(int(seed)), "--listen", self.address, "--parent-pid", str(os.getpid()),
                *extra_args]
        # The scene's repository is the working directory (as for sim-collect's own servers).
        cwd = self.scene.parent.parent if self.scene.parent.name == "Scenes" else None
        # It listens on loopback without keys: this process's own key variables are not its.
        env = {k: v for k, v in os.environ.items() if k not in ("ROBOSIM_KEY", "ROBOSIM_ALLOW")}
        self._command = (argv, cwd, env)
        self._closed = False
        #: How often :meth:`revive` started the server again.
        self.restarts = 0
        with os.fdopen(handle, "wb") as log_file:
            self.process = subprocess.Popen(argv, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env)
        try:
            self._wait(startup_timeout)
        except BaseException:
            self.close()
            raise

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with Client(self.address, name="robosim_probe", timeout=0.5, server_key="") as probe:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"sim-server exited with {self.process.returncode} before answering:\n"
                                       f"{self.log_tail()}")
                try:
                    probe.describe()
                    return
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"sim-server did not answer /sim/describe within {timeout:g} s:\n"
                                           f"{self.log_tail()}") from None

    def revive(self) -> bool:
        """Starts the server again (same command, same address) when it has died and :meth:`close`
        was not called; True when it did. Does not wait: the caller polls ``/sim/describe``."""
        process = getattr(self, "process", None)
        if process is None or self._closed or process.poll() is None:
            return False
        _log.warning("robosim: the sim-server at %s (pid %d) exited with %s; starting it again on the same "
                     "address. Its last output:\n%s", self.address, process.pid, process.returncode, self.log_tail())
        argv, cwd, env = self._command
        with open(self.log, "ab") as log_file:
            self.process = subprocess.Popen(argv, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env)
        self.restarts += 1
        return True

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's output."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        """Stops the server (SIGINT, then SIGKILL after 30 s) and removes its log."""
        self._closed = True
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        try:
            self.log.unlink()
        except OSError:
            pass

    def __enter__(self) -> "LocalServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"LocalServer({self.scene.name!r}, address={self.address!r})"
