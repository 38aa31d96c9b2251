"""Names from outside never lead out of their folder (docs/security.md, "Paths and plugins"), checked
against the real binaries:

- ``sim-server``: a scene manifest naming a plugin by a path (``../../evil``, an absolute path) is
  refused at start, naming the value and the plugin folders; a library in a ``--plugin-path``
  folder that is a symbolic link to a file outside it is refused.
- ``sim-train run``: a job whose ``output`` (or eval ``video``) is absolute, holds ``..`` or goes
  through a symbolic link out of the outputs folder is refused before anything is written.
- ``sim-collect replay`` and ``merge``: a dataset whose ``meta/info.json`` ``data_path`` or camera
  names lead out of it is refused before any file is read or written.

The binaries come from ``$ROBOSIM_BIN_DIR`` (default ``.build/debug``), as in test_server.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import test_server

REPO, BIN_DIR = test_server.REPO, test_server.BIN_DIR


def binary(name: str) -> Path:
    path = BIN_DIR / name
    if not path.exists():
        if os.environ.get("ROBOSIM_REQUIRE_SERVER") == "1":
            pytest.fail(f"{name} not built in {BIN_DIR}")
        pytest.skip(f"{name} not built in {BIN_DIR}")
    return path


def run(*args, cwd=REPO, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


# --- sim-server: plugins ---------------------------------------------------------------------------------------


def pendulum_scene(folder: Path, **manifest) -> Path:
    """A copy of Scenes/test/pendulum with `manifest`'s keys replaced."""
    folder.mkdir(parents=True)
    shutil.copy(REPO / "Scenes/test/pendulum/model.xml", folder / "model.xml")
    m = json.loads((REPO / "Scenes/test/pendulum/scene.json").read_text())
    m.update(manifest)
    (folder / "scene.json").write_text(json.dumps(m))
    return folder


@pytest.mark.parametrize("key,name", [("task", "../../evil"), ("task", "/tmp/libevil.so"), ("robot", "plugins/evil")])
def test_manifest_plugin_name_that_is_a_path_is_refused_at_start(tmp_path, key, name):
    server = binary("sim-server")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    scene = pendulum_scene(tmp_path / "scene", **{key: name})
    r = run(server, scene, "--listen", "tcp://127.0.0.1:*", "--plugin-path", plugins, "--mode", "lockstep")
    assert r.returncode != 0
    assert f"{scene}/scene.json: {key}: plugin name '{name}' is refused" in r.stderr, r.stderr
    assert f"plugins load only from the built-in plugins and the --plugin-path folders {plugins}" in r.stderr, r.stderr


def test_plugin_library_linked_from_outside_its_folder_is_refused(tmp_path):
    server = binary("sim-server")
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    outside, plugins = tmp_path / "outside", tmp_path / "plugins"
    outside.mkdir()
    plugins.mkdir()
    # A library that would say "loaded" if it ever ran: it must not be opened at all.
    (outside / "evil.c").write_text('#include <stdio.h>\n__attribute__((constructor)) static void hi(void) { fputs("EVIL LOADED\\n", stderr); }\n'
                                    "int robosim_plugin_api_version(void) { return 999; }\nvoid robosim_register_plugins(void *r) {}\n")
    cc = run("cc", "-shared", "-fPIC", "-o", outside / "libEvil.so", outside / "evil.c")
    assert cc.returncode == 0, cc.stderr
    (plugins / "libEvil.so").symlink_to(outside / "libEvil.so")
    r = run(server, "Scenes/test/pendulum", "--listen", "tcp://127.0.0.1:*", "--plugin-path", plugins, "--mode", "lockstep")
    assert r.returncode != 0
    assert "EVIL LOADED" not in r.stderr
    assert (f"{plugins}/libEvil.so: a symbolic link to {(outside / 'libEvil.so').resolve()}, outside the plugin folder {plugins}"
            in r.stderr), r.stderr
    # The same file inside the folder is opened (its constructor runs) and refused for its API version.
    (plugins / "libEvil.so").unlink()
    shutil.copy(outside / "libEvil.so", plugins / "libEvil.so")
    r = run(server, "Scenes/test/pendulum", "--listen", "tcp://127.0.0.1:*", "--plugin-path", plugins, "--mode", "lockstep")
    assert r.returncode != 0 and "EVIL LOADED" in r.stderr and "built for plugin API 999" in r.stderr, r.stderr


