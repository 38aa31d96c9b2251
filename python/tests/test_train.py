"""sim-train against the real server: PPO is deterministic, its checkpoint loads with the `safetensors`
package, and a numpy forward pass of it gives sim-train's actions.

The binaries come from ``$ROBOSIM_BIN_DIR`` (default ``.build/debug``), as in test_server.py.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

safetensors_numpy = pytest.importorskip("safetensors.numpy")
from safetensors import safe_open  # noqa: E402


def train(sim_train, out, seed=3, scene="Scenes/cartpole"):
    binary, repo = sim_train
    r = subprocess.run([str(binary), "train", "--scene", scene, "--envs", "8", "--steps", "4096",
                        "--rollout-steps", "64", "--epochs", "4", "--out", str(out), "--seed", str(seed), "--eval-episodes", "8"],
                       cwd=repo, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


def test_same_seed_same_curve_and_checkpoint(sim_train, tmp_path):
    out = train(sim_train, tmp_path / "a")
    train(sim_train, tmp_path / "b")
    assert "update 8/8" in out and "eval: 8 episodes" in out, out
    a, b = (tmp_path / "a" / "metrics.csv").read_bytes(), (tmp_path / "b" / "metrics.csv").read_bytes()
    assert a == b
    assert len(a.splitlines()) == 9  # header and 8 updates
    assert (tmp_path / "a" / "checkpoint.safetensors").read_bytes() == (tmp_path / "b" / "checkpoint.safetensors").read_bytes()
    train(sim_train, tmp_path / "c", seed=4)
    assert (tmp_path / "c" / "metrics.csv").read_bytes() != a
    report = json.loads((tmp_path / "a" / "eval.json").read_text())
    assert len(report["episodes"]) == 8 and 0 <= report["successRate"] <= 1


def numpy_policy(path):
    """Mean actions from the checkpoint's tensors, as its metadata documents them."""
    t = safetensors_numpy.load_file(str(path))
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    hidden = json.loads(meta["hidden"])

    def net(prefix, x):
        for layer in range(len(hidden) + 1):
            x = x @ t[f"{prefix}.layers.{layer}.weight"] + t[f"{prefix}.layers.{layer}.bias"]
            if layer < len(hidden):
                x = np.tanh(x)
        return x

    def act(obs):
        x = np.asarray(obs, np.float32)
        if meta["normalize_observations"] == "true":
            x = np.clip((x - t["obs_norm.mean"]) / np.sqrt(t["obs_norm.var"] + np.float32(1e-8)), -10, 10)
        out = net("actor", x.astype(np.float32))
        if meta["distribution"] == "categorical":  # the most likely choice
            return np.argmax(out, axis=1).reshape(-1, 1).astype(np.float64)
        return out

    return act, meta


@pytest.mark.parametrize("scene", ["Scenes/cartpole", "Scenes/cartpole_discrete"])
def test_checkpoint_loads_in_python_and_numpy_gives_sim_trains_actions(sim_train, tmp_path, scene):
    train(sim_train, tmp_path / "run", scene=scene)
    path = tmp_path / "run" / "checkpoint.safetensors"
    act, meta = numpy_policy(path)
    assert meta["format"] == "robosim.ppo.v1" and meta["task"] == "cartpole"
    assert json.loads(meta["observation_names"]) == ["pole_angle", "pole_angular_velocity", "cart_position", "cart_velocity"]
    discrete = scene.endswith("discrete")
    assert json.loads(meta["action_names"]) == (["push"] if discrete else ["cart_force"])
    assert meta["distribution"] == ("categorical" if discrete else "gaussian") and meta["action_choices"] == ("2" if discrete else "0")
    rng = np.random.default_rng(0)
    obs = rng.normal(0, 1, size=(50, 4)) * [0.5, 2, 1, 2]
    binary, repo = sim_train
    r = subprocess.run([str(binary), "act", str(path)], input=json.dumps(obs.tolist()), capture_output=True, text=True,
                       cwd=repo, timeout=120)
    assert r.returncode == 0, r.stderr
    swift = np.asarray(json.loads(r.stdout))
    ours = act(obs)
    assert swift.shape == ours.shape == (50, 1)
    np.testing.assert_allclose(swift, ours, rtol=1e-5, atol=1e-6)
    assert np.ptp(ours) > 0  # different observations, different actions
    if discrete:
        assert set(np.unique(swift)) <= {0.0, 1.0}


