"""Two hosts on one machine with a faulty link between them, for tests of what crosses a network.

A ``Link`` makes two network namespaces ("server" and "client") joined by a point-to-point IP link
whose packets go through this process, which delays each by ``delay`` seconds and drops each with
probability ``loss`` (``cut()`` drops all), in both directions: what ``tc qdisc ... netem`` does.
This machine's kernel has no ``sch_netem`` (``tc`` answers "Specified qdisc kind is unknown"), so
the link is a TUN device in each namespace and a forwarding thread here; packets are real IP
packets between real processes' sockets (TCP retransmits what is lost).

Processes run on a host with ``link.popen("client", argv)``. They also get a PID namespace of their
own (``unshare --pid --fork --kill-child --mount-proc``), so they cannot reach the other host's processes through
``/proc`` either (a same-host shared-memory step channel cannot be opened): as on two machines.

Needs root (``ip netns``, ``/dev/net/tun``); ``available()`` says whether this machine can.
"""

from __future__ import annotations

import ctypes
import fcntl
import heapq
import itertools
import os
import random
import select
import shutil
import struct
import subprocess
import threading
import time
from typing import List, Optional, Sequence

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)


def available() -> Optional[str]:
    """None when links can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns, /dev/net/tun)"
    if not shutil.which("ip") or not shutil.which("unshare"):
        return "needs iproute2's ip and util-linux's unshare"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    probe = f"rs_probe_{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")


def _open_tun_in(namespace: str, name: str) -> int:
    """A TUN device named ``name`` created inside ``namespace``; returns its fd (setns on a thread of
    our own, so the rest of the process stays where it is)."""
    result: List[object] = []

    def work() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {namespace}")
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
            result.append(fd)
            _libc.setns(own, CLONE_NEWNET)
        except BaseException as e:  # handed to the caller
            result.append(e)
        finally:
            os.close(own)
            os.close(target)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]  # type: ignore[return-value]


class Link:
    """Namespaces ``server`` (address ``server_ip``) and ``client`` (``client_ip``) and the faulty
    link between them. A context manager: everything is removed on exit."""

    def __init__(self, delay: float = 0.0, loss: float = 0.0, seed: int = 0):
        n = next(_counter) % 200
        tag = f"{os.getpid() % 100000}_{n}"
        self.namespaces = {"server": f"rs_srv_{tag}", "client": f"rs_cli_{tag}"}
        subnet = 10 + (os.getpid() + n) % 200
        self.server_ip = f"10.78.{subnet}.1"
        self.client_ip = f"10.78.{subnet}.2"
        self.delay, self.loss = delay, loss
        self.forwarded = self.dropped = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._fds: List[int] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._processes: List[subprocess.Popen] = []

    def __enter__(self) -> "Link":
        try:
            for ns in self.namespaces.values():
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            for side, (mine, peer) in (("server", (self.server_ip, self.client_ip)), ("client", (self.client_ip, self.server_ip))):
                ns = self.namespaces[side]
                self._fds.append(_open_tun_in(ns, "rslink"))
                _ip("-n", ns, "addr", "add", mine, "peer", peer, "dev", "rslink")
                _ip("-n", ns, "link", "set", "rslink", "up")
            self._thread = threading.Thread(target=self._forward, name="netem", daemon=True)
            self._thread.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for p in self._processes:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        for ns in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def set(self, delay: Optional[float] = None, loss: Optional[float] = None) -> None:
        """Changes the link's delay (seconds, each way) or loss (0-1, each way) from now on."""
        with self._lock:
            if delay is not None:
                self.delay = delay
            if loss is not None:
                self.loss = loss

    def cut(self) -> None:
        """Every packet from now on is dropped (the cable is pulled)."""
        self.set(loss=1.0)

    def popen(self, side: str, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        """Starts ``argv`` on host ``side`` ("server" or "client"), in a PID namespace of its own."""
        # --kill-child: the process dies with unshare (else a killed unshare leaves it running).
        wrapped = ["ip", "netns", "exec", self.namespaces[side], "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", *argv]
        p = subprocess.Popen(wrapped, **kwargs)
        self._processes.append(p)
        return p

    def run(self, side: str, argv: Sequence[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
        p = self.popen(side, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
        out, err = p.communicate(timeout=timeout)
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)

    def _forward(self) -> None:
        """Reads packets from each side's TUN, and writes each to the other side after the delay,
        unless it is dropped."""
        a, b = self._fds
        other = {a: b, b: a}
        queue: list = []   # (due, sequence, fd, packet)
        sequence = itertools.count()
        while not self._stop.is_set():
            timeout = 0.05
            if queue:
                timeout = max(0.0, min(timeout, queue[0][0] - time.monotonic()))
            readable, _, _ = select.select([a, b], [], [], timeout)
            now = time.monotonic()
            for fd in readable:
                while True:
                    try:
                        packet = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    with self._lock:
                        delay, drop = self.delay, self._random.random() < self.loss
                    if drop:
                        self.dropped += 1
                        continue
                    heapq.heappush(queue, (now + delay, next(sequence), other[fd], packet))
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                _, _, fd, packet = heapq.heappop(queue)
                try:
                    os.write(fd, packet)
                    self.forwarded += 1
                except OSError:
                    self.dropped += 1
