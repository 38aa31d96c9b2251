"""RoboSim client: service calls, topic subscriptions and publishers over ZeroMQ + protobuf.

The wire protocol is described in ``docs/wire-protocol.md``. In short:

* service calls go to the server's ROUTER (``--server``/``SIM_SERVER``) as
  ``["", service name, request payload, request id]`` on a DEALER; the reply is
  ``["", status, payload, request id]`` with status ``ok`` or ``error`` (payload ``robosim.Error``);
* topic messages are ``[topic name, type name, payload]``; subscribers connect a SUB socket to the
  server's XPUB (``subscribe_endpoint`` of ``/sim/describe``), publishers a PUB socket to its XSUB
  (``publish_endpoint``);
* every client announces itself as a graph node (``robosim.NodeInfo``) on ``/graph/announce``.

Security (``docs/security.md``): a server started with ``--key``/``--allow`` speaks ZeroMQ CURVE
(encrypted, and only allow-listed client keys are admitted). Give :class:`Client` the server's public
key (``server_key``) and this client's key pair (``key``, a ``.secret`` file from
``simctl keys generate``), or set ``ROBOSIM_SERVER_KEY`` and ``ROBOSIM_KEY``; every socket the client
opens (service DEALER, announcer, SUB, PUB) then uses them. A client whose key the server does not
allow gets nothing: its calls time out and its subscriptions stay silent.

ZeroMQ's "slow joiner": a subscription (or a publisher's connection) takes a few milliseconds to reach
the server; messages published before that are not delivered to it. Use
:meth:`Subscription.wait_connected` after subscribing and :meth:`Publisher.wait_matching` before the
first messages that matter; both are best effort, so do not rely on the very first message of a fresh
publisher arriving.
"""

from __future__ import annotations

import collections
import math
import os
import re
import socket as _socket
import threading
import time
from typing import Deque, Dict, Iterator, List, Optional, Tuple, Type, Union

import zmq
from google.protobuf.message import DecodeError, Message
from zmq.utils.monitor import recv_monitor_message

from .msgs.robosim import msg_pb2 as _robosim_msg
from .msgs.robosim import srv_pb2 as _robosim_srv
from .types import message_class, type_name, validate_topic_name

__all__ = [
    "DEFAULT_SERVER",
    "Client",
    "Subscription",
    "Publisher",
    "ServiceError",
    "ProtocolError",
    "ClosedError",
    "CurveKeys",
    "load_curve_keys",
]

#: Service address used when neither the ``server`` argument nor ``SIM_SERVER`` is given.
DEFAULT_SERVER = "tcp://127.0.0.1:7700"

#: Default queue depths of the two QoS profiles.
SENSOR_DEPTH = 1
RELIABLE_DEPTH = 1000

_STATUS_OK = b"ok"
_STATUS_ERROR = b"error"
_POLL_MS = 100
_PUB_HWM = 1000
_SUB_HWM = 1000

# Response types of the hub's own services; every other one is looked up in /graph/list.
_BUILTIN_RESPONSES: Dict[str, Type[Message]] = {
    "/sim/describe": _robosim_srv.DescribeResponse,
    "/graph/list": _robosim_srv.GraphListResponse,
    "/graph/announce": _robosim_srv.Empty,
}

MessageClass = Union[Type[Message], str]

#: Environment variables with the server's public key and this client's ``.secret`` file.
SERVER_KEY_VARIABLE = "ROBOSIM_SERVER_KEY"
KEY_VARIABLE = "ROBOSIM_KEY"
_Z85_KEY = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")


class CurveKeys(Tuple[bytes, bytes, bytes]):
    """``(server_public, public, secret)``: the Z85 keys a CURVE client sets on its sockets."""

    def apply(self, sock: zmq.Socket) -> None:
        """Makes ``sock`` a CURVE client of the server (call before ``connect``)."""
        sock.setsockopt(zmq.CURVE_SERVERKEY, self[0])
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self[1])
        sock.setsockopt(zmq.CURVE_SECRETKEY, self[2])


