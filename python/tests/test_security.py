"""CURVE transport and the ZAP allow-list, against the real ``sim-server`` (docs/security.md).

With keys everything works (describe, /clock, a vector-env step, over the step channel too); a client
with a key the server does not allow, and a plaintext client, get no service answer and no topic
message, and the server logs the refusal; on the wire (a capture of the loopback interface, with
tcpdump, else a raw AF_PACKET socket) a marker published by a client and the scene name that
/sim/describe returns are readable in an insecure run and absent from a CURVE run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

import robosim
from robosim.gym import RoboSimVectorEnv
from robosim.msgs.rosgraph_msgs import msg_pb2 as rosgraph_msgs
from robosim.msgs.std_msgs import msg_pb2 as std_msgs
from robosim.server import free_port_triple

from test_server import REPO, SIM_SERVER, SIMCTL, Server

SCENE = "Scenes/cartpole"
SCENE_NAME = b"cartpole"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    """server, alice (allowed, in clients/) and mallory (not allowed), made by ``simctl keys generate``."""
    root = tmp_path_factory.mktemp("keys")
    for name in ("server", "clients/alice", "mallory"):
        out = subprocess.run([str(SIMCTL), "keys", "generate", str(root / name)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == (root / f"{name}.pub").read_text().strip()
    assert (root / "server.secret").stat().st_mode & 0o777 == 0o600
    again = subprocess.run([str(SIMCTL), "keys", "generate", str(root / "server")], capture_output=True, text=True)
    assert again.returncode != 0 and "refusing to overwrite" in again.stderr
    public = subprocess.run([str(SIMCTL), "keys", "public", str(root / "server.secret")], capture_output=True, text=True, check=True)
    assert public.stdout.strip() == (root / "server.pub").read_text().strip()
    return root


@contextlib.contextmanager
def start_server(tmp_path_factory, *args: str, server_key: str = ""):
    """sim-server (cartpole, lockstep) on free loopback ports; waits until it answers, stops it with SIGINT."""
    port = free_port_triple()
    address = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("sim_server") / "sim-server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOSIM_") or k == "ROBOSIM_BIN_DIR"}
    with open(log, "wb") as log_file:
        process = subprocess.Popen([str(SIM_SERVER), SCENE, "--envs", "2", "--mode", "lockstep", "--listen", address, *args],
                                   cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    srv = Server(address, process, log)
    try:
        deadline = time.monotonic() + 120
        while not b"hub listening" in log.read_bytes():
            if process.poll() is not None:
                pytest.fail(f"sim-server exited with {process.returncode}:\n{srv.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"sim-server did not start:\n{srv.log_tail()}")
            time.sleep(0.05)
        yield srv
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 0, f"sim-server exited with {process.returncode}:\n{srv.log_tail()}"


def secure_args(keys: Path):
    return ["--key", str(keys / "server.secret"), "--allow", str(keys / "clients")]


def data_port(address: str, offset: int) -> str:
    host, port = address.rsplit(":", 1)
    return f"{host}:{int(port) + offset}"


def test_allowed_client_gets_everything(tmp_path_factory, keys):
    with start_server(tmp_path_factory, *secure_args(keys)) as srv:
        log = srv.log.read_text()
        assert "CURVE" in log and "1 allowed clients" in log
        with robosim.Client(srv.address, timeout=10.0, server_key=str(keys / "server.pub"),
                            key=str(keys / "clients/alice.secret")) as client:
            assert client.describe().scene == "cartpole"
            clock = client.subscribe("/clock", rosgraph_msgs.Clock)
            assert clock.wait_connected(10.0)
            for transport in ("socket", "auto"):
                env = RoboSimVectorEnv(client, num_envs=2, transport=transport)
                try:
                    obs, _ = env.reset(seed=1)
                    obs2, reward, *_ = env.step(np.zeros((2, env.action_size)))
                    assert obs2.shape == obs.shape and np.all(np.isfinite(reward))
                    if transport == "auto" and os.uname().machine == "x86_64":
                        assert env.transport == "shm"   # negotiated over the authenticated ROUTER
                finally:
                    env.close()
            assert clock.recv(timeout=10.0).clock.sec >= 0
        # The environment variables do the same.
        env = dict(os.environ, ROBOSIM_SERVER_KEY=str(keys / "server.pub"), ROBOSIM_KEY=str(keys / "clients/alice.secret"))
        out = subprocess.run([str(SIMCTL), "service", "list", "--server", srv.address], env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0 and "/sim/describe" in out.stdout, out.stderr
        assert b"refused a client" not in srv.log.read_bytes()


def test_unknown_and_plaintext_clients_get_nothing(tmp_path_factory, keys):
    with start_server(tmp_path_factory, *secure_args(keys)) as srv:
        server_pub = (keys / "server.pub").read_text().strip()
        mallory = str(keys / "mallory.secret")
        with robosim.Client(srv.address, timeout=1.5, server_key=server_pub, key=mallory) as stranger:
            with pytest.raises(TimeoutError):
                stranger.describe()
        with robosim.Client(srv.address, timeout=1.5, server_key="") as plain:
            with pytest.raises(TimeoutError):
                plain.describe()
        # Straight to the XPUB: a stranger's and a plaintext SUB get no /clock while an allowed client steps.
        context = zmq.Context()
        curve = robosim.client.load_curve_keys(server_pub, mallory)
        subs = []
        for keyed in (True, False):
            sub = context.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            if keyed:
                curve.apply(sub)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(data_port(srv.address, 1))
            subs.append(sub)
        with robosim.Client(srv.address, timeout=10.0, server_key=server_pub, key=str(keys / "clients/alice.secret")) as friend:
            clock = friend.subscribe("/clock", rosgraph_msgs.Clock)
            assert clock.wait_connected(10.0)
            env = RoboSimVectorEnv(friend, num_envs=1, transport="socket")
            try:
                env.reset(seed=0)
                for _ in range(20):
                    env.step(np.zeros((1, env.action_size)))
            finally:
                env.close()
            assert clock.recv(timeout=10.0) is not None   # topics are flowing...
        for sub in subs:
            assert sub.poll(500) == 0                        # ...but not to them
            sub.close()
        context.term()
        prefix = (keys / "mallory.pub").read_text().strip()[:8]
        log = srv.log.read_text()
        refusals = [line for line in log.splitlines() if "refused a client" in line]
        assert refusals, log
        assert any(prefix in line and "127.0.0.1" in line for line in refusals), refusals


def test_non_loopback_listen_needs_keys_or_insecure(tmp_path_factory):
    port = free_port_triple()
    out = subprocess.run([str(SIM_SERVER), SCENE, "--listen", f"tcp://0.0.0.0:{port}"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0
    assert "refusing to listen" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    out = subprocess.run([str(SIM_SERVER), SCENE, "--viewer", "0", "--viewer-host", "0.0.0.0"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "--insecure" in out.stderr


# -- the wire ----------------------------------------------------------------------------------------


class Capture:
    """Packets on the loopback interface to or from ``ports``: tcpdump -w when it is installed, else
    a raw AF_PACKET socket (needs CAP_NET_RAW)."""

    def __init__(self, ports, path: Path):
        self.ports = set(ports)
        self.path = path
        self.chunks = []
        self._stop = threading.Event()
        self.tool = "tcpdump" if shutil.which("tcpdump") else "af_packet"
        if self.tool == "tcpdump":
            expr = " or ".join(f"tcp port {p}" for p in sorted(self.ports))
            self.process = subprocess.Popen(["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-w", str(path), expr],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            line = self.process.stderr.readline()   # "listening on lo, ..." once it captures
            if b"listening on" not in line:
                self.process.kill()
                pytest.skip(f"tcpdump cannot capture here: {line.decode(errors='replace').strip()}")
        else:
            try:
                self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
                self.sock.bind(("lo", 0))
            except (PermissionError, OSError) as e:
                pytest.skip(f"no tcpdump and no raw socket ({e})")
            self.sock.settimeout(0.1)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def _read(self):
        while not self._stop.is_set():
            try:
                frame = self.sock.recv(1 << 17)
            except socket.timeout:
                continue
            # Ethernet (14 bytes on lo) + IPv4 + TCP: keep the server's ports only.
            if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
                continue
            ihl = (frame[14] & 0x0F) * 4
            src, dst = struct.unpack("!HH", frame[14 + ihl:18 + ihl])
            if src in self.ports or dst in self.ports:
                self.chunks.append(frame)

    def stop(self) -> bytes:
        time.sleep(0.3)
        if self.tool == "tcpdump":
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=10)
            return self.path.read_bytes()
        self._stop.set()
        self.thread.join()
        self.sock.close()
        data = b"".join(self.chunks)
        self.path.write_bytes(data)
        return data


def exchange(srv: Server, marker: bytes, **keys) -> str:
    """Publishes ``marker`` on /security/marker until this client's own subscription gets it, and calls
    /sim/describe; returns the scene name."""
    with robosim.Client(srv.address, timeout=10.0, **keys) as client:
        scene = client.describe().scene
        sub = client.subscribe("/security/marker", std_msgs.String)
        assert sub.wait_connected(10.0)
        pub = client.publisher("/security/marker", std_msgs.String)
        pub.wait_matching(10.0)
        deadline = time.monotonic() + 10
        while True:
            pub.publish(std_msgs.String(data=marker.decode()))
            try:
                if sub.recv(timeout=0.1).data == marker.decode():
                    break
            except TimeoutError:
                pass
            assert time.monotonic() < deadline, "the marker never came back"
        return scene


@pytest.mark.parametrize("secure", [False, True], ids=["insecure", "curve"])
def test_traffic_is_not_plaintext(tmp_path_factory, keys, secure):
    marker = f"robosim-marker-{os.getpid()}-{int(secure)}".encode()
    args = secure_args(keys) if secure else []
    with start_server(tmp_path_factory, *args) as srv:
        port = int(srv.address.rsplit(":", 1)[1])
        capture = Capture([port, port + 1, port + 2], tmp_path_factory.mktemp("capture") / "lo.pcap")
        client_keys = {"server_key": str(keys / "server.pub"), "key": str(keys / "clients/alice.secret")} if secure else {"server_key": ""}
        try:
            scene = exchange(srv, marker, **client_keys)
        finally:
            wire = capture.stop()
    assert scene.encode() == SCENE_NAME
    assert len(wire) > 1000, f"the capture ({capture.tool}) holds {len(wire)} bytes: nothing captured"
    if secure:
        assert marker not in wire and SCENE_NAME not in wire and b"/sim/describe" not in wire
    else:
        assert marker in wire and SCENE_NAME in wire and b"/sim/describe" in wire
