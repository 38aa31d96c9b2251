"""Checks the container recipe (Dockerfile, .dockerignore) without a Docker engine.

1. The Dockerfile, parsed with dockerfile-parse: stages build (swift:6.3-bookworm), test (FROM build) and
   runtime (debian:bookworm-slim, last); the README's two commands run in the build and test stages; the
   runtime stage runs as a numeric non-root user, has a WORKDIR and an exec-form ENTRYPOINT that runs
   sim-server; no ADD (never of a URL); apt installs without recommends and drops its lists; every
   COPY --from names an earlier stage; .dockerignore keeps build outputs, venvs and key material out.
2. The runtime stage's packages against what the binaries load: ldd of every product the build stage
   stages (its PRODUCTS argument) and of the libraries beside them, plus what they dlopen (the render
   backends named in Sources/CMuJoCo/render.c, Mesa's EGL vendor and DRI driver) and the executables they
   spawn (ffmpeg); each library is mapped to its Debian package with dpkg -S, and each package must be in
   the runtime stage's apt list or what that list (or debian:bookworm-slim's base) pulls in
   (apt-cache depends, first alternatives). Swift runtime libraries, MuJoCo and the products' own
   libraries must be copied by the runtime stage from the build stage instead.
3. Self-tests: broken copies of the Dockerfile (USER root, an ADD of a URL, libzmq5 left out of the apt
   list) must fail, so the checks can fail.

Usage: python scripts/check_container.py [--bin DIR]   (default: .build/debug). Exit 0 when all pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parent.parent
SWIFT_IMAGE = "swift:6.3-bookworm"
RUNTIME_IMAGE = "debian:bookworm-slim"
# What debian:bookworm-slim has before any apt-get install (its essential set, approximated by the
# dependency closure of these).
SLIM_BASE = ["apt", "base-files", "bash", "coreutils", "dpkg", "libc-bin", "mawk", "tar", "debianutils"]
# ldconfig -p's name for this machine's libraries (ldd and dpkg answer for the machine that runs the check).
LDCONFIG_ARCH = {"x86_64": "x86-64", "aarch64": "AArch64"}
DOCKERIGNORE_REQUIRED = [".git", ".build", ".venv", "runs", "deploy/kubernetes/base/keys", "**/*.secret"]


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[dict] = field(default_factory=list)

    def runs(self) -> list[str]:
        return [i["value"] for i in self.instructions if i["instruction"] == "RUN"]

    def of(self, kind: str) -> list[dict]:
        return [i for i in self.instructions if i["instruction"] == kind]


def parse_stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Splits the Dockerfile into stages; global ARG defaults are substituted in FROM lines."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Dockerfile"
        path.write_text(text)
        structure = DockerfileParser(path=str(path)).structure
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in structure:
        kind = ins["instruction"]
        if kind == "COMMENT":
            continue
        if kind == "FROM":
            words = ins["value"].split()
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args.get(m.group(1) or m.group(2), m.group(0)), words[0])
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else str(len(stages))
            stages.append(Stage(name=name, base=base))
        elif not stages:
            if kind == "ARG":
                key, _, value = ins["value"].partition("=")
                global_args[key.strip()] = value.strip().strip('"')
        else:
            stages[-1].instructions.append(ins)
    return global_args, stages


def stage_arg(stage: Stage, name: str) -> str | None:
    for ins in stage.of("ARG"):
        key, _, value = ins["value"].partition("=")
        if key.strip() == name:
            return value.strip().strip('"')
    return None


def apt_installs(stage: Stage) -> tuple[list[str], list[str]]:
    """The packages a stage's RUN lines apt-get install, and problems with how they do it."""
    packages: list[str] = []
    problems: list[str] = []
    for run in stage.runs():
        for command in re.split(r"&&|\|\|", run):
            if "apt-get" not in command:
                continue
            words = shlex.split(command.replace("\\\n", " "))
            words = [w for w in words if not re.fullmatch(r"\w+=\S*", w)]  # DEBIAN_FRONTEND=...
            if len(words) >= 2 and words[0] == "apt-get" and "install" in words:
                if "--no-install-recommends" not in words:
                    problems.append(f"stage {stage.name}: apt-get install without --no-install-recommends")
                after = words[words.index("install") + 1:]
                packages += [w for w in after if not w.startswith("-")]
        if "apt-get install" in run and stage.name == "runtime":
            if "apt-get update" not in run:
                problems.append("stage runtime: apt-get install without apt-get update in the same RUN")
            if "rm -rf /var/lib/apt/lists" not in run:
                problems.append("stage runtime: the apt lists stay in the image (rm -rf /var/lib/apt/lists/*)")
    return packages, problems


