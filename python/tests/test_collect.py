"""sim-collect end to end: the dataset it writes, read back by independent readers.

pyarrow reads every Parquet file (schemas, values), ffprobe and ffmpeg read every video, and the
values are checked against what the server publishes when the same seed and commands are replayed
on a fresh lockstep server (RoboSim is deterministic). A collector killed with ``kill -9`` leaves a
dataset whose every listed episode is complete, and ``--resume`` appends to it.
Binaries from ``$ROBOSIM_BIN_DIR``, as in ``test_server.py``; ffmpeg/ffprobe from Debian.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import robosim
from robosim import image_to_numpy
from robosim.msgs.robosim import srv_pb2 as robosim_srv

from test_server import BIN_DIR, REPO, run_server

pq = pytest.importorskip("pyarrow.parquet")
SIM_COLLECT = BIN_DIR / "sim-collect"
if not SIM_COLLECT.exists():
    pytest.skip(f"sim-collect not built in {BIN_DIR}", allow_module_level=True)
if shutil.which("ffprobe") is None:
    pytest.skip("ffprobe (Debian's ffmpeg) is not installed", allow_module_level=True)

EPISODE_STEPS = 50  # camera_box: 0.5 s episodes at 100 Hz
CAMERAS = {"top": (160, 120), "side": (128, 96)}


def collect(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([str(SIM_COLLECT), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"sim-collect failed ({r.returncode}):\n{r.stderr[-3000:]}"
    return r


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"][0]


def decode(path: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def read_episodes(root: Path) -> list:
    """Every row of every meta/episodes file, in file order."""
    rows = []
    for path in sorted((root / "meta/episodes").rglob("file-*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def episode_rows(root: Path, info: dict, e: dict):
    """The rows of episode ``e`` (a meta/episodes row) from its packed data file."""
    data = root / info["data_path"].format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
    table = pq.read_table(data)
    index = table.column("index").to_pylist()
    first = index.index(e["dataset_from_index"])
    return table.slice(first, e["length"])


def check_dataset(root: Path, killed: bool = False) -> dict:
    """Every episode meta/ lists is complete: its data rows, its videos (packed: each episode's frames
    where meta/episodes says), the totals, the file caps. Returns info.json. ``killed``: the writer was
    killed, possibly during a pack: then the files of the next file number may be there unlisted
    (--resume removes them), and later episodes wait sealed in staging."""
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    episodes = read_episodes(root)
    assert [e["episode_index"] for e in episodes] == list(range(info["total_episodes"]))
    assert info["splits"] == {"train": f"0:{len(episodes)}"}
    total = 0
    frames_in = {}
    for e in episodes:
        table = episode_rows(root, info, e)
        assert table.num_rows == e["length"] == e["dataset_to_index"] - e["dataset_from_index"]
        assert table.column("episode_index").to_pylist() == [e["episode_index"]] * e["length"]
        assert table.column("index").to_pylist() == list(range(e["dataset_from_index"], e["dataset_to_index"]))
        for key in (k for k, f in info["features"].items() if f["dtype"] == "video"):
            video = root / info["video_path"].format(video_key=key, chunk_index=e[f"videos/{key}/chunk_index"],
                                                     file_index=e[f"videos/{key}/file_index"])
            assert e[f"videos/{key}/to_timestamp"] - e[f"videos/{key}/from_timestamp"] == pytest.approx(e["length"] / info["fps"])
            frames_in.setdefault(video, []).append((e[f"videos/{key}/from_timestamp"], e["length"]))
        total += e["length"]
    assert total == info["total_frames"]
    for video, parts in frames_in.items():
        # The episodes of a packed video follow one another: each starts where the previous ended.
        parts.sort()
        start = 0.0
        for begin, length in parts:
            assert begin == pytest.approx(start, abs=1e-6), (video, parts)
            start += length / info["fps"]
        assert int(ffprobe(video)["nb_read_frames"]) == sum(length for _, length in parts)
        assert video.stat().st_size <= info["video_files_size_in_mb"] * 2**20 or len(parts) == 1
    data_files = sorted(p.relative_to(root).as_posix() for p in (root / "data").rglob("*.parquet"))
    listed = sorted({info["data_path"].format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"]) for e in episodes})
    extra = sorted(set(data_files) - set(listed))
    next_file = max((e["data/chunk_index"] * 1000 + e["data/file_index"] for e in episodes), default=-1) + 1
    assert not extra or (killed and extra == [info["data_path"].format(chunk_index=next_file // 1000, file_index=next_file % 1000)]), \
        f"unlisted data files {extra}"
    assert set(listed) <= set(data_files)
    for path in listed:
        rows = pq.read_metadata(root / path).num_rows
        assert (root / path).stat().st_size <= info["data_files_size_in_mb"] * 2**20 or \
            sum(1 for e in episodes if info["data_path"].format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"]) == path) == 1, path
        assert rows == sum(e["length"] for e in episodes if info["data_path"].format(
            chunk_index=e["data/chunk_index"], file_index=e["data/file_index"]) == path)
    return info


def replay(address: str, seed: int, env: int, env_episode: int, steps: int):
    """Observations and top/side images of (seed, env, episode) on a fresh lockstep server."""
    with robosim.Client(address, timeout=30) as c:
        r = c.call("/sim/reset", robosim_srv.ResetRequest(seed=seed, render=True, cameras=["top", "side"]))
        d = c.describe()
        n, size = d.env_count, d.observation_size
        per_env = 3  # top rgb, top depth, side rgb
        frames = []
        obs = np.array(r.observations).reshape(n, size)
        images = r.images
        episode = 0
        while len(frames) < steps:
            if episode == env_episode:
                frames.append((obs[env].copy(), image_to_numpy(images[env * per_env]), image_to_numpy(images[env * per_env + 2])))
            s = c.call("/sim/step", robosim_srv.StepRequest(actions=[], render=True, cameras=["top", "side"]))
            if env in s.final_env_ids:
                episode += 1
                if episode > env_episode:
                    break
            obs = np.array(s.observations).reshape(n, size)
            images = s.images
        return frames


def test_collect_v3_layout_values_and_video(tmp_path, tmp_path_factory):
    out = tmp_path / "ds"
    with run_server(tmp_path_factory, "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "2",
                    "--render-backend", "osmesa") as srv:
        r = collect("--server", srv.address, "--out", str(out), "--episodes", "3", "--policy", "random", "--seed", "4",
                    "--video-codec", "h264", "--task", "look at the box")
    assert "3 episodes written" in r.stdout
    info = check_dataset(out)
    assert info["total_episodes"] == 3 and info["total_frames"] == 3 * EPISODE_STEPS and info["fps"] == 100
    for name, (w, h) in CAMERAS.items():
        f = info["features"][f"observation.images.{name}"]
        assert f["dtype"] == "video" and f["shape"] == [h, w, 3] and f["info"]["video.codec"] == "h264"
    # The task's own names (camera_box: joint_control names them after the model's joints and actuators).
    assert info["features"]["observation.state"] == {"dtype": "float32", "shape": [4],
                                                     "names": ["box_x", "box_y", "box_x_velocity", "box_y_velocity"]}


    # Parquet schema and metadata as lerobot writes them.
    data = pq.read_table(out / "data/chunk-000/file-000.parquet")  # the 3 episodes, packed into one file
    assert data.num_rows == 3 * EPISODE_STEPS and not (out / "data/chunk-000/file-001.parquet").exists()
    schema = {f.name: str(f.type) for f in data.schema}
    assert schema["observation.state"] == "list<element: float>"
    assert schema["next.reward"] == "float" and schema["next.done"] == "bool" and schema["index"] == "int64"
    assert json.loads(data.schema.metadata[b"huggingface"])["info"]["features"]["observation.state"]["length"] == 4
    assert pq.ParquetFile(out / "data/chunk-000/file-000.parquet").metadata.row_group(0).column(0).compression == "SNAPPY"
    tasks = pq.read_table(out / "meta/tasks.parquet").to_pandas()
    assert list(tasks.index) == ["look at the box"] and list(tasks["task_index"]) == [0]
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet")
    assert str(episodes.schema.field("stats/observation.images.top/mean").type) == "list<element: list<element: list<element: double>>>"
    stats = json.loads((out / "meta/stats.json").read_text())
    assert stats["observation.state"]["count"] == [3 * EPISODE_STEPS]
    assert len(stats["observation.images.top"]["mean"]) == 3

    # Values equal what the server publishes for the same seed: episode k came from (env, env_episode).
    state = json.loads((out / "meta/robosim_collect.json").read_text())
    meta = {e["episode_index"]: e for e in read_episodes(out)}
    with run_server(tmp_path_factory, "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "2",
                    "--render-backend", "osmesa") as srv:
        for e in state["episodes"]:
            frames = replay(srv.address, e["runSeed"], e["env"], e["envEpisode"], e["length"])
            table = episode_rows(out, info, meta[e["index"]]).to_pydict()
            recorded = np.array(table["observation.state"], np.float32)
            expected = np.array([f[0] for f in frames], np.float32)
            assert np.array_equal(recorded, expected), f"episode {e['index']}: states differ from the server's"
            for name, k in (("top", 1), ("side", 2)):
                w, h = CAMERAS[name]
                key = f"observation.images.{name}"
                video = out / f"videos/{key}/chunk-000/file-000.mp4"  # all 3 episodes, one after another
                probe = ffprobe(video)
                assert (probe["width"], probe["height"]) == (w, h) and probe["r_frame_rate"] == "100/1"
                assert probe["pix_fmt"] == "yuv420p" and int(probe["nb_read_frames"]) == 3 * EPISODE_STEPS
                decoded = decode(video, w, h)
                first = round(meta[e["index"]][f"videos/{key}/from_timestamp"] * info["fps"])  # the episode's first frame
                for t in (0, e["length"] // 2, e["length"] - 1):
                    diff = np.abs(decoded[first + t].astype(int) - frames[t][k].astype(int)).mean()
                    assert diff < 4, f"{name} frame {t} of episode {e['index']}: mean abs diff {diff:.2f}"


def test_collect_kill_9_leaves_a_loadable_dataset_and_resume_appends(tmp_path, tmp_path_factory):
    """A packed recording (caps small enough that a file takes 2 episodes: the top camera's video is
    about 13 kB an episode) killed with SIGKILL: every packed episode is listed and complete, every
    later finished episode is sealed in staging, and --resume packs them with the new ones."""
    out = tmp_path / "ds"
    caps = ("--video-file-mb", "0.03")
    with run_server(tmp_path_factory, "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "2",
                    "--render-backend", "osmesa") as srv:
        p = subprocess.Popen([str(SIM_COLLECT), "--server", srv.address, "--out", str(out), "--episodes", "1000",
                              "--policy", "random", "--video-codec", "h264", *caps], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                info = out / "meta/info.json"
                if info.exists() and json.loads(info.read_text())["total_episodes"] >= 4:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("sim-collect packed fewer than 4 episodes in 120 s")
            time.sleep(0.37)  # somewhere in the middle of the next episodes
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
        info = check_dataset(out, killed=True)
        packed = info["total_episodes"]
        assert packed >= 4 and info["video_files_size_in_mb"] == 0.03
        assert len(list((out / "data").rglob("*.parquet"))) >= 2  # packed into several files
        staged = sorted(p.name for p in (out / ".robosim-staging").glob("episode-*"))
        # Sealed episodes follow the packed ones without a gap (a half-written one is a hidden .tmp
        # folder; folders of episodes already packed may remain if the kill came before their removal).
        later = [s for s in staged if s >= f"episode-{packed:06d}"]
        assert later == [f"episode-{k:06d}" for k in range(packed, packed + len(later))]
        finished = packed + len(later)
    # --resume --episodes 0 packs the sealed episodes alone (no server): all complete, none lost.
    r = collect("--out", str(out), "--resume", "--episodes", "0", *caps)
    assert f"packed {len(later)} staged episodes" in r.stdout
    info = check_dataset(out)
    assert info["total_episodes"] == finished
    assert not (out / ".robosim-staging").exists()
    # The lease of the killed collector expires (ttl 60 s): resume on a fresh server instead.
    with run_server(tmp_path_factory, "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "2",
                    "--render-backend", "osmesa") as srv:
        r = collect("--server", srv.address, "--out", str(out), "--episodes", "2", "--policy", "random",
                    "--video-codec", "h264", "--resume", *caps)
    assert "2 episodes written" in r.stdout
    info = check_dataset(out)
    assert info["total_episodes"] == finished + 2  # no finished episode lost
    assert not list((out / ".robosim-staging").glob("episode-*"))


def test_collect_kill_9_before_the_first_pack_loses_nothing(tmp_path, tmp_path_factory):
    """With the default caps nothing is packed until the end: a kill before that leaves only sealed
    episodes (and the state written at the start), which --resume --episodes 0 packs, all of them;
    a new run without --resume refuses the folder instead of overwriting them."""
    out = tmp_path / "ds"
    with run_server(tmp_path_factory, "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "2",
                    "--render-backend", "osmesa") as srv:
        p = subprocess.Popen([str(SIM_COLLECT), "--server", srv.address, "--out", str(out), "--episodes", "1000",
                              "--policy", "random", "--video-codec", "h264"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and len(list((out / ".robosim-staging").glob("episode-*"))) < 3:
                time.sleep(0.05)
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
    sealed = sorted(x.name for x in (out / ".robosim-staging").glob("episode-*"))
    assert len(sealed) >= 3 and sealed == [f"episode-{k:06d}" for k in range(len(sealed))]
    assert not (out / "meta/info.json").exists()  # nothing packed yet
    r = subprocess.run([str(SIM_COLLECT), "--out", str(out), "--episodes", "1", "--policy", "random", "--scene",
                        "Scenes/test/camera_box"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "--resume" in r.stderr
    r = collect("--out", str(out), "--resume", "--episodes", "0")
    assert f"packed {len(sealed)} staged episodes" in r.stdout
    info = check_dataset(out)
    assert info["total_episodes"] == len(sealed) and info["data_files_size_in_mb"] == 100


def test_collect_v21_layout(tmp_path, tmp_path_factory):
    out = tmp_path / "ds21"
    with run_server(tmp_path_factory, "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "2",
                    "--render-backend", "osmesa") as srv:
        collect("--server", srv.address, "--out", str(out), "--episodes", "2", "--policy", "random",
                "--video-codec", "h264", "--format", "lerobot-v2.1")
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v2.1" and info["total_episodes"] == 2 and info["total_videos"] == 4
    episodes = [json.loads(l) for l in (out / "meta/episodes.jsonl").read_text().splitlines()]
    assert [e["episode_index"] for e in episodes] == [0, 1] and all(e["length"] == EPISODE_STEPS for e in episodes)
    assert len((out / "meta/episodes_stats.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "meta/tasks.jsonl").read_text().splitlines()[0]) == {"task_index": 0, "task": "camera_box"}
    for k in range(2):
        assert pq.read_table(out / f"data/chunk-000/episode_{k:06d}.parquet").num_rows == EPISODE_STEPS
        for name in CAMERAS:
            video = out / f"videos/chunk-000/observation.images.{name}/episode_{k:06d}.mp4"
            assert int(ffprobe(video)["nb_read_frames"]) == EPISODE_STEPS


def test_collect_refuses_bad_arguments(tmp_path, tmp_path_factory):
    with run_server(tmp_path_factory, "Scenes/test/camera_box", "--mode", "lockstep", "--envs", "1",
                    "--render-backend", "osmesa") as srv:
        r = subprocess.run([str(SIM_COLLECT), "--server", srv.address, "--out", str(tmp_path / "x"), "--fps", "33",
                            "--policy", "random"],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "must divide the control rate" in r.stderr
        r = subprocess.run([str(SIM_COLLECT), "--server", srv.address, "--out", str(tmp_path / "y"), "--policy", "strategist"],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "tbar_push" in r.stderr


def test_collect_one_dimensional_features_are_scalar_columns(tmp_path, tmp_path_factory):
    """lerobot reads a feature of shape [1] as a scalar (cartpole's action): the column must be float."""
    out = tmp_path / "cartpole"
    with run_server(tmp_path_factory, "Scenes/cartpole", "--mode", "lockstep", "--envs", "2", "--render-backend", "osmesa") as srv:
        collect("--server", srv.address, "--out", str(out), "--episodes", "2", "--policy", "scripted", "--fps", "30",
                "--video-codec", "h264")
    info = check_dataset(out)
    assert info["features"]["action"]["shape"] == [1] and info["fps"] == 30
    # The task's own names for the state and the action (from /sim/describe), not s0, s1..., split as
    # LeRobot's PushT: the cart is the robot (observation.state), the pole its environment.
    assert info["features"]["observation.state"]["names"] == ["cart_position", "cart_velocity"]
    assert info["features"]["observation.environment_state"] == {"dtype": "float32", "shape": [2],
                                                                 "names": ["pole_angle", "pole_angular_velocity"]}
    assert info["features"]["action"]["names"] == ["cart_force"]
    data = pq.read_table(out / "data/chunk-000/file-000.parquet")
    assert str(data.schema.field("action").type) == "float"
    assert str(data.schema.field("observation.state").type) == "list<element: float>"
    assert str(data.schema.field("observation.environment_state").type) == "list<element: float>"
    features = json.loads(data.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["action"] == {"dtype": "float32", "_type": "Value"}
    assert features["observation.environment_state"]["length"] == 2
    stats = json.loads((out / "meta/stats.json").read_text())
    assert len(stats["observation.environment_state"]["mean"]) == 2 and len(stats["observation.state"]["mean"]) == 2
    # The first frame of each episode is its seeded start: the pole within ±45°, the cart at 0.
    first = data.to_pandas().groupby("episode_index").first()
    assert all(abs(s[0]) <= 0.7854 for s in first["observation.environment_state"])
    assert all(s[0] == 0 for s in first["observation.state"])


def test_the_cartpole_expert_keeps_every_pole_up(tmp_path):
    """The scripted expert is what imitation learning copies: on 32 seeded episodes (poles starting
    within ±45°, at the control rate) every one must reach the time limit."""
    out = tmp_path / "expert"
    collect("--scene", "Scenes/test/cartpole_state", "--envs", "8", "--out", str(out), "--episodes", "32",
            "--policy", "scripted", "--seed", "100000")
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert len(episodes) == 32
    failed = []
    for e in episodes:
        path = out / f"data/chunk-{e['data/chunk_index']:03d}/file-{e['data/file_index']:03d}.parquet"
        rows = pq.read_table(path, columns=["episode_index", "next.success"]).to_pylist()
        last = [r for r in rows if r["episode_index"] == e["episode_index"]][-1]
        if not last["next.success"]:
            failed.append(e["episode_index"])
    assert not failed, f"the expert lost episodes {failed}"
