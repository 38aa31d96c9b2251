"""Renders and validates the Kubernetes manifests in deploy/kubernetes (docs/kubernetes.md) without a cluster.

1. A copy of deploy/kubernetes goes to a temporary folder, with CURVE keys made by make-keys.sh when
   simctl has `keys generate` (else placeholder files: rendering needs only that the files exist).
2. Every folder with a kustomization.yaml is rendered by a small renderer here (the subset of kustomize
   these folders use: resources, namespace, images, secretGenerator and configMapGenerator from files,
   generatorOptions; anything else is refused), so a machine without kubectl still checks. Where kubectl
   is installed, `kubectl kustomize` renders too and both renderings must hold the same objects.
3. kubernetes-validate --strict checks every rendered object against Kubernetes' schemas (unknown fields
   fail), for the newest version it knows and for the oldest this deployment supports (1.33:
   backoffLimitPerIndex is GA there).
4. Policy: every pod runs as a non-root uid with seccomp, no privilege escalation, a read-only root
   filesystem and no capabilities, and has CPU and memory requests and limits; every Secret, ConfigMap and
   PVC a pod names exists; the StatefulSet's headless Service exposes ROUTER, XPUB and XSUB (port, +1, +2);
   its probes ask /sim/describe with the CURVE key flags; the collect Job is Indexed with one completion
   per server and the merge Job's SHARDS match; train job files name scenes that exist; no Secret is
   committed, and no key file is tracked by git.
5. Negative checks: a manifest with an unknown field, one with a wrongly typed field, and a pod without
   resources must fail, so the check can fail.
6. The Jobs' own steps, here: the collect Job's script for shards 0 and 1 against two local lockstep
   servers (Scenes/test/tbar_push_short, random policy: SERVER and COLLECT_ARGS overridden), a retry of a
   finished shard, a resumed shard, the merge Job's script (twice: the second keeps the merge), and every
   train job file with its scene mapped to this checkout, --outputs a temporary folder and its steps cut
   to 2048: what the pods run, minus the cluster.

Usage: python scripts/check_kubernetes.py [--bin DIR]   (DIR: where simctl is; default .build/debug)
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import random
import socket
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy/kubernetes"
KEY_NAMES = ["server", "client", "probe"]
VERSIONS = [None, "1.33.0"]  # None: kubernetes-validate's newest
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                  "CustomResourceDefinition", "PriorityClass"}
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "resources", "images", "generatorOptions",
                      "secretGenerator", "configMapGenerator"}


class RenderError(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# Rendering


def render(folder: Path) -> list[dict]:
    """The objects `kubectl kustomize folder` gives, for the subset of kustomize used here."""
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(k) - KUSTOMIZATION_KEYS
    if unknown:
        raise RenderError(f"{folder}/kustomization.yaml: {sorted(unknown)} not supported by this renderer (add them here)")
    objects: list[dict] = []
    for entry in k.get("resources", []):
        path = folder / entry
        if path.is_dir():
            objects += render(path)
        else:
            objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    options = k.get("generatorOptions", {})
    if (k.get("secretGenerator") or k.get("configMapGenerator")) and not options.get("disableNameSuffixHash"):
        raise RenderError(f"{folder}: generators with name hashes are not supported by this renderer")
    for kind, entries in (("ConfigMap", k.get("configMapGenerator", [])), ("Secret", k.get("secretGenerator", []))):
        for g in entries:
            if set(g) - {"name", "files"}:
                raise RenderError(f"{folder}: generator keys {sorted(set(g) - {'name', 'files'})} not supported")
            data = {}
            for f in g.get("files", []):
                key, _, path = f.partition("=") if "=" in f else (Path(f).name, "", f)
                content = (folder / path).read_bytes()
                data[key] = base64.b64encode(content).decode() if kind == "Secret" else content.decode()
            obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": g["name"]}, "data": data}
            if options.get("labels"):
                obj["metadata"]["labels"] = dict(options["labels"])
            if kind == "Secret":
                obj["type"] = "Opaque"
            objects.append(obj)
    if "namespace" in k:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = k["namespace"]
    for image in k.get("images", []):
        for container in all_containers(objects):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"
    return objects


def pod_spec(obj: dict) -> dict | None:
    if obj["kind"] in ("StatefulSet", "Deployment", "Job", "DaemonSet", "ReplicaSet"):
        return obj["spec"]["template"]["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if obj["kind"] == "Pod":
        return obj["spec"]
    return None


def all_containers(objects: list[dict]) -> list[dict]:
    out = []
    for obj in objects:
        spec = pod_spec(obj)
        if spec:
            out += spec.get("initContainers", []) + spec.get("containers", [])
    return out


def key(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def kubectl_render(folder: Path) -> list[dict] | None:
    if not shutil.which("kubectl"):
        return None
    r = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RenderError(f"kubectl kustomize {folder}: {r.stderr.strip()}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


# ------------------------------------------------------------------------------------------------
# Validation


def validate(paths: list[Path], version: str | None) -> tuple[bool, str]:
    cmd = [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "--quiet", "--no-warn"]
    if version:
        cmd += ["-k", version]
    r = subprocess.run(cmd + [str(p) for p in paths], capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def policy(objects: list[dict], repo_scenes: Path) -> list[str]:
    errors: list[str] = []
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or not psc.get("runAsUser"):
            errors.append(f"{where}: pod securityContext needs runAsNonRoot: true and a non-zero runAsUser")
        if psc.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
            errors.append(f"{where}: pod securityContext needs a seccompProfile (RuntimeDefault)")
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            cw = f"{where} container {c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                errors.append(f"{cw}: allowPrivilegeEscalation must be false")
            if sc.get("readOnlyRootFilesystem") is not True:
                errors.append(f"{cw}: readOnlyRootFilesystem must be true (mount an emptyDir where it writes)")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                errors.append(f"{cw}: capabilities must drop ALL")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(kind, {}):
                        errors.append(f"{cw}: no {r} in resources.{kind}")
            if not str(c.get("image", "")).startswith("robosim"):
                errors.append(f"{cw}: image {c.get('image')} is not the robosim image")
        for v in spec.get("volumes", []):
            if "secret" in v and ("Secret", v["secret"]["secretName"]) not in names:
                errors.append(f"{where}: Secret {v['secret']['secretName']} is not generated anywhere")
            if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in names:
                errors.append(f"{where}: ConfigMap {v['configMap']['name']} is not generated anywhere")
            if "persistentVolumeClaim" in v and ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) not in names:
                errors.append(f"{where}: PVC {v['persistentVolumeClaim']['claimName']} is not defined")
    by_kind = lambda kind: [o for o in objects if o["kind"] == kind]  # noqa: E731
    servers = by_kind("StatefulSet")
    if len(servers) != 1:
        return errors + [f"expected one StatefulSet (the sim-servers), found {len(servers)}"]
    sts = servers[0]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    args = container.get("args", [])
    listen = next((a.split("=", 1)[1] for a in args if a.startswith("--listen=")), None)
    if not listen or not re.fullmatch(r"tcp://0\.0\.0\.0:\d+", listen):
        errors.append(f"StatefulSet args {args}: --listen=tcp://0.0.0.0:PORT expected")
        return errors
    port = int(listen.rsplit(":", 1)[1])
    if "--insecure" in args or not any(a.startswith("--key=") for a in args) or not any(a.startswith("--allow=") for a in args):
        errors.append("the servers must listen with --key and --allow, never --insecure")
    if "--mode=lockstep" not in args:
        errors.append("the servers must run in lockstep mode (sim-collect and sim-train step them)")
    service = next((s for s in by_kind("Service") if s["metadata"]["name"] == sts["spec"]["serviceName"]), None)
    if service is None or service["spec"].get("clusterIP") != "None":
        errors.append(f"StatefulSet's serviceName {sts['spec']['serviceName']} is not a headless Service")
    else:
        ports = sorted(p["port"] for p in service["spec"]["ports"])
        if ports != [port, port + 1, port + 2]:
            errors.append(f"Service ports {ports}: expected ROUTER {port}, XPUB {port + 1}, XSUB {port + 2}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        cmd = container.get(probe, {}).get("exec", {}).get("command", [])
        text = " ".join(cmd)
        if not (cmd[:3] == ["simctl", "service", "call"] and "/sim/describe" in cmd and "--server-key" in cmd
                and "--key" in cmd and f"tcp://127.0.0.1:{port}" in text):
            errors.append(f"{probe}: expected simctl service call /sim/describe on tcp://127.0.0.1:{port} with --server-key and --key")
        t = cmd[cmd.index("--timeout") + 1] if "--timeout" in cmd else None
        if t is None or float(t) >= container[probe].get("timeoutSeconds", 1):
            errors.append(f"{probe}: simctl's --timeout must be below the probe's timeoutSeconds")
    replicas = sts["spec"]["replicas"]
    jobs = {j["metadata"]["name"]: j for j in by_kind("Job")}
    indexed = [j for j in jobs.values() if j["spec"].get("completionMode") == "Indexed"]
    if len(indexed) != 1:
        errors.append(f"expected one Indexed Job (the collection), found {len(indexed)}")
    else:
        spec = indexed[0]["spec"]
        if not (spec["completions"] == spec["parallelism"] == replicas):
            errors.append(f"collect Job: completions {spec['completions']}, parallelism {spec['parallelism']}: "
                          f"expected one per server ({replicas})")
        script = " ".join(indexed[0]["spec"]["template"]["spec"]["containers"][0]["command"])
        if "JOB_COMPLETION_INDEX" not in script or "sim-collect" not in script:
            errors.append("collect Job: its pods must record shard JOB_COMPLETION_INDEX with sim-collect")
    merges = [j for j in jobs.values() if "sim-collect merge" in " ".join(j["spec"]["template"]["spec"]["containers"][0].get("command", []))]
    if len(merges) != 1:
        errors.append(f"expected one merge Job, found {len(merges)}")
    else:
        env = {e["name"]: e.get("value") for e in merges[0]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        if env.get("SHARDS") != str(replicas):
            errors.append(f"merge Job's SHARDS {env.get('SHARDS')} differs from the servers' replicas {replicas}")
    train_jobs = by_kind("ConfigMap")
    for cm in train_jobs:
        for name, text in cm.get("data", {}).items():
            if not name.endswith(".json"):
                continue
            job = json.loads(text)
            scene = job.get("scene")
            if scene and not (repo_scenes / scene.removeprefix("/opt/robosim/Scenes/")).is_dir():
                errors.append(f"train job {name}: scene {scene} is not in Scenes/")
            output = str(job.get("output", ""))
            if not output or output.startswith("/") or ".." in output.split("/"):
                errors.append(f"train job {name}: output {output!r} must be a folder name (sim-train run --outputs DIR)")
            runner = [j for j in jobs.values() if f"/jobs/{name}" in j["spec"]["template"]["spec"]["containers"][0].get("command", [])]
            if len(runner) != 1:
                errors.append(f"train job file {name}: {len(runner)} Jobs run it (expected one)")
            else:
                cmd = runner[0]["spec"]["template"]["spec"]["containers"][0]["command"]
                outputs = cmd[cmd.index("--outputs") + 1] if "--outputs" in cmd else ""
                if not outputs.startswith("/data/"):
                    errors.append(f"train job file {name}: its Job must write on the data volume (--outputs /data/...)")
    return errors


def committed_secrets() -> list[str]:
    errors = []
    tracked = subprocess.run(["git", "ls-files", "deploy/kubernetes"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    for path in tracked:
        if path.endswith((".secret", ".pub")) or ("/keys/" in path and not path.endswith(".gitignore")):
            errors.append(f"{path}: key material is tracked by git")
        if path.endswith((".yaml", ".yml")):
            for doc in yaml.safe_load_all((ROOT / path).read_text()):
                if doc and doc.get("kind") == "Secret":
                    errors.append(f"{path}: a Secret is committed (generate it: secretGenerator)")
    return errors


# ------------------------------------------------------------------------------------------------


def make_keys(copy_root: Path, bin_dir: Path) -> str:
    keys = copy_root / "base/keys"
    simctl = bin_dir / "simctl"
    probe = subprocess.run([str(simctl), "keys", "generate", "--help"], capture_output=True, text=True) if simctl.exists() else None
    if probe is not None and probe.returncode == 0 and "generate" in probe.stdout and "USAGE: simctl keys" in probe.stdout:
        r = subprocess.run([str(copy_root / "make-keys.sh")], env={"SIMCTL": str(simctl), "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RenderError(f"make-keys.sh failed: {r.stdout}{r.stderr}")
        missing = [f"{n}.{e}" for n in KEY_NAMES for e in ("pub", "secret") if not (keys / f"{n}.{e}").exists()]
        if missing:
            raise RenderError(f"make-keys.sh did not write {missing}")
        return "keys from make-keys.sh (simctl keys generate)"
    for n in KEY_NAMES:
        (keys / f"{n}.pub").write_text(f"placeholder public key {n}\n")
        (keys / f"{n}.secret").write_text(f"placeholder secret key {n}\n")
    return "placeholder keys (this simctl has no `keys generate` yet: make-keys.sh not exercised)"


def free_ports() -> int:
    """A port with the next two free as well (ROUTER, XPUB, XSUB)."""
    for _ in range(100):
        base = random.randrange(20000, 60000)
        try:
            for p in range(base, base + 3):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
    raise RenderError("no three free ports")


def container_script(job: dict) -> str:
    return job["spec"]["template"]["spec"]["containers"][0]["command"][-1]


def run_jobs(objects: list[dict], bin_dir: Path, tmp: Path) -> list[str]:
    """Part 6: the Jobs' scripts and job files, run here. Returns the errors."""
    sp = subprocess
    jobs = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Job"}
    collect = next(j for j in jobs.values() if j["spec"].get("completionMode") == "Indexed")
    merge = next(j for j in jobs.values() if "sim-collect merge" in " ".join(j["spec"]["template"]["spec"]["containers"][0]["command"]))
    errors: list[str] = []
    data = tmp / "data"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp), "DATASET": str(data), "SEED_BASE": "1",
           "COLLECT_ARGS": "--policy random", "EPISODES": "3"}
    servers, ports = [], []
    try:
        for i in range(2):
            port = free_ports()
            ports.append(port)
            servers.append(sp.Popen([str(bin_dir / "sim-server"), str(ROOT / "Scenes/test/tbar_push_short"), "--envs", "2",
                                     "--mode", "lockstep", "--listen", f"tcp://127.0.0.1:{port}"],
                                    stdout=sp.DEVNULL, stderr=open(tmp / f"server-{i}.log", "w")))

        def shard(i: int, **extra: str) -> str:
            r = sp.run(["/bin/sh", "-ec", container_script(collect)], capture_output=True, text=True, timeout=120,
                       env={**env, "JOB_COMPLETION_INDEX": str(i), "SERVER": f"tcp://127.0.0.1:{ports[i]}", **extra})
            if r.returncode != 0:
                errors.append(f"collect Job script, shard {i}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
            return r.stdout + r.stderr

        def episodes(folder: Path) -> int:
            return json.loads((folder / "meta/info.json").read_text())["total_episodes"]

        shard(0)
        shard(1)
        again = shard(1)
        if "3 episodes already" not in again:
            errors.append(f"collect Job script: a retried finished shard recorded again: {again[-300:]}")
        resumed = shard(0, EPISODES="5")
        if "2 episodes from" not in resumed or "seed 2 (attempt 2)" not in resumed:
            errors.append(f"collect Job script: a resumed shard did not record the 2 missing episodes with a new seed: {resumed[-300:]}")
        for attempt in (1, 2):
            r = sp.run(["/bin/sh", "-ec", container_script(merge)], capture_output=True, text=True, timeout=120,
                       env={**env, "SHARDS": "2"})
            if r.returncode != 0:
                errors.append(f"merge Job script (run {attempt}): exit {r.returncode}: {r.stderr.strip()[-500:]}")
        if not errors:
            got = [episodes(data / "shard-0"), episodes(data / "shard-1"), episodes(data / "merged")]
            if got != [5, 3, 8]:
                errors.append(f"episodes in shard-0, shard-1, merged: {got}, expected [5, 3, 8]")
            else:
                print("kubernetes: collect Job script: shards of 5 and 3 episodes (one resumed, one retried), "
                      "merge Job script: 8 episodes (its rerun kept them)")
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
    for cm in (o for o in objects if o["kind"] == "ConfigMap"):
        for name, text in cm.get("data", {}).items():
            job = json.loads(text)
            job["scene"] = job["scene"].replace("/opt/robosim/Scenes", str(ROOT / "Scenes"))
            job["steps"] = 2048
            job["eval_episodes"] = 8
            path = tmp / name
            path.write_text(json.dumps(job))
            (tmp / "runs").mkdir(exist_ok=True)
            r = sp.run([str(bin_dir / "sim-train"), "run", str(path), "--outputs", str(tmp / "runs")], capture_output=True,
                       text=True, timeout=300, env={"PATH": env["PATH"], "HOME": str(tmp)}, cwd=tmp)
            if r.returncode != 0 or not (tmp / "runs" / job["output"] / "checkpoint.safetensors").exists():
                errors.append(f"train job file {name}: sim-train run failed: {r.stderr.strip()[-500:]}")
            else:
                print(f"kubernetes: train job file {name}: sim-train run ok (steps cut to 2048)")
    return errors


def unwrapped(o: dict) -> dict:
    """``o`` with a Secret's base64 values on one line: kubectl kustomize wraps them at 76 characters."""
    if o.get("kind") != "Secret" or not isinstance(o.get("data"), dict):
        return o
    return {**o, "data": {k: "".join(str(v).split()) for k, v in o["data"].items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=str(ROOT / ".build/debug"))
    parser.add_argument("--no-jobs", action="store_true", help="do not run the Jobs' scripts here")
    args = parser.parse_args()
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="robosim-k8s-") as tmp:
        copy_root = Path(tmp) / "kubernetes"
        shutil.copytree(DEPLOY, copy_root, ignore=shutil.ignore_patterns("*.pub", "*.secret"))
        try:
            print(f"kubernetes: {make_keys(copy_root, Path(args.bin))}")
        except RenderError as e:
            print(f"kubernetes: error: {e}", file=sys.stderr)
            return 1
        folders = sorted(p.parent for p in copy_root.rglob("kustomization.yaml"))
        rendered: list[Path] = []
        everything: list[dict] = []
        for folder in folders:
            rel = folder.relative_to(copy_root)
            try:
                objects = render(folder)
                theirs = kubectl_render(folder)
            except RenderError as e:
                errors.append(str(e))
                continue
            how = "rendered"
            if theirs is not None:
                ours_by, theirs_by = {key(o): unwrapped(o) for o in objects}, {key(o): unwrapped(o) for o in theirs}
                if ours_by != theirs_by:
                    diff = sorted(set(ours_by) ^ set(theirs_by)) or [k for k in ours_by if ours_by[k] != theirs_by.get(k)]
                    errors.append(f"{rel}: this renderer and kubectl kustomize disagree on {diff}")
                how = "rendered (same objects as kubectl kustomize)"
            out = Path(tmp) / f"{str(rel).replace('/', '-')}.yaml"
            out.write_text(yaml.safe_dump_all(objects, sort_keys=False))
            rendered.append(out)
            everything += objects
            print(f"kubernetes: {rel}: {len(objects)} objects {how}: "
                  + ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objects))
        if not shutil.which("kubectl"):
            print("kubernetes: kubectl not installed: rendered with this script's renderer only")
        for version in VERSIONS:
            ok, out = validate(rendered, version)
            print(f"kubernetes: kubernetes-validate --strict ({version or 'newest'}): {'ok' if ok else 'FAILED'}")
            if not ok:
                errors.append(out)
        errors += policy(everything, ROOT / "Scenes")
        errors += committed_secrets()
        print(f"kubernetes: policy (non-root, read-only, no capabilities, resources, keys, probes, shards): "
              f"{'ok' if not errors else 'see errors'}")

        # Negative checks: these must fail.
        job = next(o for o in everything if o["kind"] == "Job")
        unknown = copy.deepcopy(job)
        unknown["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
        typed = copy.deepcopy(job)
        typed["spec"]["backoffLimit"] = "twice"
        no_resources = copy.deepcopy(job)
        del no_resources["spec"]["template"]["spec"]["containers"][0]["resources"]
        failures = []
        for label, broken in (("an unknown field", unknown), ("a wrongly typed field", typed)):
            path = Path(tmp) / "broken.yaml"
            path.write_text(yaml.safe_dump(broken))
            ok, _ = validate([path], None)
            if ok:
                failures.append(f"a manifest with {label} passed kubernetes-validate --strict")
        if not any("no cpu in resources" in e for e in policy([no_resources] + [o for o in everything if o is not job], ROOT / "Scenes")):
            failures.append("a pod without resources passed the policy check")
        print(f"kubernetes: negative checks (broken manifests fail): {'ok' if not failures else 'FAILED'}")
        errors += failures
        if (Path(args.bin) / "sim-collect").exists() and not args.no_jobs:
            errors += run_jobs(everything, Path(args.bin).resolve(), Path(tmp))
        else:
            print("kubernetes: the Jobs' scripts: SKIPPED (no binaries, or --no-jobs)")
    for e in errors:
        print(f"kubernetes: error: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