def check_dockerfile(text: str, dockerignore: str | None) -> list[str]:
    """Structure checks (part 1). Returns the errors."""
    errors: list[str] = []
    _, stages = parse_stages(text)
    names = [s.name for s in stages]
    by_name = {s.name: s for s in stages}
    if names != ["build", "test", "runtime"]:
        errors.append(f"stages are {names}, expected build, test, runtime (runtime last: the default target)")
    build, test, runtime = by_name.get("build"), by_name.get("test"), by_name.get("runtime")
    if build and build.base != SWIFT_IMAGE:
        errors.append(f"build stage is FROM {build.base}, expected {SWIFT_IMAGE}")
    if test and test.base != "build":
        errors.append(f"test stage is FROM {test.base}, expected build")
    if runtime and runtime.base != RUNTIME_IMAGE:
        errors.append(f"runtime stage is FROM {runtime.base}, expected {RUNTIME_IMAGE}")
    for stage in stages:
        if stage.base.endswith(":latest") or (":" not in stage.base and stage.base not in names):
            errors.append(f"stage {stage.name}: base image {stage.base} has no fixed tag")
        for ins in stage.of("ADD"):
            if re.search(r"\b[a-z][a-z0-9+.-]*://|git@", ins["value"]):
                errors.append(f"line {ins['startline'] + 1}: ADD of a URL ({ins['value']}): download in a RUN with a checksum")
            else:
                errors.append(f"line {ins['startline'] + 1}: ADD ({ins['value']}): use COPY")
        for ins in stage.of("COPY"):
            m = re.search(r"--from=(\S+)", ins["value"])
            if m and m.group(1) not in names[: names.index(stage.name)]:
                errors.append(f"line {ins['startline'] + 1}: COPY --from={m.group(1)} is not an earlier stage")
            if "keys" in ins["value"] and "deploy" in ins["value"]:
                errors.append(f"line {ins['startline'] + 1}: key material copied into the image")
    if build:
        if not any(re.search(r"scripts/setup\.sh\s*&&\s*scripts/run\.sh", r) for r in build.runs()):
            errors.append("build stage does not RUN the README's first command (scripts/setup.sh && scripts/run.sh)")
        if not stage_arg(build, "PRODUCTS"):
            errors.append("build stage has no PRODUCTS argument (the programs the runtime image carries)")
    if test and not any(re.search(r"(^|\s)scripts/test\.sh\b", r) for r in test.runs()):
        errors.append("test stage does not RUN the README's second command (scripts/test.sh)")
    if runtime:
        users = runtime.of("USER")
        if not users:
            errors.append("runtime stage has no USER: it would run as root")
        else:
            user = users[-1]["value"].split(":")[0].strip()
            if not user.isdigit() or int(user) == 0:
                errors.append(f"runtime stage's USER is {user!r}: use a numeric non-root uid (Kubernetes runAsNonRoot checks numbers)")
        if not runtime.of("WORKDIR"):
            errors.append("runtime stage has no WORKDIR")
        entry = runtime.of("ENTRYPOINT")
        if not entry:
            errors.append("runtime stage has no ENTRYPOINT")
        else:
            try:
                argv = json.loads(entry[-1]["value"])
            except json.JSONDecodeError:
                argv = None
            if not isinstance(argv, list):
                errors.append("ENTRYPOINT is in shell form: signals would not reach sim-server (use the JSON form)")
            else:
                program = argv[argv.index("--") + 1] if "--" in argv else argv[0]
                if os.path.basename(program) != "sim-server":
                    errors.append(f"ENTRYPOINT runs {program}, expected sim-server")
        if not any("--from=build" in c["value"] and "/usr/local/lib/libmujoco" in c["value"] for c in runtime.of("COPY")):
            errors.append("runtime stage does not copy MuJoCo's library (/usr/local/lib/libmujoco.so*) from build")
        if not any("--from=build" in c["value"] and "swift-lib" in c["value"] for c in runtime.of("COPY")):
            errors.append("runtime stage does not copy the Swift runtime libraries the build stage staged")
    for stage in stages:
        _, problems = apt_installs(stage)
        errors += problems
    if dockerignore is None:
        errors.append(".dockerignore is missing: the build context would carry .build, .venv and keys")
    else:
        entries = {line.strip() for line in dockerignore.splitlines() if line.strip() and not line.startswith("#")}
        for required in DOCKERIGNORE_REQUIRED:
            if required not in entries:
                errors.append(f".dockerignore does not exclude {required}")
    return errors