def test_a_job_file_runs_the_same_training_and_tensorboard_reads_its_events(sim_train, tmp_path):
    """`sim-train run job.json` gives the run the flags give (same metrics.csv), and its outputs
    directory holds the job, checkpoint, metrics, evaluation and event files that TensorBoard reads."""
    binary, repo = sim_train
    train(sim_train, tmp_path / "flags")
    job = {"kind": "train", "scene": "Scenes/cartpole", "envs": 8, "steps": 4096, "seed": 3, "eval_episodes": 8,
           "output": "job", "ppo": {"steps": 64, "epochs": 4}}
    (tmp_path / "job.json").write_text(json.dumps(job))
    # The job's output is a folder inside --outputs (test_paths.py: never outside it).
    r = subprocess.run([str(binary), "run", str(tmp_path / "job.json"), "--outputs", str(tmp_path)], cwd=repo, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = tmp_path / "job"
    assert (out / "metrics.csv").read_bytes() == (tmp_path / "flags" / "metrics.csv").read_bytes()
    for name in ("job.json", "checkpoint.safetensors", "timing.csv", "eval.json"):
        assert (out / name).exists(), name
    timing = [dict(zip(*(line.split(",") for line in pair))) for pair in
              [((out / "timing.csv").read_text().splitlines()[0], row) for row in (out / "timing.csv").read_text().splitlines()[1:]]]
    last = timing[-1]
    assert 0 < float(last["sim_s"]) <= float(last["env_s"]) and float(last["transport_s"]) >= 0, last
    assert abs(float(last["sim_s"]) + float(last["transport_s"]) - float(last["env_s"])) < 0.01, last
    assert json.loads((out / "job.json").read_text())["ppo"]["epochs"] == 4

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("rollout/ep_rew_mean", "rollout/success_rate", "train/policy_loss", "train/value_loss", "train/entropy",
                "train/approx_kl", "train/clip_fraction", "time/steps_per_s", "time/env_s", "time/learn_s", "time/sim_s",
                "time/transport_s"):
        assert tag in tags, (tag, tags)
    returns = acc.Scalars("rollout/ep_rew_mean")
    assert [e.step for e in returns] == [512 * k for k in range(1, 9)]
    metrics = (out / "metrics.csv").read_text().splitlines()
    first = dict(zip(metrics[0].split(","), metrics[1].split(",")))
    assert abs(returns[0].value - float(first["mean_return"])) < 1e-4 * abs(float(first["mean_return"]))


def test_bad_job_files_are_refused(sim_train, tmp_path):
    binary, repo = sim_train
    for job, text in ([{"kind": "train", "scene": "Scenes/cartpole", "output": "x", "stepz": 5}, "unknown key 'stepz'"],
                      [{"kind": "train", "scene": "Scenes/cartpole", "output": "x", "ppo": {"lr": 1}}, "unknown ppo key 'lr'"],
                      [{"kind": "eval", "scene": "Scenes/cartpole", "output": "x"}, "names its checkpoint"],
                      [{"kind": "train", "output": "x"}, "give one of scene"]):
        (tmp_path / "bad.json").write_text(json.dumps(job))
        r = subprocess.run([str(binary), "run", str(tmp_path / "bad.json")], cwd=repo, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and text in r.stderr + r.stdout, (job, r.stderr)


def test_eval_writes_a_video_that_ffprobe_reads_with_frames_that_change(sim_train, tmp_path):
    binary, repo = sim_train
    train(sim_train, tmp_path / "run")
    video = tmp_path / "eval.mp4"
    r = subprocess.run([str(binary), "eval", str(tmp_path / "run" / "checkpoint.safetensors"), "--scene", "Scenes/cartpole",
                        "--envs", "2", "--episodes", "2", "--video", str(video), "--video-episodes", "1",
                        "--report", str(tmp_path / "eval.json")], cwd=repo, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name,width,height,nb_read_frames,avg_frame_rate", "-of", "json", str(video)],
                           capture_output=True, text=True, timeout=60)
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "h264" and (stream["width"], stream["height"]) == (128, 128), stream
    frames = int(stream["nb_read_frames"])
    report = json.loads((tmp_path / "eval.json").read_text())
    first_length = next(e["length"] for e in report["episodes"] if e["env"] == 0)
    # The start state, then the state after each step but the last (that step auto-resets the env).
    assert frames == first_length, (frames, first_length)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, timeout=60).stdout
    pictures = np.frombuffer(raw, np.uint8).reshape(frames, 128, 128, 3)
    moved = (np.abs(pictures[0].astype(int) - pictures[-1].astype(int)).max(axis=-1) > 40).sum()
    assert moved > 20, f"only {moved} pixels changed between the first and last frames"


@pytest.mark.parametrize("scene", ["Scenes/cartpole", "Scenes/cartpole_discrete"])
def test_onnx_export_gives_sim_trains_actions_through_onnxruntime(sim_train, tmp_path, scene):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    binary, repo = sim_train
    train(sim_train, tmp_path / "run", scene=scene)
    path = tmp_path / "policy.onnx"
    r = subprocess.run([str(binary), "export", str(tmp_path / "run" / "checkpoint.safetensors"), "--onnx", str(path)],
                       cwd=repo, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["task"] == "cartpole" and meta["action_names"] == ("push" if scene.endswith("discrete") else "cart_force")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["observation"] and [o.name for o in session.get_outputs()] == ["action"]
    obs = np.random.default_rng(1).normal(0, 1, size=(64, 4)) * [0.5, 2, 1, 2]
    ort_actions = session.run(["action"], {"observation": obs.astype(np.float32)})[0]
    swift = np.asarray(json.loads(subprocess.run([str(binary), "act", str(tmp_path / "run" / "checkpoint.safetensors")],
                                                 input=json.dumps(obs.tolist()), capture_output=True, text=True, cwd=repo,
                                                 timeout=120).stdout))
    assert ort_actions.shape == swift.shape == (64, 1)
    np.testing.assert_allclose(ort_actions, swift, rtol=1e-5, atol=1e-6)
