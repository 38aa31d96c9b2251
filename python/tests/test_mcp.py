"""sim-mcp, the simulator as MCP tools: the Python `mcp` SDK is the independent client. Over stdio it
lists the tools (names, schemas, annotations), reads a camera frame (a PNG that PIL decodes, of the
size /sim/describe gives, not blank), moves the tbar_push arm to a reachable target (checked on the
pose topic with RoboSim's own Python client) and gets a tool error with the server's reason for an
unreachable one; bad input is a tool error, never a crash. Over streamable HTTP it lists the tools,
and every socket sim-mcp listens on is on 127.0.0.1 (over stdio it listens on none).

The binaries come from ``$ROBOSIM_BIN_DIR`` (default ``.build/debug``), as in test_server.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import math
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

try:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError
except ImportError:  # pragma: no cover - CI installs it (python/requirements-dev.txt)
    if os.environ.get("ROBOSIM_REQUIRE_SERVER") == "1":
        raise
    pytest.skip("the mcp package is not installed (pip install mcp)", allow_module_level=True)

import robosim
from robosim.msgs.geometry_msgs import msg_pb2 as geometry_msgs

TOOLS = {
    # name: (readOnlyHint, destructiveHint, idempotentHint)
    "describe_server": (True, False, True),
    "list_graph": (True, False, True),
    "read_topic": (True, False, True),
    "get_camera_frame": (True, False, True),
    "lease_envs": (False, False, False),
    "release_envs": (False, False, True),
    "reset_envs": (False, True, False),
    "step_envs": (False, False, False),
    "move_end_effector": (False, False, False),
    "send_velocity": (False, False, False),
    "propose_tbar_strategy": (True, False, True),
    "get_parameters": (True, False, True),
    "set_parameters": (False, True, True),
}


@pytest.fixture(scope="module")
def bins():
    import test_server

    if not (test_server.BIN_DIR / "sim-mcp").exists():
        reason = f"sim-mcp not built in {test_server.BIN_DIR}"
        if os.environ.get("ROBOSIM_REQUIRE_SERVER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return test_server


@pytest.fixture(scope="module")
def server(bins, tmp_path_factory):
    with bins.run_server(tmp_path_factory, "Scenes/tbar_push", "--mode", "lockstep", "--envs", "2", "--log-level", "warning") as s:
        yield s


@pytest.fixture
def errlog(tmp_path):
    with open(tmp_path / "sim-mcp.stderr", "w+") as f:
        yield f


def stdio_session(bins, server, errlog, body):
    """Runs ``body(session)`` in an MCP session with a sim-mcp subprocess over stdio."""

    async def run():
        params = StdioServerParameters(command=str(bins.BIN_DIR / "sim-mcp"), args=["--server", server.address], cwd=str(bins.REPO))
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "sim-mcp"
                return await body(session)

    return asyncio.run(asyncio.wait_for(run(), 60))


def text_of(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def json_of(result):
    assert not result.is_error, text_of(result)
    return json.loads(text_of(result))


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
            if m:
                inodes.add(m.group(1))
    found = []
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:
                continue
            host, port = local.split(":")
            raw = bytes.fromhex(host)
            if size == 4:
                address = ".".join(str(b) for b in raw[::-1])
            else:  # four little-endian 32-bit words
                words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
                address = ":".join(b"".join(words)[i:i + 2].hex() for i in range(0, 16, 2))
            found.append((address, int(port, 16)))
    return found


def test_tools_are_listed_with_schemas_and_annotations(bins, server, errlog):
    async def body(session):
        return (await session.list_tools()).tools

    tools = stdio_session(bins, server, errlog, body)
    assert {t.name for t in tools} == set(TOOLS)
    for tool in tools:
        schema = tool.input_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False, tool.name
        assert tool.description, tool.name
        hints = (tool.annotations.read_only_hint, tool.annotations.destructive_hint, tool.annotations.idempotent_hint)
        assert hints == TOOLS[tool.name], tool.name
        assert tool.annotations.open_world_hint is False
    move = next(t for t in tools if t.name == "move_end_effector").input_schema
    assert move["required"] == ["target"]
    assert move["properties"]["target"]["minItems"] == move["properties"]["target"]["maxItems"] == 3


def test_camera_frame_is_a_png_of_the_cameras_size(bins, server, errlog):
    from PIL import Image

    with robosim.Client(server.address) as client:
        cameras = {c.name: (c.width, c.height) for c in client.describe().cameras}
    assert "overhead" in cameras

    async def body(session):
        described = json_of(await session.call_tool("describe_server", {}))
        frames = {}
        for camera in ("overhead", "wrist"):
            frames[camera] = await session.call_tool("get_camera_frame", {"env": 1, "camera": camera})
        return described, frames

    described, frames = stdio_session(bins, server, errlog, body)
    assert described["scene"] == "tbar_push" and described["mode"] == "lockstep" and described["env_count"] == 2
    for camera, result in frames.items():
        assert not result.is_error, text_of(result)
        images = [c for c in result.content if c.type == "image"]
        assert len(images) == 1 and images[0].mime_type == "image/png"
        png = base64.b64decode(images[0].data)
        Image.open(io.BytesIO(png)).verify()  # chunk CRCs, structure
        image = Image.open(io.BytesIO(png))
        image.load()  # inflates the zlib stream (Adler-32 checked)
        assert image.size == cameras[camera], camera
        assert image.mode == "RGB"
        colours = image.getcolors(maxcolors=image.width * image.height)
        assert len(colours) > 20, f"{camera}: {len(colours)} colours: blank?"
        info = json.loads(text_of(result))
        assert (info["width"], info["height"], info["camera"], info["env"]) == (*cameras[camera], camera, 1)


def test_arm_moves_to_a_reachable_target_and_an_unreachable_one_is_a_tool_error(bins, server, errlog):
    target = [0.1, -0.05, 0.86]
    with robosim.Client(server.address, name="py_pose_watch") as client:
        poses = client.subscribe("/env_0/robot/pose", geometry_msgs.PoseStamped, qos="reliable")
        assert poses.wait_connected(10)

        async def body(session):
            out = {}
            out["lease"] = json_of(await session.call_tool("lease_envs", {"env_ids": [0], "ttl_s": 60}))
            out["reset"] = json_of(await session.call_tool("reset_envs", {"seed": 7}))
            out["plan"] = json_of(await session.call_tool("propose_tbar_strategy", {"env": 0}))
            actions = json_of(await session.call_tool("describe_server", {}))["task"]["actions"]
            out["step"] = json_of(await session.call_tool("step_envs", {"actions": [[0.0] * len(actions)], "steps": 5}))
            out["move"] = json_of(await session.call_tool("move_end_effector", {"env": 0, "target": target}))
            out["far"] = await session.call_tool("move_end_effector", {"env": 0, "target": [5.0, 0.0, 0.86]})
            out["release"] = json_of(await session.call_tool("release_envs", {}))
            return out

        out = stdio_session(bins, server, errlog, body)
        # The last pose the server published, as RoboSim's client received it.
        last = None
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                last = poses.recv(timeout=0.2)
            except TimeoutError:
                if last is not None:
                    break
    assert out["lease"]["env_ids"] == [0]
    assert "tool_x" in out["reset"]["envs"][0]["observation"]
    step = out["step"]
    assert step["steps"] == 5 and step["envs"][0]["env"] == 0 and "tbar_x" in step["envs"][0]["observation"]
    plan = out["plan"]["plan"]
    assert plan["waypoints"] and all(len(w) == 3 for w in plan["waypoints"]) and plan["push_side"]

    move = out["move"]
    assert move["arrived"] is True and move["distance_m"] <= 0.01, move
    assert last is not None, "no pose on /env_0/robot/pose"
    p = last.pose.position
    assert math.dist((p.x, p.y, p.z), target) <= 0.015, (p, target)

    far = out["far"]
    assert far.is_error
    reason = text_of(far)
    assert "refused" in reason and "workspace" in reason, reason  # the safety layer's own words
    assert out["release"]["released"] == [0]
    # The lease is gone on the server: another client may lease env 0 now.
    with robosim.Client(server.address) as client:
        from robosim.msgs.robosim import srv_pb2

        lease = client.call("/sim/lease", srv_pb2.LeaseRequest(env_ids=[0], client_name="py_after"), srv_pb2.LeaseResponse)
        assert list(lease.env_ids) == [0]
        client.call("/sim/release", srv_pb2.ReleaseRequest(lease=lease.lease), srv_pb2.Empty)


def test_bad_input_is_a_tool_error_and_the_server_goes_on(bins, server, errlog):
    calls = [
        ("move_end_effector", {"target": [1.0, 2.0]}, "'target' has 2 items"),
        ("move_end_effector", {"env": 10**9, "target": [0, 0, 1]}, "outside"),
        ("move_end_effector", {"env": 1, "target": [0.1, 0, 0.9], "tolerance_m": 5}, "outside"),
        ("get_camera_frame", {"env": 5}, "env 5 does not exist"),
        ("get_camera_frame", {"camera": "nope"}, "no camera 'nope'"),
        ("read_topic", {"topic": "not a topic"}, "invalid name"),
        ("read_topic", {"topic": "/env_0/joint_states", "timeout_s": 1e9}, "outside"),
        ("step_envs", {"actions": [[0.0]]}, "lease_envs"),
        ("lease_envs", {"env_ids": [0, 0]}, "twice"),
        ("set_parameters", {"parameters": {"no_such_parameter": 1}}, "NOT_FOUND"),
        ("set_parameters", {"parameters": {"rate.tf": -5}}, "INVALID_ARGUMENT"),
        ("describe_server", {"unexpected": 1}, "unknown argument 'unexpected'"),
        ("send_velocity", {"linear": [0.1, 0, 0], "duration_s": 0.1}, "cmd_vel"),
    ]

    async def body(session):
        results = [await session.call_tool(name, args) for name, args, _ in calls]
        with pytest.raises(MCPError):
            await session.call_tool("no_such_tool", {})
        # Still answering, with real values.
        params = json_of(await session.call_tool("get_parameters", {"names": ["rate.tf"]}))
        return results, params

    results, params = stdio_session(bins, server, errlog, body)
    for (name, args, expected), result in zip(calls, results):
        assert result.is_error, (name, args, text_of(result))
        assert expected in text_of(result), (name, args, text_of(result))
    assert params["parameters"][0]["name"] == "rate.tf"


def test_stdio_listens_on_nothing_and_http_only_on_loopback(bins, server, errlog):
    # Over stdio: no listening socket at all.
    async def body(session):
        json_of(await session.call_tool("describe_server", {}))
        pids = []
        for p in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                argv = (p / "cmdline").read_bytes().split(b"\0") if p.name.isdigit() else [b""]
                if argv[0].endswith(b"sim-mcp") and server.address.encode() in argv:
                    pids.append(int(p.name))
        assert pids, "no sim-mcp process found"
        return [s for pid in pids for s in listening_sockets(pid)]

    assert stdio_session(bins, server, errlog, body) == []

    # Over streamable HTTP, on any free port: only 127.0.0.1.
    process = subprocess.Popen([str(bins.BIN_DIR / "sim-mcp"), "--server", server.address, "--http", "0"],
                               stdout=subprocess.PIPE, stderr=errlog, text=True)
    try:
        line = process.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/mcp", line)
        assert m, line
        port = int(m.group(1))
        sockets = listening_sockets(process.pid)
        assert sockets and all(address == "127.0.0.1" for address, _ in sockets), sockets
        assert (("127.0.0.1", port)) in sockets

        async def over_http():
            async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await session.initialize()
                    tools = (await session.list_tools()).tools
                    frame = await session.call_tool("get_camera_frame", {"env": 0})
                    return tools, frame

        tools, frame = asyncio.run(asyncio.wait_for(over_http(), 30))
        assert {t.name for t in tools} == set(TOOLS)
        assert not frame.is_error and [c.type for c in frame.content] == ["image", "text"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("sim-mcp --http did not stop within 10 s of SIGINT")
    assert code == 0


def test_http_beyond_loopback_needs_insecure(bins, server, tmp_path):
    """The HTTP endpoint has no authentication: as sim-server's --viewer-host, --host beyond loopback is
    refused with one line unless --insecure, which serves it with a warning."""
    mcp = str(bins.BIN_DIR / "sim-mcp")
    for host in ("0.0.0.0", "::", "127.0.0.1.example"):
        out = subprocess.run([mcp, "--server", server.address, "--http", "0", "--host", host], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode != 0 and out.stdout == ""
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and f"--host {host}" in lines[0] and "--insecure" in lines[0], out.stderr
    # With --insecure it goes ahead and warns. 192.0.2.1 (TEST-NET-1) is no interface of this host: the bind
    # fails (or, where the kernel binds addresses it does not have, is unreachable), so nothing here ever
    # listens beyond loopback; the process is stopped once the warning is out.
    log = tmp_path / "insecure.stderr"
    with open(log, "w") as errors:
        process = subprocess.Popen([mcp, "--server", server.address, "--http", "0", "--host", "192.0.2.1", "--insecure"],
                                   stdout=subprocess.DEVNULL, stderr=errors)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None and "beyond loopback" not in log.read_text():
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    warnings = [line for line in log.read_text().splitlines() if "serving MCP beyond loopback without authentication" in line]
    assert len(warnings) == 1 and "--insecure" in warnings[0], log.read_text()