# ------------------------------------------------------------------------------------------------
# Part 2: runtime libraries


def run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def ldd(path: str) -> dict[str, str | None]:
    """soname -> resolved path (None: not found)."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    libs: dict[str, str | None] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (not found|(\S+))", line)
        if m:
            libs[m.group(1)] = None if m.group(2) == "not found" else m.group(3)
    return libs


def ldconfig_path(soname: str) -> str | None:
    for line in run(["/sbin/ldconfig", "-p"]).splitlines():
        m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if m and m.group(1) == soname and LDCONFIG_ARCH.get(platform.machine(), "") in m.group(2):
            return m.group(3)
    return None


def dpkg_packages(paths: list[str]) -> dict[str, str]:
    """path -> Debian package, for the paths dpkg knows (one dpkg -S call; /usr-merged paths tried both ways)."""
    variants: dict[str, str] = {}
    for path in paths:
        for p in {path, os.path.realpath(path)}:
            variants[p] = path
            if p.startswith("/usr/lib/"):
                variants[p[len("/usr"):]] = path
            elif p.startswith("/lib/"):
                variants["/usr" + p] = path
    out = subprocess.run(["dpkg", "-S", *variants], capture_output=True, text=True).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        owner, _, file = line.partition(": ")
        if file in variants:
            found.setdefault(variants[file], owner.split(",")[0].split(":")[0].strip())
    return found


def dlopened_libraries() -> list[tuple[str, str]]:
    """(soname, why) for what the render backends dlopen: the first name of each candidate list in
    render.c that this machine has."""
    source = (ROOT / "Sources/CMuJoCo/render.c").read_text()
    found: list[tuple[str, str]] = []
    for m in re.finditer(r"names\[\]\s*=\s*\{([^}]*)\}", source):
        names = re.findall(r'"([^"]+)"', m.group(1))
        for name in names:
            if ldconfig_path(name):
                found.append((name, f"dlopened by the render backend (render.c: {', '.join(names)})"))
                break
        else:
            found.append((names[0], "dlopened by the render backend: NOT FOUND on this machine"))
    return found


def mesa_indirect() -> list[tuple[str, str]]:
    """Mesa's EGL vendor library (glvnd loads it by its JSON) and the DRI driver EGL and OSMesa use."""
    out: list[tuple[str, str]] = []
    for vendor in sorted(Path("/usr/share/glvnd/egl_vendor.d").glob("*mesa*.json")):
        lib = json.loads(vendor.read_text())["ICD"]["library_path"]
        out.append((lib, f"EGL vendor ({vendor.name})"))
    for dri in sorted(Path("/usr/lib").glob("*-linux-gnu/dri/swrast_dri.so"))[:1]:
        out.append((str(dri), "Mesa's software DRI driver (EGL surfaceless)"))
    return out


_GRAPH: dict[str, list[str]] = {}


