"""Client framing, timeouts, QoS and graph announcements against a pure-pyzmq fake hub."""

import time

import pytest

import robosim
from robosim.msgs.std_msgs import msg_pb2 as std_msgs

from fake_server import FakeServer


@pytest.fixture
def fake():
    with FakeServer(slow_s=0.6) as server:
        yield server


@pytest.fixture
def client(fake):
    with robosim.Client(fake.address, name="py_fake_test", timeout=2.0) as c:
        yield c


def publish_until(publisher, message, subscription, timeout=5.0):
    """Publishes `message` every 10 ms until the subscription has something queued (slow joiner)."""
    deadline = time.monotonic() + timeout
    while subscription.pending == 0:
        assert time.monotonic() < deadline, "nothing arrived"
        publisher.publish(message)
        time.sleep(0.01)


def test_call_framing(fake, client):
    reply = client.call("/test/echo", std_msgs.String(data="ping"), std_msgs.String)
    assert reply == std_msgs.String(data="ping")
    frames = fake.recorded_calls()[-1]
    assert len(frames) == 4
    assert frames[0] == b""
    assert frames[1] == b"/test/echo"
    assert std_msgs.String.FromString(frames[2]).data == "ping"
    assert len(frames[3]) == 8
    # Request ids differ between calls.
    client.call("/test/echo", std_msgs.String(data="again"), std_msgs.String)
    assert fake.recorded_calls()[-1][3] != frames[3]


def test_response_type_from_graph_list(client):
    reply = client.call("/test/echo", std_msgs.String(data="typed"))
    assert isinstance(reply, std_msgs.String) and reply.data == "typed"


def test_error_reply_raises_service_error(client):
    with pytest.raises(robosim.ServiceError) as info:
        client.call("/no/such_service", b"")
    assert info.value.code == "NOT_FOUND"
    assert info.value.service == "/no/such_service"
    assert "/no/such_service" in info.value.message


def test_stale_reply_with_wrong_id_is_ignored(client):
    reply = client.call("/test/stale_first", std_msgs.String(data="fresh"), std_msgs.String)
    assert reply.data == "fresh"


def test_timeout_then_next_call_gets_its_own_reply(fake, client):
    with pytest.raises(TimeoutError):
        client.call("/test/slow", std_msgs.String(data="late"), std_msgs.String, timeout=0.2)
    time.sleep(0.8)  # the late reply has been sent by now; it must not be taken for the next call's
    reply = client.call("/test/echo", std_msgs.String(data="next"), std_msgs.String)
    assert reply.data == "next"


def test_timeout_when_nobody_listens():
    with robosim.Client("tcp://127.0.0.1:9", timeout=0.2) as c:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            c.describe()
        assert time.monotonic() - start < 2.0


def test_server_defaults_to_env(monkeypatch):
    monkeypatch.setenv("SIM_SERVER", "tcp://127.0.0.1:7999")
    with robosim.Client() as c:
        assert c.server == "tcp://127.0.0.1:7999"
    monkeypatch.delenv("SIM_SERVER")
    with robosim.Client() as c:
        assert c.server == robosim.DEFAULT_SERVER
        assert c.name.startswith("py_")


def test_wildcard_endpoint_resolved(fake, client):
    client.describe()
    sub = client.subscribe("/chatter", std_msgs.String)
    assert sub.endpoint == f"tcp://127.0.0.1:{fake.xpub_port}"


def test_pub_sub_exact_topic_and_type(client):
    sub = client.subscribe("/chatter", std_msgs.String, qos="reliable")
    assert sub.wait_connected(5.0)
    pub = client.publisher("/chatter", std_msgs.String)
    assert pub.wait_matching(5.0)
    publish_until(pub, std_msgs.String(data="hello"), sub)
    assert sub.recv(timeout=1.0).data == "hello"
    assert sub.received == 1


def test_prefix_wrong_type_and_garbage_are_dropped(fake, client):
    import zmq

    sub = client.subscribe("/env_1", std_msgs.String, qos="reliable")
    assert sub.wait_connected(5.0)
    raw = client._context.socket(zmq.PUB)
    raw.connect(f"tcp://127.0.0.1:{fake.xsub_port}")
    try:
        good = std_msgs.String(data="ok").SerializeToString()
        deadline = time.monotonic() + 5.0
        while sub.pending == 0:  # slow joiner of the raw PUB
            assert time.monotonic() < deadline
            raw.send_multipart([b"/env_1", b"std_msgs/msg/String", good])
            time.sleep(0.01)
        while sub.pending:
            sub.recv(timeout=0)
        dropped_before = sub.dropped
        raw.send_multipart([b"/env_10/x", b"std_msgs/msg/String", good])        # prefix match only
        raw.send_multipart([b"/env_1", b"std_msgs/msg/Header", good])           # wrong type
        raw.send_multipart([b"/env_1", b"std_msgs/msg/String", b"\xff\xff\xff"])  # does not decode
        raw.send_multipart([b"/env_1", b"std_msgs/msg/String"])                 # two frames
        raw.send_multipart([b"/env_1", b"std_msgs/msg/String", std_msgs.String(data="last").SerializeToString()])
        assert sub.recv(timeout=2.0).data == "last"
        assert sub.dropped - dropped_before == 4
    finally:
        raw.close(linger=0)