def _key_lines(path: str) -> List[str]:
    with open(path, "r", encoding="ascii") as f:
        text = f.read(1 << 20)
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def _server_public_key(value: str) -> bytes:
    """A Z85 public key given as text or as a file (a ``.pub`` file: its line; a ``.secret``: line 1)."""
    if _Z85_KEY.fullmatch(value.strip()) and not os.path.exists(value):
        return value.strip().encode()
    if not os.path.exists(value):
        raise ValueError(f"server_key {value!r} is neither a 40-character Z85 key nor a key file")
    lines = _key_lines(value)
    if not lines or not _Z85_KEY.fullmatch(lines[0]):
        raise ValueError(f"{value}: line 1 is not a 40-character Z85 key")
    return lines[0].encode()


def _own_key_pair(value: str) -> Tuple[bytes, bytes]:
    """``(public, secret)`` from a ``.secret`` file (public key, secret key) or a Z85 secret key."""
    if _Z85_KEY.fullmatch(value.strip()) and not os.path.exists(value):
        secret = value.strip().encode()
        return zmq.curve_public(secret), secret
    if not os.path.exists(value):
        # Not echoed: a secret key pasted with a stray character would land in logs.
        raise ValueError(f"key= (a {len(value)}-character value) is neither an existing .secret file nor a "
                         "40-character Z85 secret key")
    lines = _key_lines(value)
    if len(lines) != 2 or not all(_Z85_KEY.fullmatch(ln) for ln in lines):
        raise ValueError(f"{value}: a .secret file holds two lines (public key, secret key)")
    public, secret = lines[0].encode(), lines[1].encode()
    if zmq.curve_public(secret) != public:
        raise ValueError(f"{value}: the secret key does not belong to the public key")
    return public, secret


def load_curve_keys(server_key: Optional[str] = None, key: Optional[str] = None) -> Optional[CurveKeys]:
    """The CURVE keys a client uses, or None for plaintext.

    ``server_key``: the server's public key, a ``.pub`` file or the Z85 text (default
    ``$ROBOSIM_SERVER_KEY``); ``key``: this client's ``.secret`` file or its Z85 secret key (default
    ``$ROBOSIM_KEY``). An empty string means "none", whatever the environment says (a server of
    one's own on loopback). A server key without an own key is an error: the server admits only
    allow-listed client keys.
    """
    server_value = os.environ.get(SERVER_KEY_VARIABLE, "") if server_key is None else server_key
    key_value = os.environ.get(KEY_VARIABLE, "") if key is None else key
    if not server_value:
        if key:
            raise ValueError("key= needs server_key= (or ROBOSIM_SERVER_KEY): the server's public key")
        return None
    if not key_value:
        raise ValueError("server_key= needs key= (or ROBOSIM_KEY): this client's .secret file, whose public key the "
                         "server allows (simctl keys generate)")
    public, secret = _own_key_pair(key_value)
    return CurveKeys((_server_public_key(server_value), public, secret))


class ServiceError(Exception):
    """An ``error`` reply to a service call.

    ``code`` is the ``robosim.ErrorCode`` name (``"NOT_FOUND"``, ``"INVALID_ARGUMENT"``, ...),
    ``message`` the server's explanation and ``service`` the service that was called.
    """

    def __init__(self, code: str, message: str, service: str = ""):
        self.code = code
        self.message = message
        self.service = service
        prefix = f"{service}: " if service else ""
        super().__init__(f"{prefix}{code}: {message}")


class ProtocolError(Exception):
    """The server answered something that does not follow the wire protocol."""


class ClosedError(RuntimeError):
    """The client or subscription was closed."""


def _normalize_qos(qos: Union[str, int]) -> str:
    """``"sensor"``/``"sensor_data"``/``SENSOR_DATA`` -> ``"sensor"``; ``"reliable"``/``RELIABLE`` -> ``"reliable"``."""
    if isinstance(qos, str):
        key = qos.strip().lower()
        if key in ("sensor", "sensor_data"):
            return "sensor"
        if key == "reliable":
            return "reliable"
    elif qos == _robosim_msg.SENSOR_DATA:
        return "sensor"
    elif qos == _robosim_msg.RELIABLE:
        return "reliable"
    raise ValueError(f"unknown QoS {qos!r}: use 'sensor' or 'reliable'")