def _load_graph(roots: list[str]) -> list[str]:
    """Adds the roots' recursive dependency listing (apt-cache depends) to _GRAPH; returns apt's errors."""
    r = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
         "--no-breaks", "--no-replaces", "--no-enhances", *roots],
        capture_output=True, text=True)
    current = None
    pending_virtual = False
    in_alternatives = False
    for line in r.stdout.splitlines():
        if not line.startswith(" "):
            current = line.strip()
            _GRAPH.setdefault(current, [])
            pending_virtual = in_alternatives = False
            continue
        m = re.match(r"\s*(\|?)(Pre)?Depends: (\S+)", line)
        if m:
            alternative, dep = m.group(1) == "|", m.group(3)
            take = not in_alternatives
            in_alternatives = alternative
            pending_virtual = False
            if take:
                if dep.startswith("<"):
                    pending_virtual = True
                else:
                    _GRAPH[current].append(dep.split(":")[0])
            continue
        if pending_virtual and re.match(r"\s{4}\S", line):
            _GRAPH[current].append(line.strip().split(":")[0])
            pending_virtual = False
    return [line for line in r.stderr.splitlines() if line.startswith("E:")]


def dependency_closure(roots: list[str]) -> tuple[set[str], list[str]]:
    """Packages the roots pull in (Depends and PreDepends, first alternative, first provider of a
    virtual package), from apt-cache's recursive listing (loaded once per root)."""
    roots = [r.split(":")[0] for r in roots]
    missing = [r for r in roots if r not in _GRAPH]
    errors = _load_graph(missing) if missing else []
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        stack += _GRAPH.get(p, [])
    return seen, errors


@dataclass
class Need:
    what: str  # the library or executable
    why: str  # who needs it
    package: str | None = None  # Debian package
    staged: str | None = None  # copied from the build stage instead


def runtime_needs(bin_dir: Path, products: list[str]) -> tuple[list[Need], list[str]]:
    errors: list[str] = []
    needs: dict[str, Need] = {}
    objects = [(bin_dir / p, p) for p in products]
    objects += [(p, p.name) for p in sorted(bin_dir.glob("lib*.so"))]
    extra = dlopened_libraries() + mesa_indirect()
    for path, name in objects:
        if not path.exists():
            errors.append(f"{path} is missing (build it first: swift build)")
            continue
        for soname, resolved in ldd(str(path)).items():
            if resolved is None:
                errors.append(f"{name}: {soname} not found by ldd")
            else:
                needs.setdefault(resolved, Need(resolved, name))
    for soname, why in extra:
        resolved = soname if soname.startswith("/") else ldconfig_path(soname)
        if resolved is None:
            errors.append(f"{soname}: {why}")
            continue
        needs.setdefault(resolved, Need(resolved, why))
        for sub, sub_path in ldd(resolved).items():
            if sub_path:
                needs.setdefault(sub_path, Need(sub_path, f"{os.path.basename(resolved)} ({why})"))
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        errors.append("ffmpeg is not installed: sim-collect and sim-train spawn it")
    else:
        needs[ffmpeg] = Need(ffmpeg, "spawned by sim-collect and sim-train (ClientKit.VideoEncoder)")
        encoders = run([ffmpeg, "-hide_banner", "-encoders"])
        for encoder in ("libsvtav1", "libx264"):
            if encoder not in encoders:
                errors.append(f"Debian's ffmpeg lacks the {encoder} encoder the collector asks for")
    bin_real = os.path.realpath(bin_dir)
    for need in needs.values():
        real = os.path.realpath(need.what)
        if os.path.dirname(real) == bin_real:
            need.staged = "beside the products (/opt/robosim/bin, found through $ORIGIN)"
        elif "/lib/swift/linux/" in real:
            need.staged = "Swift runtime (staged by ldd in the build stage)"
        elif os.path.basename(real).startswith("libmujoco.so"):
            need.staged = "MuJoCo (/usr/local/lib from the wheel)"
    packages = dpkg_packages([n.what for n in needs.values() if not n.staged])
    for need in needs.values():
        if not need.staged:
            need.package = packages.get(need.what)
            if need.package is None:
                errors.append(f"{need.what} (needed by {need.why}) belongs to no Debian package")
    return list(needs.values()), errors


