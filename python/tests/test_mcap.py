"""simctl record and simctl play: MCAP files read by Python's `mcap` and `mcap-protobuf-support`
packages (the independent readers), and published back.

- A 30 s tbar_push run recorded with --all: the reader decodes every message with the schemas the
  file embeds (FileDescriptorSets), CRCs checked; the file has a summary and chunk indexes (seekable);
  per topic, the count recorded equals what /graph/list counted the hub forwarding in that time.
- simctl play republishes it: a subscriber gets the recorded payloads byte for byte, at the rate asked.

The binaries come from ``$ROBOSIM_BIN_DIR`` (default ``.build/debug``), as in test_server.py.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

mcap_reader = pytest.importorskip("mcap.reader")
mcap_protobuf = pytest.importorskip("mcap_protobuf.decoder")


@pytest.fixture(scope="module")
def bins(sim_train):
    import test_server

    return test_server


RUN_SECONDS = 30


@pytest.fixture(scope="module")
def recording(bins, tmp_path_factory):
    """A 30 s tbar_push run (2 envs, realtime) recorded with --all, and the hub's counts over it."""
    import robosim

    out = tmp_path_factory.mktemp("mcap") / "run.mcap"
    with bins.run_server(tmp_path_factory, "Scenes/tbar_push", "--envs", "2", "--log-level", "warning") as s, \
            robosim.Client(s.address, name="py_mcap_probe") as c:
        # Paused, nothing is published: the counts before and after bracket exactly the recorded run.
        c.call("/sim/pause")
        time.sleep(1)
        recorder = subprocess.Popen([str(bins.BIN_DIR / "simctl"), "record", "-o", str(out), "--all", "--server", s.address],
                                    cwd=bins.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while True:   # the recorder is subscribed when the hub lists it on every published topic
            graph = c.call("/graph/list")
            published = {p.topic for n in graph.nodes for p in n.publishers}
            subs = {t.name: list(t.subscribers) for t in graph.topics}
            if published and all(any(n.startswith("simctl_record") for n in subs.get(t, [])) for t in published):
                break
            assert recorder.poll() is None and time.monotonic() < deadline, recorder.communicate()
            time.sleep(0.2)
        time.sleep(1)   # ZeroMQ subscriptions reach the hub's XPUB
        before = {t.name: t.messages for t in c.call("/graph/list").topics}
        c.call("/sim/resume")
        time.sleep(RUN_SECONDS)
        c.call("/sim/pause")
        time.sleep(2)   # the last messages reach the recorder
        after = {t.name: t.messages for t in c.call("/graph/list").topics}
        recorder.send_signal(signal.SIGINT)
        stdout, stderr = recorder.communicate(timeout=60)
        assert recorder.returncode == 0, stderr
        counted = {t: after[t] - before.get(t, 0) for t in after if after[t] - before.get(t, 0) > 0}
    return out, counted, stdout


def test_every_message_decodes_with_the_embedded_schemas_and_counts_match_the_hub(recording):
    out, counted, summary = recording
    assert summary.rstrip().endswith(", 0 dropped"), summary
    with open(out, "rb") as f:
        reader = mcap_reader.make_reader(f, decoder_factories=[mcap_protobuf.DecoderFactory()], validate_crcs=True)
        s = reader.get_summary()
        assert s is not None and s.statistics is not None and s.chunk_indexes, "no summary or chunk indexes"
        assert len(s.chunk_indexes) > 1 and all(ci.compression == "" for ci in s.chunk_indexes)
        assert all(sc.encoding == "protobuf" for sc in s.schemas.values())
        assert all(ch.message_encoding == "protobuf" for ch in s.channels.values())
        per_topic: dict[str, int] = {}
        images = 0
        for schema, channel, message, decoded in reader.iter_decoded_messages():
            per_topic[channel.topic] = per_topic.get(channel.topic, 0) + 1
            if schema.name == "ros.sensor_msgs.Image":
                assert decoded.encoding == "rgb8" and len(decoded.data) == decoded.step * decoded.height > 0
                images += 1
            elif schema.name == "ros.rosgraph_msgs.Clock":
                assert decoded.clock.sec >= 0
        assert sum(s.statistics.channel_message_counts.values()) == sum(per_topic.values()) == s.statistics.message_count
    recorded = {t: n for t, n in per_topic.items() if n}
    assert recorded == counted, {t: (recorded.get(t), counted.get(t)) for t in set(recorded) | set(counted) if recorded.get(t) != counted.get(t)}
    # /clock at 100 Hz of sim time and 2 envs x 2 cameras at 10 Hz (the sim may run slower than the
    # wall clock on a loaded machine, so the counts are checked against each other).
    assert recorded["/clock"] >= 5 * RUN_SECONDS and images >= 0.9 * 4 * recorded["/clock"] / 10, (recorded["/clock"], images)
    # Seekable: a time-windowed read uses the index and returns only that window.
    with open(out, "rb") as f:
        reader = mcap_reader.make_reader(f)
        start, end = s.statistics.message_start_time, s.statistics.message_end_time
        middle = (start + end) // 2
        window = [m.log_time for _, _, m in reader.iter_messages(topics=["/clock"], starting_at=middle, ending_before=middle + 1_000_000_000)]
        assert window and all(middle <= t < middle + 1_000_000_000 for t in window) and len(window) < recorded["/clock"] / 10


def test_simctl_play_republishes_the_recording_at_the_rate_asked(bins, recording, tmp_path_factory):
    import robosim
    from robosim.msgs.geometry_msgs import msg_pb2 as geometry

    out, counted, _ = recording
    with open(out, "rb") as f:
        recorded = [(m.log_time, m.data) for _, _, m in mcap_reader.make_reader(f).iter_messages(topics=["/env_0/robot/pose"])]
    span = (recorded[-1][0] - recorded[0][0]) / 1e9
    # A lockstep server publishes nothing by itself: what arrives is what simctl plays.
    with bins.run_server(tmp_path_factory, "Scenes/tbar_push", "--envs", "2", "--mode", "lockstep", "--log-level", "warning") as s, \
            robosim.Client(s.address, name="py_play_probe") as c:
        sub = c.subscribe("/env_0/robot/pose", geometry.PoseStamped, qos="reliable", depth=100_000)
        time.sleep(0.5)
        began = time.monotonic()
        r = subprocess.run([str(bins.BIN_DIR / "simctl"), "play", str(out), "--rate", "4", "--server", s.address, "--topic", "/env_0/robot/pose"],
                           cwd=bins.REPO, capture_output=True, text=True, timeout=120)
        took = time.monotonic() - began
        assert r.returncode == 0, r.stderr
        got = []
        deadline = time.monotonic() + 5
        while len(got) < len(recorded) and time.monotonic() < deadline:
            try:
                got.append(sub.recv(timeout=1))
            except TimeoutError:
                break
    assert len(got) == len(recorded), (len(got), len(recorded), r.stdout)
    assert got == [geometry.PoseStamped.FromString(d) for _, d in recorded]
    # Four times as fast as recorded (plus the second it waits for subscribers).
    assert span / 4 * 0.9 <= took - 1 <= span / 4 + 3, (span, took)
