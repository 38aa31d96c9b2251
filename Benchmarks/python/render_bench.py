"""Reference for `sim-bench render`: MuJoCo's Python `mujoco.Renderer` on the same scene, camera and
settings (shadows, reflections and multisampling off; OSMesa unless MUJOCO_GL says otherwise).

Prints one JSON object: {"mujoco": version, "backend": ..., "results": [{"width", "height", "frames",
"seconds", "fps"}]}. Usage:
    .venv/bin/python Benchmarks/python/render_bench.py --model Scenes/tbar_push/model.xml \
        --camera overhead --sizes 84x84,128x128,640x480 --frames 300
"""
import argparse
import json
import os
import time

os.environ.setdefault("MUJOCO_GL", "osmesa")
if os.environ["MUJOCO_GL"] == "osmesa":
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

import mujoco  # noqa: E402  (after MUJOCO_GL is set)


def measure(model, data, camera, width, height, frames, depth):
    renderer = mujoco.Renderer(model, height, width)
    try:
        flags = renderer.scene.flags

        def frame():
            renderer.update_scene(data, camera=camera)
            flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            return renderer.render()

        if depth:
            renderer.enable_depth_rendering()
        for _ in range(max(5, frames // 20)):
            frame()
        start = time.perf_counter()
        for _ in range(frames):
            pixels = frame()
        seconds = time.perf_counter() - start
        shape = list(pixels.shape)
    finally:
        renderer.close()
    return {"width": width, "height": height, "frames": frames, "seconds": seconds, "fps": frames / seconds, "shape": shape}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--camera", required=True)
    parser.add_argument("--sizes", default="84x84,128x128,640x480")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--depth", action="store_true", help="render depth instead of rgb")
    args = parser.parse_args()
    model = mujoco.MjModel.from_xml_path(args.model)
    model.vis.quality.offsamples = 0
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    model.vis.global_.offwidth = max([model.vis.global_.offwidth] + [w for w, _ in sizes])
    model.vis.global_.offheight = max([model.vis.global_.offheight] + [h for _, h in sizes])
    data = mujoco.MjData(model)
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key >= 0:
        mujoco.mj_resetDataKeyframe(model, data, key)
    mujoco.mj_forward(model, data)
    results = [measure(model, data, args.camera, w, h, args.frames, args.depth) for w, h in sizes]
    print(json.dumps({"mujoco": mujoco.__version__, "backend": os.environ["MUJOCO_GL"], "results": results}))


if __name__ == "__main__":
    main()
