"""A tiny pure-pyzmq stand-in for the RoboSim hub, for testing the client without the Swift server.

It binds a ROUTER (services), an XPUB and an XSUB on 127.0.0.1, forwards topic messages from XSUB to
XPUB, tracks the XPUB subscriptions, and answers a few services:

* ``/sim/describe``: endpoints (the XPUB one reported as ``tcp://*:PORT`` to exercise the client's
  wildcard handling);
* ``/graph/list``: services with types, and per topic the live subscription count;
* ``/graph/announce``: records the ``NodeInfo``;
* ``/test/echo``: replies ``ok`` with the request payload;
* ``/test/slow``: like echo, after ``slow_s`` seconds;
* ``/test/stale_first``: first a reply with a wrong request id, then the right one;
* anything else: ``error`` with ``NOT_FOUND``.
"""

from __future__ import annotations

import threading
import time
from typing import List

import zmq

from robosim.msgs.robosim import msg_pb2, srv_pb2


class FakeServer:
    """Runs the fake hub in a background thread; use as a context manager."""

    def __init__(self, slow_s: float = 0.5):
        self.slow_s = slow_s
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.xpub = self.context.socket(zmq.XPUB)
        self.xsub = self.context.socket(zmq.XSUB)
        for s in (self.router, self.xpub, self.xsub):
            s.setsockopt(zmq.LINGER, 0)
        port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.xpub_port = self.xpub.bind_to_random_port("tcp://127.0.0.1")
        self.xsub_port = self.xsub.bind_to_random_port("tcp://127.0.0.1")
        self.address = f"tcp://127.0.0.1:{port}"
        self.xsub.send(b"\x01")  # subscribe to everything upstream
        self.calls: List[List[bytes]] = []       # every service call as received (after the identity)
        self.announcements: List[msg_pb2.NodeInfo] = []
        self.subscriptions: dict = {}            # prefix -> live count
        self.forwarded = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._delayed: list = []                 # (due time, frames)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "FakeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in (self.router, self.xpub, self.xsub):
            s.close(linger=0)
        self.context.term()

    def announced(self) -> List[msg_pb2.NodeInfo]:
        with self._lock:
            return list(self.announcements)

    def recorded_calls(self) -> List[List[bytes]]:
        with self._lock:
            return list(self.calls)

    # -- loop -------------------------------------------------------------------------------------
    def _run(self) -> None:
        poller = zmq.Poller()
        for s in (self.router, self.xpub, self.xsub):
            poller.register(s, zmq.POLLIN)
        while not self._stop.is_set():
            ready = dict(poller.poll(10))
            if self.xsub in ready:
                while True:
                    try:
                        frames = self.xsub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self.xpub.send_multipart(frames)
                    self.forwarded += 1
            if self.xpub in ready:
                while True:
                    try:
                        event = self.xpub.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if event[:1] in (b"\x00", b"\x01"):
                        with self._lock:
                            delta = 1 if event[0] == 1 else -1
                            self.subscriptions[event[1:]] = self.subscriptions.get(event[1:], 0) + delta
            if self.router in ready:
                while True:
                    try:
                        frames = self.router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._serve(frames)
            now = time.monotonic()
            due = [d for d in self._delayed if d[0] <= now]
            for d in due:
                self._delayed.remove(d)
                self.router.send_multipart(d[1])

    def _serve(self, frames: List[bytes]) -> None:
        identity, rest = frames[0], frames[1:]
        with self._lock:
            self.calls.append(rest)
        if len(rest) < 3 or rest[0] != b"":
            return self._reply(identity, rest[3:], b"error", msg_pb2.Error(code=msg_pb2.MALFORMED, message="bad frames"))
        service, payload, rid = rest[1], rest[2], rest[3:]
        if service == b"/sim/describe":
            resp = srv_pb2.DescribeResponse(
                scene="fake", env_count=1, mode="lockstep",
                subscribe_endpoint=f"tcp://*:{self.xpub_port}",
                publish_endpoint=f"tcp://127.0.0.1:{self.xsub_port}")
            self._reply(identity, rid, b"ok", resp)
        elif service == b"/graph/list":
            resp = srv_pb2.GraphListResponse()
            resp.services.add(name="/test/echo", type="robosim/srv/Echo",
                              request_type="std_msgs/msg/String", response_type="std_msgs/msg/String")
            with self._lock:
                for prefix, count in self.subscriptions.items():
                    if count > 0:
                        resp.topics.add(name=prefix.decode(errors="replace"), subscriber_connections=count)
            self._reply(identity, rid, b"ok", resp)
        elif service == b"/graph/announce":
            with self._lock:
                self.announcements.append(msg_pb2.NodeInfo.FromString(payload))
            self._reply(identity, rid, b"ok", srv_pb2.Empty())
        elif service == b"/test/echo":
            self.router.send_multipart([identity, b"", b"ok", payload] + rid)
        elif service == b"/test/slow":
            self._delayed.append((time.monotonic() + self.slow_s, [identity, b"", b"ok", payload] + rid))
        elif service == b"/test/stale_first":
            self.router.send_multipart([identity, b"", b"ok", b"stale", b"not-the-id"])
            self.router.send_multipart([identity, b"", b"ok", payload] + rid)
        else:
            self._reply(identity, rid, b"error",
                        msg_pb2.Error(code=msg_pb2.NOT_FOUND, message=f"no service {service.decode(errors='replace')}"))

    def _reply(self, identity: bytes, rid: List[bytes], status: bytes, message) -> None:
        self.router.send_multipart([identity, b"", status, message.SerializeToString()] + list(rid))
