"""The live viewer: sim-server --viewer and sim-bridge speak the Foxglove WebSocket protocol
(foxglove.websocket.v1) and serve the built-in page. The client here follows the public spec with
the `websockets` package, and decodes messages only with the schemas the bridge advertises
(FileDescriptorSets, read with Python's protobuf), never with RoboSim's generated code.

The binaries come from ``$ROBOSIM_BIN_DIR`` (default ``.build/debug``), as in test_server.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def bins(sim_train):
    import test_server

    return test_server


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def viewer_server(bins, tmp_path_factory, scene="Scenes/object_tracker", envs=4, *extra):
    port = free_port()
    with bins.run_server(tmp_path_factory, scene, "--envs", str(envs), "--viewer", str(port), "--log-level", "warning", *extra) as s:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, s.log_tail()
                time.sleep(0.2)
        s.viewer = port
        yield s


def http(port, path, method="GET"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None,
                                     headers={"X-RoboSim-Viewer": "1"} if method == "POST" else {})
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


class FoxgloveClient:
    """A client that follows the spec: serverInfo, advertise, subscribe, binary message data."""

    def __init__(self, port: int, max_queue: int = 16):
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(f"ws://127.0.0.1:{port}/", subprotocols=["foxglove.websocket.v1"], max_size=64 << 20,
                                                    open_timeout=10, max_queue=max_queue))
        assert self.ws.subprotocol == "foxglove.websocket.v1"
        self.channels: dict[int, dict] = {}
        self.statuses: list[dict] = []
        self.classes: dict[int, type] = {}
        info = json.loads(self.ws.recv(timeout=10))
        assert info["op"] == "serverInfo" and "clientPublish" in info["capabilities"] and info["supportedEncodings"] == ["protobuf"], info
        self.info = info
        while not self.channels:
            self._text(json.loads(self.ws.recv(timeout=10)))

    def _text(self, m: dict):
        if m["op"] == "advertise":
            for c in m["channels"]:
                assert c["encoding"] == "protobuf" and c["schemaEncoding"] == "protobuf"
                self.channels[c["id"]] = c
        elif m["op"] == "unadvertise":
            for i in m["channelIds"]:
                self.channels.pop(i, None)
        elif m["op"] == "status":
            self.statuses.append(m)

    def wait_for(self, topics: set, timeout: float = 20):
        """Reads advertisements until every topic in `topics` has a channel (topics come as the graph shows them)."""
        deadline = time.monotonic() + timeout
        while not topics <= {c["topic"] for c in self.channels.values()}:
            f = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(f, str):
                self._text(json.loads(f))

    def channel(self, topic: str) -> dict:
        return next(c for c in self.channels.values() if c["topic"] == topic)

    def message_class(self, channel: dict):
        """The message class from the advertised schema alone (a fresh descriptor pool per channel)."""
        if channel["id"] not in self.classes:
            fds = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"]))
            pool = descriptor_pool.DescriptorPool()
            for f in fds.file:
                pool.Add(f)
            self.classes[channel["id"]] = message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"]))
        return self.classes[channel["id"]]

    def subscribe(self, sub_id: int, topic: str):
        self.ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": sub_id, "channelId": self.channel(topic)["id"]}]}))

    def receive(self, subs: dict[int, str], count: int, timeout: float = 20) -> dict[int, list]:
        """Decoded messages per subscription id until each has `count`."""
        got: dict[int, list] = {i: [] for i in subs}
        deadline = time.monotonic() + timeout
        while any(len(v) < count for v in got.values()):
            frame = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(frame, str):
                self._text(json.loads(frame))
                continue
            assert frame[0] == 0x01
            sub, stamp = struct.unpack_from("<IQ", frame, 1)
            assert abs(stamp / 1e9 - time.time()) < 60
            if sub in got:
                got[sub].append(self.message_class(self.channel(subs[sub])).FromString(frame[13:]))
        return got


def test_foxglove_client_decodes_camera_pose_and_episode_messages_with_the_advertised_schemas(bins, tmp_path_factory):
    with viewer_server(bins, tmp_path_factory) as s:
        d = http(s.viewer, "/api/describe")
        cam = next(c for c in d["cameras"] if c.get("rgb"))
        # Loopback only: the one socket listening on the viewer's port is bound to 127.0.0.1.
        listening = [line.split()[3] for line in subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout.splitlines()
                     if line.split()[3].endswith(f":{s.viewer}")]
        assert listening == [f"127.0.0.1:{s.viewer}"], listening
        c = FoxgloveClient(s.viewer)
        c.wait_for({f"/env_{k}/{t}" for k in range(4) for t in (f"camera/{cam['name']}/image_raw", "odom", "episode", "tf")} | {"/clock"})
        # Foxglove's names for ROS messages in protobuf, so that its Image and 3D panels take them.
        assert c.channel(f"/env_0/camera/{cam['name']}/image_raw")["schemaName"] == "ros.sensor_msgs.Image"
        assert c.channel("/env_0/tf")["schemaName"] == "ros.tf2_msgs.TFMessage"
        subs = {1: f"/env_2/camera/{cam['name']}/image_raw", 2: "/env_2/odom", 3: "/env_2/tf", 4: "/clock"}
        for i, t in subs.items():
            c.subscribe(i, t)
        got = c.receive(subs, 3)
        image = got[1][-1]
        assert (image.width, image.height, image.encoding) == (cam["width"], cam["height"], "rgb8")
        assert len(image.data) == image.step * image.height and image.step == 3 * image.width
        assert image.header.frame_id and image.header.stamp.sec + image.header.stamp.nanosec > 0
        assert got[2][-1].header.frame_id and got[3][-1].transforms
        clocks = [m.clock.sec + m.clock.nanosec * 1e-9 for m in got[4]]
        assert clocks == sorted(clocks) and clocks[-1] > 0
        # Unsubscribe: no more camera frames after the ones in flight.
        c.ws.send(json.dumps({"op": "unsubscribe", "subscriptionIds": [1, 2, 3, 4]}))
        time.sleep(0.5)
        drained = time.monotonic() + 10
        with contextlib.suppress(TimeoutError):
            while time.monotonic() < drained:
                c.ws.recv(timeout=0.3)
        with pytest.raises(TimeoutError):
            for _ in range(100):
                f = c.ws.recv(timeout=1.0)
                assert isinstance(f, str), "a data message after unsubscribing"
        # Bad requests get error statuses, and the connection goes on.
        c.ws.send("not json")
        c.ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 9, "channelId": 999999}]}))
        c.ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 1, "channelId": -1}]}))
        c.ws.send(json.dumps({"op": "fetchAsset", "uri": "file:///etc/passwd", "requestId": 1}))
        c.ws.send(bytes([0x02, 1, 0, 0, 0]))
        c.ws.send(bytes([0x01, 77, 0, 0, 0, 1, 2, 3]))   # a channel never advertised
        clock = c.channel("/clock")["id"]
        c.ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 20, "channelId": clock}, {"id": 21, "channelId": clock}]}))
        deadline = time.monotonic() + 10
        while len(c.statuses) < 7 and time.monotonic() < deadline:
            f = c.ws.recv(timeout=5)
            if isinstance(f, str):
                c._text(json.loads(f))
        assert len(c.statuses) == 7 and all(m["level"] == 2 for m in c.statuses), c.statuses
        assert "already subscribed to channel" in c.statuses[-1]["message"]
        c.ws.send(json.dumps({"op": "unsubscribe", "subscriptionIds": [20]}))
        c.subscribe(5, "/clock")
        assert len(c.receive({5: "/clock"}, 2)[5]) >= 2
        # A message over 1 MiB closes that connection only.
        c.ws.send("x" * (2 << 20))
        with pytest.raises(ConnectionClosed):
            for _ in range(100_000):
                c.ws.recv(timeout=5)
        c2 = FoxgloveClient(s.viewer)
        assert c2.channels
        # A page elsewhere cannot use the viewer through the user's browser: its WebSocket upgrade
        # and a POST without the viewer's header are refused; Foxglove's web app may connect.
        with pytest.raises(InvalidStatus):
            connect(f"ws://127.0.0.1:{s.viewer}/", subprotocols=["foxglove.websocket.v1"], origin="https://evil.example", open_timeout=10)
        with connect(f"ws://127.0.0.1:{s.viewer}/", subprotocols=["foxglove.websocket.v1"], origin="https://app.foxglove.dev", open_timeout=10) as ok:
            assert json.loads(ok.recv(timeout=10))["op"] == "serverInfo"
        for headers in ({}, {"X-RoboSim-Viewer": "1", "Origin": "https://evil.example"}):
            request = urllib.request.Request(f"http://127.0.0.1:{s.viewer}/api/pause", method="POST", data=b"", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(request, timeout=10)
            assert e.value.code == 403
        rebound = urllib.request.Request(f"http://127.0.0.1:{s.viewer}/api/describe", headers={"Host": f"attacker.example:{s.viewer}"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(rebound, timeout=10)
        assert e.value.code == 403
        with pytest.raises(urllib.error.HTTPError) as e:
            http(s.viewer, "/api/reset?env=999", method="POST")
        assert e.value.code == 400


def test_a_client_publishes_a_command_through_the_safety_layer(bins, tmp_path_factory):
    """clientPublish: a Twist on /env_1/cmd_vel moves that robot (and only it); a payload that is
    not the advertised type is refused with a status."""
    with viewer_server(bins, tmp_path_factory) as s:
        c = FoxgloveClient(s.viewer)
        c.wait_for({"/env_0/odom", "/env_1/odom"})
        twist_schema = c.channel("/env_1/odom")  # a channel whose schema imports geometry_msgs
        fds = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(twist_schema["schema"]))
        pool = descriptor_pool.DescriptorPool()
        for f in fds.file:
            pool.Add(f)
        Twist = message_factory.GetMessageClass(pool.FindMessageTypeByName("ros.geometry_msgs.Twist"))
        c.ws.send(json.dumps({"op": "advertise", "channels": [{"id": 7, "topic": "/env_1/cmd_vel", "encoding": "protobuf", "schemaName": "geometry_msgs.Twist"}]}))
        subs = {1: "/env_1/odom", 2: "/env_0/odom"}
        for i, t in subs.items():
            c.subscribe(i, t)
        start = c.receive(subs, 1)
        command = Twist()
        command.linear.x = 0.2
        moved = lambda a, b: abs(a.pose.pose.position.x - b.pose.pose.position.x) + abs(a.pose.pose.position.y - b.pose.pose.position.y)
        # Command until the robot has moved 5 cm (its odometry says so), for at most 60 s.
        deadline = time.monotonic() + 60
        latest = start
        while moved(start[1][0], latest[1][-1]) <= 0.05:
            assert time.monotonic() < deadline, latest[1][-1].pose
            c.ws.send(b"\x01" + struct.pack("<I", 7) + command.SerializeToString())
            latest = c.receive(subs, 1)
        assert moved(start[2][0], latest[2][-1]) < 0.01
        c.ws.send(b"\x01" + struct.pack("<I", 7) + b"\xff\xff\xff")
        deadline = time.monotonic() + 5
        while not c.statuses and time.monotonic() < deadline:
            f = c.ws.recv(timeout=5)
            if isinstance(f, str):
                c._text(json.loads(f))
        assert c.statuses and "not a geometry_msgs/msg/Twist" in c.statuses[0]["message"]


def test_a_subscriber_that_stops_reading_does_not_slow_the_simulation(bins, tmp_path_factory):
    """At real-time factor 0 (as fast as it can), a viewer subscribed to every camera first reads
    everything, then stops reading: the simulation keeps its pace, and the bridge counts what it
    dropped for that viewer."""
    import threading

    with viewer_server(bins, tmp_path_factory, "Scenes/object_tracker", 4, "--rtf", "0") as s:
        def pace(seconds=3.0):
            c = FoxgloveClient(s.viewer)
            c.wait_for({"/clock"})
            c.subscribe(1, "/clock")
            first = c.receive({1: "/clock"}, 1)[1][0]
            time.sleep(seconds)
            c.ws.send(json.dumps({"op": "unsubscribe", "subscriptionIds": [1]}))
            c.subscribe(2, "/clock")
            last = c.receive({2: "/clock"}, 1, timeout=30)[2][-1]
            c.ws.close()
            t = lambda m: m.clock.sec + m.clock.nanosec * 1e-9
            return (t(last) - t(first)) / seconds

        viewer = FoxgloveClient(s.viewer, max_queue=1)
        rgb = [c["name"] for c in http(s.viewer, "/api/describe")["cameras"] if c.get("rgb")]
        viewer.wait_for({f"/env_{k}/camera/{name}/image_raw" for k in range(4) for name in rgb})
        cams = [ch for ch in viewer.channels.values() if ch["schemaName"] == "ros.sensor_msgs.Image"]
        viewer.ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": i, "channelId": ch["id"]} for i, ch in enumerate(cams)]}))
        reading = threading.Event()
        reading.set()
        frames = [0]

        def read():
            while reading.is_set():
                with contextlib.suppress(TimeoutError):
                    viewer.ws.recv(timeout=0.2)
                    frames[0] += 1

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(1)
        # The faster of two windows each way: a moment of load elsewhere on the machine slows one window, not both.
        read_pace = max(pace(2.0), pace(2.0))
        before = max(cl["dropped"] for cl in http(s.viewer, "/api/stats")["clients"])
        reading.clear()
        reader.join()
        time.sleep(2)   # the socket's buffers fill
        stalled_pace = max(pace(2.0), pace(2.0))
        dropped = max(cl["dropped"] for cl in http(s.viewer, "/api/stats")["clients"]) - before
        assert frames[0] > 50 and stalled_pace > 0.7 * read_pace, (frames[0], read_pace, stalled_pace)
        assert dropped > 0
        print(f"sim seconds per second: {read_pace:.1f} with a viewer reading every camera, {stalled_pace:.1f} once it stopped reading; "
              f"{dropped} frames dropped for it")
