#!/usr/bin/env python3
"""Loads a sim-collect dataset with lerobot's own LeRobotDataset and checks what a trainer relies on.

Not in CI (lerobot is an ~8 GB install): run it with the venv scripts/lerobot-loop.sh makes,
    ~/.cache/robosim/lerobot-venv/bin/python scripts/lerobot-load.py DATASET [DATASET...]
Checks, per dataset: lerobot opens it offline; `index` runs 0..N-1 and `episode_index` 0..E-1 with
N and E as meta/info.json says; the first, middle and last frames load, video frames decoded to
(3, H, W). Prints one summary line per dataset; exits 1 on the first failure.
"""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402


def check(root: str) -> str:
    ds = LeRobotDataset("local/" + os.path.basename(os.path.abspath(root)), root=root)
    table = ds.hf_dataset.with_format(None)
    index = np.asarray(table["index"], dtype=np.int64)
    episodes = np.asarray(table["episode_index"], dtype=np.int64)
    assert len(index) == ds.meta.total_frames == ds.num_frames, (len(index), ds.meta.total_frames)
    assert (np.sort(index) == np.arange(len(index))).all(), "index is not 0..N-1"
    assert sorted(set(episodes.tolist())) == list(range(ds.meta.total_episodes)), "episode_index is not 0..E-1"
    cameras = [k for k in ds.features if k.startswith("observation.images.")]
    for i in (0, len(ds) // 2, len(ds) - 1):
        item = ds[i]
        for key in cameras:
            h, w = ds.features[key]["shape"][:2]
            assert tuple(item[key].shape) == (3, h, w), (key, tuple(item[key].shape))
    return (f"{root}: lerobot loads {ds.num_episodes} episodes, {ds.num_frames} frames, indices continuous, "
            f"cameras {cameras or 'none'}, features {sorted(ds.features)}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for root in sys.argv[1:]:
        print(check(root), flush=True)