def _wire_qos(qos: str) -> int:
    return _robosim_msg.SENSOR_DATA if qos == "sensor" else _robosim_msg.RELIABLE


def _as_message_class(msg_class: MessageClass) -> Type[Message]:
    """Accepts a generated class or a ROS type name (``std_msgs/msg/String``)."""
    if isinstance(msg_class, str):
        return message_class(msg_class)
    if isinstance(msg_class, type) and issubclass(msg_class, Message):
        return msg_class
    raise TypeError(f"expected a protobuf message class or a type name, got {msg_class!r}")


def _error_code_name(code: int) -> str:
    try:
        return _robosim_msg.ErrorCode.Name(code)
    except ValueError:
        return str(code)


class Subscription:
    """A subscription to one topic, created by :meth:`Client.subscribe`.

    A background thread owns the SUB socket: it receives every message of the topic, drops (and counts)
    those whose topic frame is not exactly :attr:`topic` (ZeroMQ matches prefixes), whose type frame is
    not :attr:`type_name` or whose payload does not decode, and queues the rest:

    * ``sensor`` QoS keeps only the newest :attr:`depth` messages; each one replaced counts as dropped;
    * ``reliable`` QoS holds up to :attr:`depth` messages and drops (and counts) new ones when full.

    Counters: :attr:`received` messages handed to the application by :meth:`recv`, :attr:`dropped`
    messages that arrived but never will be, :attr:`pending` messages waiting in the queue. Every
    message that reached this subscription is in exactly one of the three.
    """

    def __init__(self, client: "Client", topic: str, msg_class: Type[Message], qos: str, depth: int,
                 endpoint: str):
        self.topic = topic
        self.msg_class = msg_class
        self.type_name = type_name(msg_class)
        self.qos = qos
        self.depth = depth
        self.endpoint = endpoint
        self._client = client
        self._topic_frame = topic.encode()
        self._type_frame = self.type_name.encode()
        self._cond = threading.Condition()
        self._queue: Deque[Message] = collections.deque()
        self._received = 0
        self._dropped = 0
        self._closed = False
        self._failure: Optional[BaseException] = None
        self._stop = threading.Event()
        self._connected = threading.Event()

        sock = client._socket(zmq.SUB)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, _SUB_HWM)
            sock.setsockopt(zmq.SUBSCRIBE, self._topic_frame)
            monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
            sock.connect(endpoint)
        except BaseException:
            sock.close(linger=0)
            raise
        self._thread = threading.Thread(target=self._run, args=(sock, monitor),
                                        name=f"robosim-sub:{topic}", daemon=True)
        self._thread.start()

    # -- counters ---------------------------------------------------------------------------------
    @property
    def received(self) -> int:
        """Messages handed to the application by :meth:`recv` (or iteration)."""
        with self._cond:
            return self._received

    @property
    def dropped(self) -> int:
        """Messages that arrived but were dropped: replaced or overflowing, wrong topic or type, undecodable."""
        with self._cond:
            return self._dropped

    @property
    def pending(self) -> int:
        """Messages queued and not yet taken by :meth:`recv`."""
        with self._cond:
            return len(self._queue)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the client closed)."""
        with self._cond:
            return self._closed

    # -- receiving --------------------------------------------------------------------------------
    def recv(self, timeout: Optional[float] = None) -> Message:
        """The next message (the oldest queued one), waiting up to ``timeout`` seconds (None: forever).

        Raises ``TimeoutError`` when none arrives in time and :class:`ClosedError` once the subscription
        is closed and its queue is empty.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._closed:
                    raise ClosedError(f"subscription to {self.topic} is closed") from self._failure
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no message on {self.topic} within {timeout:g} s")
                self._cond.wait(remaining)
            self._received += 1
            return self._queue.popleft()

    def __iter__(self) -> Iterator[Message]:
        """Yields messages as they arrive until the subscription is closed."""
        while True:
            try:
                yield self.recv()
            except ClosedError:
                return

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Waits until the subscription has reached the server; True if it did within ``timeout`` s.

        This waits for the ZeroMQ handshake with the server's XPUB and then until ``/graph/list``
        reports a live ZeroMQ subscription for :attr:`topic`. Messages published before this returns
        may be missed (ZeroMQ's slow joiner).
        """
        deadline = time.monotonic() + timeout
        if not self._connected.wait(timeout):
            return False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                graph = self._client.graph(timeout=remaining)
            except TimeoutError:
                return False
            if any(t.name == self.topic and t.subscriber_connections > 0 for t in graph.topics):
                return True
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """Stops receiving and closes the socket; queued messages can still be read with :meth:`recv`."""
        self._shutdown()
        self._client._forget(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Subscription({self.topic!r}, {self.type_name}, qos={self.qos}, depth={self.depth}, "
                f"received={self.received}, dropped={self.dropped})")

    def _shutdown(self, join_timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(join_timeout)
        self._mark_closed()

    def _mark_closed(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- the receive thread -----------------------------------------------------------------------
    def _run(self, sock: zmq.Socket, monitor: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(_POLL_MS))
                if monitor in ready:
                    self._drain_monitor(monitor)
                if sock in ready:
                    # Drain a bounded batch so that a stop request is seen even under heavy traffic.
                    for _ in range(10000):
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._accept(frames)
        except BaseException as exc:  # pragma: no cover - only on ZeroMQ failures
            self._failure = exc
        finally:
            try:
                sock.disable_monitor()
            except zmq.ZMQError:
                pass
            monitor.close(linger=0)
            sock.close(linger=0)
            self._mark_closed()

    def _drain_monitor(self, monitor: zmq.Socket) -> None:
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._connected.set()
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                self._connected.clear()

    def _accept(self, frames: List[bytes]) -> None:
        message = None
        if len(frames) == 3 and frames[0] == self._topic_frame and frames[1] == self._type_frame:
            try:
                message = self.msg_class.FromString(frames[2])
            except (DecodeError, ValueError, RuntimeError):
                message = None
        with self._cond:
            if message is None:
                self._dropped += 1
                return
            if len(self._queue) >= self.depth:
                self._dropped += 1
                if self.qos == "reliable":
                    return  # reliable: keep what is queued, drop the newcomer
                self._queue.popleft()  # sensor: the newest wins
            self._queue.append(message)
            self._cond.notify()


class Publisher:
    """Publishes one topic; created by :meth:`Client.publisher`.

    Sending never blocks: the client's PUB socket drops messages beyond its high-water mark.
    """

    def __init__(self, client: "Client", topic: str, msg_class: Type[Message], qos: str):
        self.topic = topic
        self.msg_class = msg_class
        self.type_name = type_name(msg_class)
        self.qos = qos
        self._client = client
        self._frames = (topic.encode(), self.type_name.encode())
        self._lock = threading.Lock()
        self._published = 0
        self._dropped = 0
        self._closed = False

    @property
    def published(self) -> int:
        """Messages handed to ZeroMQ."""
        with self._lock:
            return self._published

    @property
    def dropped(self) -> int:
        """Messages ZeroMQ refused at once (send queue full)."""
        with self._lock:
            return self._dropped

    def publish(self, msg: Message) -> bool:
        """Sends one message as ``[topic, type, payload]``; False if it was dropped locally."""
        if not isinstance(msg, self.msg_class):
            raise TypeError(f"{self.topic} carries {self.type_name}, not {type(msg).__name__}")
        if self._closed:
            raise ClosedError(f"publisher of {self.topic} is closed")
        sent = self._client._send_topic([self._frames[0], self._frames[1], msg.SerializeToString()])
        with self._lock:
            if sent:
                self._published += 1
            else:
                self._dropped += 1
        return sent

    def wait_matching(self, timeout: float = 5.0, settle: float = 0.05) -> bool:
        """Waits until the server reports a live subscription to :attr:`topic`; True if one came in time.

        ZeroMQ drops what a PUB socket sends before a subscription has reached it. This polls
        ``/graph/list`` until the hub counts a subscription matching the topic, then waits ``settle``
        seconds more for that subscription to travel on from the hub to this client (best effort).
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                graph = self._client.graph(timeout=remaining)
            except TimeoutError:
                return False
            if any(t.name == self.topic and t.subscriber_connections > 0 for t in graph.topics):
                time.sleep(settle)
                return True
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        """Stops publishing; the topic disappears from this node's announcements."""
        self._closed = True
        self._client._forget(self)

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Publisher({self.topic!r}, {self.type_name}, qos={self.qos}, published={self.published})"


class Client:
    """A connection to a RoboSim server: service calls, subscriptions and publishers.

    ``server`` is the server's service address (ROUTER); it defaults to ``$SIM_SERVER``, else
    ``tcp://127.0.0.1:7700``. ``name`` is this node's name in the graph (default ``py_<pid>``);
    ``timeout`` the default service-call timeout in seconds.

    ``server_key`` (the server's CURVE public key: a ``.pub`` file or the Z85 text; default
    ``$ROBOSIM_SERVER_KEY``) and ``key`` (this client's ``.secret`` file or Z85 secret key; default
    ``$ROBOSIM_KEY``) make every socket of the client a CURVE client: encrypted, and admitted only when
    the server allow-lists this key (otherwise calls time out and subscriptions stay silent). Pass
    ``server_key=""`` for plaintext whatever the environment says. See :func:`load_curve_keys`.

    Use it as a context manager, or call :meth:`close` when done::

        with Client() as client:
            print(client.describe().scene)
            clock = client.subscribe("/clock", "rosgraph_msgs/msg/Clock")
            print(clock.recv(timeout=2.0))
    """

    def __init__(self, server: Optional[str] = None, name: Optional[str] = None, timeout: float = 5.0,
                 server_key: Optional[str] = None, key: Optional[str] = None):
        self.server = server or os.environ.get("SIM_SERVER") or DEFAULT_SERVER
        #: The CURVE keys every socket uses (None: plaintext).
        self.curve: Optional[CurveKeys] = load_curve_keys(server_key, key)
        self.name = name or f"py_{os.getpid()}"
        self.timeout = float(timeout)
        #: Seconds between graph announcements (the hub forgets a node after three missed ones).
        self.heartbeat_s = 1.0
        self._context = zmq.Context()
        self._lock = threading.RLock()          # endpoints, response types, publishers, subscriptions
        self._call_lock = threading.Lock()      # the service DEALER
        self._pub_lock = threading.Lock()       # the shared PUB socket
        self._service_socket: Optional[zmq.Socket] = None
        self._pub_socket: Optional[zmq.Socket] = None
        self._endpoints: Optional[Tuple[str, str]] = None
        self._response_types: Dict[str, Type[Message]] = dict(_BUILTIN_RESPONSES)
        self._subscriptions: List[Subscription] = []
        self._publishers: List[Publisher] = []
        self._graph_thread: Optional[threading.Thread] = None
        self._graph_wake = threading.Event()
        self._closing = threading.Event()
        self._closed = False

    # -- services ---------------------------------------------------------------------------------
    def call(self, service: str, request: Union[Message, bytes, None] = None,
             response_type: Optional[MessageClass] = None, timeout: Optional[float] = None):
        """Calls a service and returns its decoded response.

        ``request`` is a protobuf message (or raw bytes, sent as they are; None sends an empty payload).
        ``response_type`` (a class or type name) defaults to the service's registered response type,
        looked up in ``/graph/list``; ``response_type=bytes`` returns the payload undecoded (for callers
        that parse it themselves). Raises :class:`ServiceError` on an ``error`` reply,
        ``TimeoutError`` when no reply comes within ``timeout`` seconds (default: the client's), and
        :class:`ProtocolError` on a reply that breaks the protocol.
        """
        if isinstance(request, Message):
            payload = request.SerializeToString()
        elif request is None:
            payload = b""
        elif isinstance(request, (bytes, bytearray, memoryview)):
            payload = bytes(request)
        else:
            raise TypeError(f"request must be a protobuf message or bytes, not {type(request).__name__}")
        status, body = self._call_raw(service, payload, timeout)
        if status == _STATUS_OK:
            if response_type is bytes:
                return body
            cls = (_as_message_class(response_type) if response_type is not None
                   else self._response_type(service, timeout))
            try:
                return cls.FromString(body)
            except DecodeError as exc:
                raise ProtocolError(f"{service}: reply does not decode as {type_name(cls)}: {exc}") from None
        if status == _STATUS_ERROR:
            try:
                error = _robosim_msg.Error.FromString(body)
            except DecodeError as exc:
                raise ProtocolError(f"{service}: error reply does not decode as robosim.Error: {exc}") from None
            raise ServiceError(_error_code_name(error.code), error.message, service)
        raise ProtocolError(f"{service}: unknown reply status {status!r}")

    def describe(self, timeout: Optional[float] = None) -> _robosim_srv.DescribeResponse:
        """``/sim/describe``: scene, envs, spaces, topics, services and the data endpoints."""
        response = self.call("/sim/describe", _robosim_srv.DescribeRequest(),
                             _robosim_srv.DescribeResponse, timeout)
        if not response.subscribe_endpoint or not response.publish_endpoint:
            raise ProtocolError("/sim/describe returned no subscribe/publish endpoint")
        endpoints = (self._reachable(response.subscribe_endpoint), self._reachable(response.publish_endpoint))
        with self._lock:
            self._endpoints = endpoints
        return response

    def graph(self, timeout: Optional[float] = None) -> _robosim_srv.GraphListResponse:
        """``/graph/list``: nodes, topics with their statistics, and services with their types."""
        response = self.call("/graph/list", _robosim_srv.GraphListRequest(),
                             _robosim_srv.GraphListResponse, timeout)
        found: Dict[str, Type[Message]] = {}
        for info in response.services:
            try:
                found[info.name] = message_class(info.response_type)
            except (ValueError, KeyError):
                continue  # a type this client does not know; call() then needs response_type
        with self._lock:
            self._response_types.update(found)
        return response

    def announce(self, timeout: Optional[float] = None) -> None:
        """Announces this node now (a synchronous ``/graph/announce``) and keeps announcing it every
        :attr:`heartbeat_s` seconds until :meth:`close`."""
        self.call("/graph/announce", self._node_info(leaving=False), _robosim_srv.Empty, timeout)
        self._start_heartbeat()

    def renew_lease(self, lease: str, ttl_s: Optional[float] = None,
                    timeout: Optional[float] = None) -> _robosim_srv.LeaseResponse:
        """Keeps a lease alive without stepping (``/sim/lease`` with ``lease`` set).

        A lease expires when its envs have not been stepped, reset or renewed for its ``ttl_s``; a
        trainer that pauses longer (evaluation, checkpointing) calls this every so often. ``ttl_s``
        (seconds, > 0) also replaces the lease's time-to-live; None keeps it. Returns the
        ``LeaseResponse`` with the same lease and its env ids. Raises :class:`ServiceError` with code
        ``NOT_FOUND`` when the lease expired, was released, or never existed.
        """
        if not isinstance(lease, str) or not lease:
            raise ValueError(f"lease must be a non-empty lease id (str), got {lease!r}")
        request = _robosim_srv.LeaseRequest(lease=lease)
        if ttl_s is not None:
            ttl = float(ttl_s)
            if not (math.isfinite(ttl) and ttl > 0):
                raise ValueError(f"ttl_s must be a finite number of seconds > 0, or None, got {ttl_s!r}")
            request.ttl_s = ttl
        return self.call("/sim/lease", request, _robosim_srv.LeaseResponse, timeout)

    # -- topics -----------------------------------------------------------------------------------
    def subscribe(self, topic: str, msg_class: MessageClass, qos: Union[str, int] = "sensor",
                  depth: Optional[int] = None) -> Subscription:
        """Subscribes to ``topic`` carrying ``msg_class`` (a generated class or a ROS type name).

        ``qos`` is ``"sensor"`` (keep the newest ``depth`` messages, default 1) or ``"reliable"``
        (queue up to ``depth``, default 1000, then drop new ones). Raises ``ValueError`` for an invalid
        topic name. See :meth:`Subscription.wait_connected` about ZeroMQ's slow joiner.
        """
        validate_topic_name(topic)
        cls = _as_message_class(msg_class)
        qos = _normalize_qos(qos)
        if depth is None:
            depth = SENSOR_DEPTH if qos == "sensor" else RELIABLE_DEPTH
        if int(depth) < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._check_open()
        subscription = Subscription(self, topic, cls, qos, int(depth), self._data_endpoints()[0])
        with self._lock:
            if self._closed:
                subscription._shutdown()
                raise ClosedError("client is closed")
            self._subscriptions.append(subscription)
        self._node_changed()
        return subscription

    def publisher(self, topic: str, msg_class: MessageClass, qos: Union[str, int] = "reliable") -> Publisher:
        """A :class:`Publisher` for ``topic`` carrying ``msg_class`` (a generated class or a ROS type name).

        All publishers of a client share one PUB socket, connected to the server's XSUB.
        Raises ``ValueError`` for an invalid topic name.
        """
        validate_topic_name(topic)
        cls = _as_message_class(msg_class)
        qos = _normalize_qos(qos)
        self._check_open()
        with self._pub_lock:
            self._publish_socket()  # connect now, so the connection is up by the first publish
        publisher = Publisher(self, topic, cls, qos)
        with self._lock:
            self._publishers.append(publisher)
        self._node_changed()
        return publisher

    @property
    def subscriptions(self) -> List[Subscription]:
        """The open subscriptions."""
        with self._lock:
            return list(self._subscriptions)

    @property
    def publishers(self) -> List[Publisher]:
        """The open publishers."""
        with self._lock:
            return list(self._publishers)

    # -- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        """Closes every subscription, announces ``leaving`` (if this node was announced), stops the
        background threads and closes the sockets. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            subscriptions = list(self._subscriptions)
            self._subscriptions.clear()
            self._publishers.clear()
            graph_thread = self._graph_thread
        for subscription in subscriptions:
            subscription._stop.set()
        for subscription in subscriptions:
            subscription._shutdown()
        self._closing.set()
        self._graph_wake.set()
        threads_done = True
        if graph_thread is not None:
            graph_thread.join(5.0)
            threads_done = not graph_thread.is_alive()
        threads_done = threads_done and not any(s._thread.is_alive() for s in subscriptions)
        with self._call_lock:
            self._drop_service_socket()
        with self._pub_lock:
            if self._pub_socket is not None:
                self._pub_socket.close(linger=200)
                self._pub_socket = None
        if threads_done:
            self._context.term()
        else:  # pragma: no cover - a thread is stuck; do not wait for it forever
            self._context.destroy(linger=0)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.server!r}, name={self.name!r})"

    # -- internals --------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("client is closed")

    def _call_raw(self, service: str, payload: bytes, timeout: Optional[float]) -> Tuple[bytes, bytes]:
        """Sends one call and waits for the reply carrying its request id; returns (status, payload)."""
        timeout = self.timeout if timeout is None else float(timeout)
        request_id = os.urandom(8)
        with self._call_lock:
            self._check_open()
            sock = self._service()
            try:
                sock.send_multipart([b"", service.encode(), payload, request_id], zmq.NOBLOCK)
            except zmq.Again:
                self._drop_service_socket()
                raise TimeoutError(f"{service}: cannot send to {self.server} (send queue full)") from None
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sock.poll(max(1, math.ceil(remaining * 1000)), zmq.POLLIN):
                    # A late reply must not be mistaken for the next call's: start over with a new socket.
                    self._drop_service_socket()
                    raise TimeoutError(f"{service}: no reply from {self.server} within {timeout:g} s")
                frames = sock.recv_multipart()
                if len(frames) == 4 and frames[0] == b"" and frames[3] == request_id:
                    return frames[1], frames[2]
                # Anything else is a stale reply to an earlier call (or garbage): ignore it.

    def _socket(self, kind: int) -> zmq.Socket:
        """A new socket of this client's context, a CURVE client when the client has keys."""
        sock = self._context.socket(kind)
        if self.curve is not None:
            self.curve.apply(sock)
        return sock

    def _service(self) -> zmq.Socket:
        if self._service_socket is None:
            sock = self._socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.server)
            self._service_socket = sock
        return self._service_socket

    def _drop_service_socket(self) -> None:
        if self._service_socket is not None:
            self._service_socket.close(linger=0)
            self._service_socket = None

    def _response_type(self, service: str, timeout: Optional[float]) -> Type[Message]:
        with self._lock:
            cls = self._response_types.get(service)
        if cls is None:
            self.graph(timeout)
            with self._lock:
                cls = self._response_types.get(service)
        if cls is None:
            raise ProtocolError(f"{service}: response type unknown (not in /graph/list); pass response_type")
        return cls

    def _data_endpoints(self) -> Tuple[str, str]:
        with self._lock:
            endpoints = self._endpoints
        if endpoints is None:
            self.describe()
            with self._lock:
                endpoints = self._endpoints
        assert endpoints is not None
        return endpoints

    def _reachable(self, endpoint: str) -> str:
        """Replaces a wildcard bind host (``tcp://*:7701``, ``tcp://0.0.0.0:7701``) by the server's host."""
        match = re.fullmatch(r"tcp://(\*|0\.0\.0\.0|\[::\]|::|\[\*\]):(\d+)", endpoint)
        server = re.fullmatch(r"tcp://(.+):(\d+)", self.server)
        if match and server:
            return f"tcp://{server.group(1)}:{match.group(2)}"
        return endpoint

    def _publish_socket(self) -> zmq.Socket:
        """The shared PUB socket (caller holds ``_pub_lock``)."""
        if self._pub_socket is None:
            endpoint = self._data_endpoints()[1]
            sock = self._socket(zmq.PUB)
            sock.setsockopt(zmq.SNDHWM, _PUB_HWM)
            sock.setsockopt(zmq.LINGER, 200)
            sock.connect(endpoint)
            self._pub_socket = sock
        return self._pub_socket

    def _send_topic(self, frames: List[bytes]) -> bool:
        with self._pub_lock:
            self._check_open()
            try:
                self._publish_socket().send_multipart(frames, zmq.NOBLOCK)
                return True
            except zmq.Again:
                return False

    def _forget(self, endpoint: Union[Subscription, Publisher]) -> None:
        with self._lock:
            for items in (self._subscriptions, self._publishers):
                if endpoint in items:
                    items.remove(endpoint)
                    break
            else:
                return
        self._node_changed()

    # -- graph announcements ----------------------------------------------------------------------
    def _node_info(self, leaving: bool) -> _robosim_msg.NodeInfo:
        info = _robosim_msg.NodeInfo(name=self.name, pid=os.getpid(), host=_socket.gethostname(),
                                     heartbeat_s=self.heartbeat_s, leaving=leaving)
        with self._lock:
            publishers = list(self._publishers)
            subscriptions = list(self._subscriptions)
        for p in publishers:
            info.publishers.add(topic=p.topic, type=p.type_name, qos=_wire_qos(p.qos),
                                messages=p.published, dropped=p.dropped)
        for s in subscriptions:
            info.subscriptions.add(topic=s.topic, type=s.type_name, qos=_wire_qos(s.qos),
                                   messages=s.received, dropped=s.dropped)
        return info

    def _node_changed(self) -> None:
        """Announces the node's new publishers/subscriptions soon (and starts the heartbeat)."""
        self._start_heartbeat()
        self._graph_wake.set()

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._graph_thread is None and not self._closed:
                self._graph_thread = threading.Thread(target=self._heartbeat_loop,
                                                      name=f"robosim-graph:{self.name}", daemon=True)
                self._graph_thread.start()

    def _heartbeat_loop(self) -> None:
        """Fire-and-forget ``/graph/announce`` on a dedicated DEALER, on change and every heartbeat."""
        sock = self._socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 200)
        sock.setsockopt(zmq.SNDHWM, 16)
        sock.connect(self.server)
        try:
            while True:
                self._graph_wake.clear()  # before reading the state, so that no change is missed
                leaving = self._closing.is_set()
                payload = self._node_info(leaving).SerializeToString()
                try:
                    sock.send_multipart([b"", b"/graph/announce", payload], zmq.NOBLOCK)
                except zmq.Again:
                    pass  # server unreachable for now; the next heartbeat tries again
                if leaving:
                    return
                self._graph_wake.wait(self.heartbeat_s)
                while sock.poll(0, zmq.POLLIN):
                    sock.recv_multipart()  # replies are ignored
        finally:
            sock.close(linger=200)