def test_sensor_qos_keeps_newest(client):
    sub = client.subscribe("/burst", std_msgs.String, qos="sensor", depth=3)
    assert sub.wait_connected(5.0)
    pub = client.publisher("/burst", std_msgs.String)
    publish_until(pub, std_msgs.String(data="warmup"), sub)
    while sub.pending:
        sub.recv(timeout=0)
    base_received, base_dropped = sub.received, sub.dropped
    for i in range(500):
        pub.publish(std_msgs.String(data=str(i)))
    _wait_quiet(sub)
    got = _drain(sub)
    assert 1 <= len(got) <= 3
    assert got[-1] == "499"
    assert got == [str(i) for i in range(500 - len(got), 500)]
    assert sub.dropped - base_dropped == 500 - len(got)
    assert sub.received - base_received == len(got)


def test_reliable_qos_drops_new_when_full(client):
    sub = client.subscribe("/queue", std_msgs.String, qos="reliable", depth=10)
    assert sub.wait_connected(5.0)
    pub = client.publisher("/queue", std_msgs.String)
    publish_until(pub, std_msgs.String(data="warmup"), sub)
    while sub.pending:
        sub.recv(timeout=0)
    base_dropped = sub.dropped
    for i in range(100):
        pub.publish(std_msgs.String(data=str(i)))
    _wait_quiet(sub)
    got = _drain(sub)
    assert got == [str(i) for i in range(10)]  # the oldest ten were kept
    assert sub.dropped - base_dropped == 90


def test_announcements_heartbeat_and_leaving(fake):
    client = robosim.Client(fake.address, name="py_graph_test", timeout=2.0)
    client.heartbeat_s = 0.2
    client.announce()
    sub = client.subscribe("/seen", std_msgs.String)
    client.publisher("/said", std_msgs.String)
    time.sleep(0.7)
    client.close()

    def mine_until_leaving():
        nodes = [n for n in fake.announced() if n.name == "py_graph_test"]
        return nodes if nodes and nodes[-1].leaving else None

    deadline = time.monotonic() + 3.0
    while (mine := mine_until_leaving()) is None:  # the fake hub handles it asynchronously
        assert time.monotonic() < deadline, "no leaving announcement"
        time.sleep(0.02)
    assert len(mine) >= 4  # the synchronous one, the change(s), heartbeats, leaving
    assert mine[0].pid > 0 and mine[0].heartbeat_s == pytest.approx(0.2)
    assert any([s.topic for s in n.subscriptions] == ["/seen"] and [p.topic for p in n.publishers] == ["/said"]
               for n in mine)
    assert mine[-1].leaving and not any(n.leaving for n in mine[:-1])
    assert sub.closed
    with pytest.raises(robosim.ClosedError):
        sub.recv(timeout=0)


def test_closed_client_refuses_work(fake):
    client = robosim.Client(fake.address)
    client.close()
    client.close()  # idempotent
    with pytest.raises(robosim.ClosedError):
        client.call("/test/echo", b"")
    with pytest.raises(robosim.ClosedError):
        client.subscribe("/a", std_msgs.String)


def test_wait_matching_times_out_without_subscriber(client):
    pub = client.publisher("/nobody_listens", std_msgs.String)
    start = time.monotonic()
    assert not pub.wait_matching(0.3)
    assert time.monotonic() - start < 2.0


def test_subscribe_and_publisher_validate(client):
    with pytest.raises(ValueError):
        client.subscribe("no_slash", std_msgs.String)
    with pytest.raises(ValueError):
        client.publisher("/a//b", std_msgs.String)
    with pytest.raises(ValueError):
        client.subscribe("/a", std_msgs.String, qos="best_effort")
    with pytest.raises(ValueError):
        client.subscribe("/a", std_msgs.String, depth=0)
    pub = client.publisher("/typed", "std_msgs/msg/String")
    with pytest.raises(TypeError):
        pub.publish(std_msgs.Header())


def _wait_quiet(sub, quiet_s=0.3, timeout=10.0):
    """Waits until the subscription's arrivals (pending + dropped + received) stop changing."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = (sub.pending, sub.dropped, sub.received)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.02)


def _drain(sub):
    got = []
    while True:
        try:
            got.append(sub.recv(timeout=0.05).data)
        except TimeoutError:
            return got