def check_runtime_packages(text: str, needs: list[Need], verbose: bool) -> list[str]:
    """Part 2: every Debian package the needs map to comes with the runtime stage. Returns the errors."""
    _, stages = parse_stages(text)
    by_name = {s.name: s for s in stages}
    if "runtime" not in by_name:
        return ["no runtime stage"]
    wanted, _ = apt_installs(by_name["runtime"])
    errors: list[str] = []
    provided, apt_errors = dependency_closure(wanted)
    errors += [f"runtime apt list: {e}" for e in apt_errors]
    base, _ = dependency_closure(SLIM_BASE)
    by_package: dict[str, list[Need]] = {}
    for need in needs:
        if need.package:
            by_package.setdefault(need.package, []).append(need)
    for package, its in sorted(by_package.items()):
        if package in wanted:
            how = "listed"
        elif package in provided:
            how = "pulled in by the list"
        elif package in base:
            how = "in debian:bookworm-slim"
        else:
            files = ", ".join(sorted({os.path.basename(n.what) for n in its}))
            whys = ", ".join(sorted({n.why for n in its}))
            errors.append(f"package {package} ({files}; needed by {whys}) is not installed by the runtime stage")
            continue
        if verbose:
            print(f"  {package:24} {how:24} {', '.join(sorted({os.path.basename(n.what) for n in its}))}")
    needed = set(by_package)
    for p in wanted:
        if p not in ("ca-certificates", "tini") and not (dependency_closure([p])[0] & needed):
            errors.append(f"runtime apt list installs {p}, which nothing found needs (ldd, dlopen, spawned programs)")
    if verbose:
        staged = sorted({n.staged for n in needs if n.staged})
        print(f"  from the build stage: {len([n for n in needs if n.staged])} libraries ({'; '.join(staged)})")
    return errors


# ------------------------------------------------------------------------------------------------


def self_tests(text: str, dockerignore: str, needs: list[Need] | None) -> list[str]:
    """Broken copies must fail: the checks can fail."""
    failures: list[str] = []
    cases = [
        ("USER root", text.replace("USER 10001:10001", "USER root"), "USER is 'root'", False),
        ("ADD of a URL", text.replace("WORKDIR /opt/robosim", "ADD https://example.com/tool.tar.gz /opt/\nWORKDIR /opt/robosim"),
         "ADD of a URL", False),
        ("no test stage", re.sub(r"FROM build AS test\nRUN scripts/test.sh\n", "", text), "expected build, test, runtime", False),
        ("libosmesa6 left out", text.replace(" libosmesa6 ", " "), "package libosmesa6", True),
    ]
    for label, broken, expected, runtime in cases:
        if runtime and needs is None:
            continue
        if broken == text:
            failures.append(f"self-test {label}: the mutation did not apply (the Dockerfile changed shape?)")
            continue
        errors = check_runtime_packages(broken, needs, False) if runtime else check_dockerfile(broken, dockerignore)
        if not any(expected in e for e in errors):
            failures.append(f"self-test {label}: a broken Dockerfile passed (expected an error with {expected!r}; got {errors})")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=str(ROOT / ".build/debug"), help="where the built products are")
    parser.add_argument("--dockerfile", default=str(ROOT / "Dockerfile"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    text = Path(args.dockerfile).read_text()
    ignore_path = Path(args.dockerfile).parent / ".dockerignore"
    dockerignore = ignore_path.read_text() if ignore_path.exists() else None
    verbose = not args.quiet

    errors = check_dockerfile(text, dockerignore)
    print(f"container: Dockerfile structure: {'ok' if not errors else f'{len(errors)} errors'}")
    needs = None
    if shutil.which("dpkg") and shutil.which("apt-cache"):
        _, stages = parse_stages(text)
        build = next((s for s in stages if s.name == "build"), None)
        products = (stage_arg(build, "PRODUCTS") or "").split() if build else []
        needs, runtime_errors = runtime_needs(Path(args.bin), products)
        if verbose:
            print(f"container: what {len(products)} products in {args.bin} load, by Debian package (how the runtime image gets it):")
        runtime_errors += check_runtime_packages(text, needs, verbose)
        print(f"container: runtime libraries: {'ok' if not runtime_errors else f'{len(runtime_errors)} errors'}")
        errors += runtime_errors
    else:
        print("container: runtime libraries: SKIPPED (no dpkg/apt-cache: not a Debian machine)")
    tests = self_tests(text, dockerignore or "", needs)
    print(f"container: self-tests (broken Dockerfiles fail): {'ok' if not tests else 'FAILED'}")
    errors += tests
    for e in errors:
        print(f"container: error: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