# --- sim-train run: job outputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("job,refused", [
    ({"kind": "train", "output": "../escaped"}, "job output '../escaped' is refused: '..' is not allowed in it"),
    ({"kind": "train", "output": "runs/../../escaped"}, "job output 'runs/../../escaped' is refused: '..' is not allowed in it"),
    ({"kind": "train", "output": "/tmp/robosim-escaped"}, "job output '/tmp/robosim-escaped' is refused: it is an absolute path"),
    ({"kind": "train", "output": ""}, "job output '' is refused: the name is empty"),
    ({"kind": "train", "output": "link/run"}, "is a symbolic link to"),
    ({"kind": "eval", "random": True, "output": "ok", "video": "../../escaped.mp4"},
     "job video '../../escaped.mp4' is refused: '..' is not allowed in it"),
])
def test_job_output_that_leads_out_of_the_outputs_folder_is_refused(tmp_path, job, refused):
    sim_train = binary("sim-train")
    outputs, outside = tmp_path / "outputs", tmp_path / "outside"
    outputs.mkdir()
    outside.mkdir()
    (outputs / "link").symlink_to(outside)
    job = {"scene": "Scenes/cartpole", "envs": 2, **job}
    (tmp_path / "job.json").write_text(json.dumps(job))
    r = run(sim_train, "run", tmp_path / "job.json", "--outputs", outputs)
    assert r.returncode != 0
    assert refused in r.stderr, r.stderr
    assert f"it must stay inside {outputs}" in r.stderr, r.stderr
    # Nothing was written anywhere: not outside, not even the output folder of the eval job.
    assert list(outside.iterdir()) == [] and not (tmp_path / "escaped").exists() and not Path("/tmp/robosim-escaped").exists()
    assert sorted(p.name for p in outputs.iterdir()) == ["link"]


# --- sim-collect: datasets read back ----------------------------------------------------------------------------


def hostile_dataset(root: Path, data_path: str, cameras=()) -> Path:
    """A v2.1 dataset as sim-collect's metadata describes it (one episode), with `data_path` and camera names as given."""
    (root / "meta").mkdir(parents=True)
    state = {"spec": {"format": "lerobot-v2.1", "fps": 10, "stateNames": ["x"], "actionNames": ["u"],
                      "cameras": [{"name": c, "width": 8, "height": 8} for c in cameras], "videoCodec": "h264"},
             "tasks": ["t"],
             "episodes": [{"index": 0, "length": 1, "from": 0, "task": 0, "env": 0, "envEpisode": 0, "runSeed": 1,
                           "success": False, "stats": {}}]}
    (root / "meta" / "robosim_collect.json").write_text(json.dumps(state))
    (root / "meta" / "info.json").write_text(json.dumps({"data_path": data_path}))
    return root


@pytest.mark.parametrize("data_path,refused", [
    ("../outside/{episode_index}.parquet", "data file of episode 0 (meta/info.json data_path) '../outside/0.parquet' is refused: '..' is not allowed in it"),
    ("/etc/{episode_index}.parquet", "data file of episode 0 (meta/info.json data_path) '/etc/0.parquet' is refused: it is an absolute path"),
])
def test_replay_and_merge_refuse_a_data_path_that_leads_out(tmp_path, data_path, refused):
    sim_collect = binary("sim-collect")
    dataset = hostile_dataset(tmp_path / "ds", data_path)
    # replay reads the metadata before it connects to any server.
    r = run(sim_collect, "replay", dataset, "--server", "tcp://127.0.0.1:9")
    assert r.returncode != 0 and refused in r.stderr and f"it must stay inside {dataset}" in r.stderr, r.stderr
    r = run(sim_collect, "merge", tmp_path / "merged", dataset)
    assert r.returncode != 0 and refused in r.stderr, r.stderr
    assert not (tmp_path / "merged").exists() or list((tmp_path / "merged").rglob("*.parquet")) == []


def test_merge_refuses_a_camera_name_that_leads_out(tmp_path):
    sim_collect = binary("sim-collect")
    dataset = hostile_dataset(tmp_path / "ds", "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
                              cameras=["../../../escaped"])
    r = run(sim_collect, "merge", tmp_path / "merged", dataset)
    assert r.returncode != 0
    assert "camera name '../../../escaped' is refused: it must be a single name, without '/'" in r.stderr, r.stderr
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "merged" / "meta" / "robosim_collect.json").exists()


# --- clients: the step channel path from /sim/open_channel -----------------------------------------------------


def test_python_client_opens_only_proc_fd_channel_paths(tmp_path):
    from robosim import channel
    from robosim.msgs.robosim import srv_pb2

    if not channel.available():
        pytest.skip("step channels need Linux on x86-64")
    # A layout that fits (one env, one observation, one action), and a path that is not the server's descriptor.
    target = tmp_path / "victim"
    target.write_bytes(b"\0" * 4096)
    r = srv_pb2.OpenChannelResponse(path=str(target), env_ids=[0], observation_size=1, action_size=1, byte_count=4096,
                                    actions=320, observations=328, rewards=336, final_observations=344, terminated=352,
                                    truncated=360, success=368, final=376)
    for path in (str(target), "/proc/1/fd/../../self/mem", "/proc/self/fd/3", "../proc/1/fd/3"):
        r.path = path
        with pytest.raises(ValueError, match="not a /proc/PID/fd/N channel"):
            channel.StepChannel(r)
    assert target.read_bytes() == b"\0" * 4096
