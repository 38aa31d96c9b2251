#!/usr/bin/env python3
"""Raw MuJoCo steps/s of the gym scenes' MJCF with whatever `mujoco` this Python has: one C loop
(`mujoco.rollout.rollout`), 1 thread, random controls, best of 5. Run it in venvs of two MuJoCo
versions to compare them on the same model, e.g. EnvPool's bundled 3.6.0 against our 4.0.1:

    python3 -m venv /tmp/mj36 && /tmp/mj36/bin/pip install mujoco==3.6.0 numpy
    /tmp/mj36/bin/python Benchmarks/python/raw_rollout.py && .venv/bin/python Benchmarks/python/raw_rollout.py
"""
from pathlib import Path
import time

import mujoco
import numpy as np
from mujoco import rollout

REPO = Path(__file__).resolve().parents[2]
for name, steps in (("inverted_pendulum", 20000), ("ant", 4000)):
    m = mujoco.MjModel.from_xml_path(str(REPO / f"Scenes/gym_{name}/model.xml"))
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    best = 0.0
    for _ in range(5):
        mujoco.mj_resetData(m, d)
        ctrl = rng.uniform(-1, 1, size=(1, steps, m.nu))
        state0 = np.zeros(mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_FULLPHYSICS))
        mujoco.mj_getState(m, d, state0, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        start = time.perf_counter()
        rollout.rollout(m, d, state0, ctrl)
        best = max(best, steps / (time.perf_counter() - start))
    print(f"MuJoCo {mujoco.__version__} {name}: {best:,.0f} steps/s (rollout, 1 thread, best of 5)")
