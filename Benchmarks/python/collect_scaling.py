#!/usr/bin/env python3
"""Does writing the 2,000th episode cost what the 100th did? sim-collect on many short cartpole episodes.

    swift build -c release --product sim-collect && swift build -c release --product sim-server
    .venv/bin/python Benchmarks/python/collect_scaling.py --bin .build/release --episodes 2000

The scene is Scenes/cartpole (same model, task and 60 Hz control) with 1 s episodes and its camera at
64x64, so 2,000 episodes (120,000 frames, rendered and encoded) take minutes, not an hour. The
scripted expert drives 8 envs, videos in H.264. For each format it prints the time to write the first
100 episodes (from the start) and the last 100 (to the end, the final pack included), from
sim-collect's progress line (0.1 s resolution), and their ratio. v3.0 (packed, --data-file-mb and
--video-file-mb small enough to make several files) is the format under test; v2.1, which rewrites
every metadata file for every episode, is the reference in the same run. Then it checks the v3.0
dataset: every data and video file within its cap (or alone in its file), totals, continuous
indices (pyarrow), and, where lerobot is importable, that lerobot loads it.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def scene_copy(folder: Path) -> Path:
    src = REPO / "Scenes/cartpole"
    manifest = json.loads((src / "scene.json").read_text())
    manifest["model"] = os.path.relpath(src / manifest["model"], folder)
    manifest["cameras"] = [dict(manifest["cameras"][0], width=64, height=64)]
    manifest["episode_length_s"] = 1.0
    folder.mkdir(parents=True)
    (folder / "scene.json").write_text(json.dumps(manifest, indent=2))
    return folder


def record(bin_dir: Path, scene: Path, out: Path, episodes: int, extra: list) -> list:
    """Runs sim-collect; returns [(episodes written, seconds)] from its progress lines, then the total."""
    cmd = [str(bin_dir / "sim-collect"), "--scene", str(scene), "--envs", "8", "--out", str(out), "--episodes", str(episodes),
           "--policy", "scripted", "--video-codec", "h264", "--seed", "1", *extra]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=dict(os.environ, ROBOSIM_BIN_DIR=str(bin_dir)))
    if r.returncode != 0:
        sys.exit(f"sim-collect failed ({r.returncode}): {r.stderr[-2000:]}")
    points = [(int(m.group(1)), float(m.group(2)))
              for m in re.finditer(r"\] (\d+)/\d+ episodes .*?frames\s+([\d.]+) s", r.stderr)]
    total = float(re.search(r"discarded; ([\d.]+) s", r.stdout).group(1))
    return points + [(episodes, total)]


def first_reaching(points, count):
    return next(t for n, t in points if n >= count)


def windows(points, episodes):
    first = first_reaching(points, 100)
    last = points[-1][1] - first_reaching(points, episodes - 100)
    return first, last


def check_packed(root: Path) -> str:
    import pyarrow.parquet as pq
    info = json.loads((root / "meta/info.json").read_text())
    meta = []
    for path in sorted((root / "meta/episodes").rglob("*.parquet")):
        meta += pq.read_table(path, columns=["episode_index", "data/file_index", "data/chunk_index"]).to_pylist()
    assert [m["episode_index"] for m in meta] == list(range(info["total_episodes"]))
    per_file = {}
    for m in meta:
        per_file.setdefault((m["data/chunk_index"], m["data/file_index"]), []).append(m["episode_index"])
    data = sorted((root / "data").rglob("*.parquet"))
    videos = sorted((root / "videos").rglob("*.mp4"))
    index = []
    for path in data:
        index += pq.read_table(path, columns=["index"]).column("index").to_pylist()
    assert index == list(range(info["total_frames"])), "index is not 0..N-1"
    cap_data, cap_video = info["data_files_size_in_mb"] * 2**20, info["video_files_size_in_mb"] * 2**20
    over = [p for p in data if p.stat().st_size > cap_data] + [p for p in videos if p.stat().st_size > cap_video]
    assert not over, f"files over their caps: {over}"
    largest = max(p.stat().st_size for p in data) / 2**20, max(p.stat().st_size for p in videos) / 2**20
    line = (f"v3.0 dataset: {info['total_episodes']} episodes, {info['total_frames']} frames in {len(data)} data files "
            f"(largest {largest[0]:.2f} of {info['data_files_size_in_mb']} MiB) and {len(videos)} video files "
            f"(largest {largest[1]:.2f} of {info['video_files_size_in_mb']} MiB); indices continuous")
    try:
        sys.path.insert(0, str(REPO / "scripts"))
        import importlib
        load = importlib.import_module("lerobot-load")
        line += "\n" + load.check(str(root))
    except ImportError:
        line += "\n(lerobot not importable here: check with ~/.cache/robosim/lerobot-venv/bin/python scripts/lerobot-load.py DIR)"
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", type=Path, default=REPO / ".build/release")
    ap.add_argument("--episodes", type=int, default=2000)
    ap.add_argument("--reference-episodes", type=int, default=500,
                    help="episodes of the v2.1 reference run (its per-episode rewrites grow with the dataset)")
    ap.add_argument("--data-file-mb", default="1")
    ap.add_argument("--video-file-mb", default="2")
    ap.add_argument("--keep", type=Path, default=None, help="keep the v3.0 dataset here")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="robosim-collect-scaling-"))
    try:
        scene = scene_copy(work / "scene" / "cartpole")
        results = {}
        for name, episodes, extra in (
                ("v3.0 packed", args.episodes, ["--data-file-mb", args.data_file_mb, "--video-file-mb", args.video_file_mb]),
                ("v2.1 (reference)", args.reference_episodes, ["--format", "lerobot-v2.1"])):
            out = work / name.split()[0]
            points = record(args.bin, scene, out, episodes, extra)
            first, last = windows(points, episodes)
            results[name] = out
            print(f"{name:18s} {episodes} episodes in {points[-1][1]:6.1f} s; first 100: {first:5.1f} s, "
                  f"last 100: {last:5.1f} s, last/first {last / first:.2f}x", flush=True)
        print(check_packed(results["v3.0 packed"]))
        if args.keep:
            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.copytree(results["v3.0 packed"], args.keep)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
