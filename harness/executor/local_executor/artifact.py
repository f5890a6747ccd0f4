"""Artifact mode: run a function from its own deployment zip on a Lambda-like interpreter, nothing of the project venv.

A function whose environment has HARNESS_CODE_MODE=artifact (the stack knob `code=artifact`) runs from the unpacked
zip (LocalStack's unzipped code = Lambda's /var/task) with a CPython 3.13 of the function's architecture:
- the host's architecture: a native CPython 3.13 (HARNESS_ARTIFACT_PYTHON, else the base interpreter of the project
  venv, else python3.13 on PATH), checked to be 3.13 and of that machine;
- arm64 on an x86_64 host: the aarch64 python3.13 of a Debian trixie root (HARNESS_ARM64_ROOT, default
  <repo>/.arm64/root, what `make test-arm64` builds) under qemu-aarch64-static with QEMU_CPU=neoverse-n1.
The interpreter runs with -s -S -P (no user site, no site-packages, no script folder) and a PYTHONPATH the executor
writes itself: the artifact, then the modules the Lambda runtime provides (boto3, botocore, ... copied from the
emulator's own environment, pure Python), as /var/task and the runtime's site-packages are on AWS. (-I would also
ignore PYTHONPATH and PYTHONUNBUFFERED, so the isolation is spelled out instead.) The plugin cannot import harness/,
so the few facts shared with harness/arm64.py (the root's layout, the qemu CPU) are repeated here.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .languages import PYTHON_BOOTSTRAP, Launch, RuntimeUnavailable
from .runtimes import write_json_atomic

LOG = logging.getLogger("localstack.harness.local_executor")

CODE_MODE_ENV = "HARNESS_CODE_MODE"
CODE_MODES = ("venv", "artifact")
PYTHON_MINOR = "3.13"
# Graviton2's core, as harness/arm64.py: qemu's default model emulates pointer authentication slowly (4 s -> 18 s)
QEMU_CPU = "neoverse-n1"
QEMU = {"arm64": "qemu-aarch64-static", "x86_64": "qemu-x86_64-static"}
MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
ROOT_MARKER = ".harness-root.json"  # written by harness.arm64.ensure_root once the root is complete
# What AWS's python3.13 runtime carries and the zip need not (infra/artifact/runtime.py RUNTIME_MODULES)
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six")
ISOLATION_FLAGS = ("-s", "-S", "-P")
_PROBE = "import platform, sys; print(sys.version.split()[0], platform.machine())"


@dataclass(frozen=True)
class ArtifactSettings:
    """HARNESS_ARTIFACT_PYTHON  native CPython 3.13 for artifact mode (default: base interpreter of the project venv,
                                else python3.13 on PATH)
    HARNESS_ARM64_ROOT         arm64 root folder for emulated functions (default <repo>/.arm64/root)
    HARNESS_QEMU_AARCH64       qemu user-mode binary (default qemu-aarch64-static on PATH)
    """

    python: Path | None
    venv_python: Path
    arm64_root: Path
    qemu_aarch64: str
    state_dir: Path  # where the runtime-provided modules and the per-function mode records go

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, repo_root: Path, venv_python: Path, state_dir: Path
    ) -> ArtifactSettings:
        return cls(
            python=Path(env["HARNESS_ARTIFACT_PYTHON"]) if env.get("HARNESS_ARTIFACT_PYTHON") else None,
            venv_python=venv_python,
            arm64_root=Path(env.get("HARNESS_ARM64_ROOT") or repo_root / ".arm64" / "root"),
            qemu_aarch64=env.get("HARNESS_QEMU_AARCH64") or QEMU["arm64"],
            state_dir=state_dir,
        )


@dataclass(frozen=True)
class Interpreter:
    """The program that runs an artifact-mode environment, as the status line and the function's log name it."""

    arch: str
    prefix: tuple[str, ...]  # argv before the script: [qemu, -L, root,] python, flags
    env: Mapping[str, str]
    version: str  # "3.13.5"
    emulated: bool

    @property
    def description(self) -> str:
        python = self.prefix[3] if self.emulated else self.prefix[0]
        how = (
            f"under {Path(self.prefix[0]).name} (QEMU_CPU={QEMU_CPU}) with root {self.prefix[2]}"
            if self.emulated
            else "native"
        )
        return f"CPython {self.version} {self.arch} {python} {how}"


def host_arch(machine: str | None = None) -> str:
    raw = machine or platform.machine()
    try:
        return MACHINES[raw.lower()]
    except KeyError:
        raise RuntimeUnavailable(
            "ARTIFACT_HOST_UNSUPPORTED", f"Expected an x86_64 or aarch64 host but received {raw!r}"
        ) from None


def code_mode(environment: Mapping[str, Any] | None) -> str:
    """venv (the default) or artifact, from the function's environment; anything else is refused."""
    value = str((environment or {}).get(CODE_MODE_ENV) or "venv")
    if value not in CODE_MODES:
        raise RuntimeUnavailable(
            "INVALID_CODE_MODE", f"Expected one of {'|'.join(CODE_MODES)} for {CODE_MODE_ENV} but received {value!r}"
        )
    return value


def function_arch(architectures: Any) -> str:
    """The function's Architectures ([Architecture.arm64] or ["arm64"]) as "arm64" | "x86_64" (AWS default x86_64)."""
    first = (list(architectures or []) or ["x86_64"])[0]
    return str(getattr(first, "value", first))


def base_python(venv_python: Path) -> Path | None:
    """The interpreter a venv was made from (pyvenv.cfg `home`), so artifact mode never runs the venv itself."""
    cfg = venv_python.parent.parent / "pyvenv.cfg"
    try:
        lines = cfg.read_text().splitlines()
    except OSError:
        return None
    home = next((ln.split("=", 1)[1].strip() for ln in lines if ln.split("=", 1)[0].strip() == "home"), None)
    if not home:
        return None
    for name in (f"python{PYTHON_MINOR}", "python3"):
        candidate = Path(home) / name
        if candidate.exists():
            return candidate
    return None


def native_candidates(s: ArtifactSettings) -> list[Path]:
    if s.python is not None:
        return [s.python]
    out = [p for p in (base_python(s.venv_python),) if p is not None]
    on_path = shutil.which(f"python{PYTHON_MINOR}", path="/usr/local/bin:/usr/bin:/bin")
    if on_path:
        out.append(Path(on_path))
    return out


_probes: dict[tuple[str, ...], tuple[str, str] | None] = {}
_lock = threading.RLock()  # reentrant: building the runtime modules compiles them with a probed interpreter


def probe(prefix: tuple[str, ...], env: Mapping[str, str]) -> tuple[str, str] | None:
    """(version, machine) of an interpreter command, cached; None when it does not run."""
    with _lock:
        if prefix in _probes:
            return _probes[prefix]
    try:
        out = subprocess.run(
            [*prefix, "-c", _PROBE], capture_output=True, text=True, timeout=120, env=dict(env), check=False
        )
        parts = out.stdout.split()
        found = (parts[0], MACHINES.get(parts[1], parts[1])) if out.returncode == 0 and len(parts) == 2 else None
    except (OSError, subprocess.SubprocessError):
        found = None
    with _lock:
        _probes[prefix] = found
    return found


def _check(found: tuple[str, str] | None, arch: str, what: str) -> str:
    if found is None:
        raise RuntimeUnavailable(
            "ARTIFACT_PYTHON_FAILED", f"Expected a working CPython {PYTHON_MINOR} at {what} but it did not run"
        )
    version, machine = found
    if not version.startswith(PYTHON_MINOR + ".") or machine != arch:
        raise RuntimeUnavailable(
            "ARTIFACT_PYTHON_MISMATCH",
            f"Expected CPython {PYTHON_MINOR} for {arch} at {what} but received {version} for {machine}",
        )
    return version


def find_interpreter(arch: str, s: ArtifactSettings, machine: str | None = None) -> Interpreter:
    """The interpreter for a function of `arch`: native when it is the host's, else qemu with the arm64 root."""
    base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    if arch == host_arch(machine):
        candidates = native_candidates(s)
        problems = []
        for python in candidates:
            prefix: tuple[str, ...] = (str(python), *ISOLATION_FLAGS)
            try:
                version = _check(probe(prefix, base_env), arch, str(python))
            except RuntimeUnavailable as exc:
                problems.append(str(exc))
                continue
            return Interpreter(arch, prefix, base_env, version, emulated=False)
        raise RuntimeUnavailable(
            "ARTIFACT_PYTHON_NOT_FOUND",
            f"Expected a native CPython {PYTHON_MINOR} for {arch} (HARNESS_ARTIFACT_PYTHON, the project venv's base "
            f"interpreter or python{PYTHON_MINOR} on PATH) but received "
            + ("; ".join(problems) if problems else "none"),
        )
    if arch != "arm64":
        raise RuntimeUnavailable(
            "ARTIFACT_ARCH_UNSUPPORTED",
            f"Expected arm64 or the host's {host_arch(machine)} for artifact mode but received {arch!r}",
        )
    root = s.arm64_root
    python = root / "usr" / "bin" / f"python{PYTHON_MINOR}"
    if not (root / ROOT_MARKER).is_file() or not python.exists():
        raise RuntimeUnavailable(
            "ARM64_ROOT_MISSING",
            f"Expected an arm64 root with python{PYTHON_MINOR} at {root} but received none "
            "(run `make test-arm64` or `python -m harness.arm64`, or set HARNESS_ARM64_ROOT)",
        )
    qemu = shutil.which(s.qemu_aarch64) if not os.path.isabs(s.qemu_aarch64) else s.qemu_aarch64
    if not qemu or not os.path.exists(qemu):
        raise RuntimeUnavailable(
            "ARM64_TOOL_MISSING",
            f"Expected {s.qemu_aarch64} on PATH but received nothing (`make arm64-tools` installs qemu-user-static)",
        )
    env = dict(base_env, QEMU_CPU=QEMU_CPU)
    prefix = (qemu, "-L", str(root), str(python), *ISOLATION_FLAGS)
    version = _check(probe(prefix, env), arch, f"{python} under {qemu}")
    return Interpreter(arch, prefix, env, version, emulated=True)


def runtime_modules_dir(s: ArtifactSettings) -> Path:
    """A folder with what the Lambda runtime provides (boto3 & co, pure Python), copied once from this process's
    own environment by the files each distribution records; reused while the versions stay the same."""
    try:
        dists = [metadata.distribution(name) for name in RUNTIME_DISTRIBUTIONS]
    except metadata.PackageNotFoundError as exc:
        raise RuntimeUnavailable(
            "ARTIFACT_RUNTIME_MODULES_MISSING",
            f"Expected {', '.join(RUNTIME_DISTRIBUTIONS)} in the emulator's environment but received no {exc.name}",
        ) from exc
    key = "-".join(f"{d.metadata['Name']}{d.version}" for d in dists).replace(" ", "")
    target = s.state_dir / "lambda-runtime" / f"python{PYTHON_MINOR}"
    stamp = target / ".harness-runtime.json"
    with _lock:
        if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
            return target
        building = target.with_name(f"{target.name}.building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        for dist in dists:
            for file in dist.files or ():
                rel = Path(str(file))
                if rel.is_absolute() or ".." in rel.parts or "__pycache__" in rel.parts or rel.suffix == ".pyc":
                    continue  # scripts outside site-packages, caches
                src = Path(str(dist.locate_file(file)))
                if src.is_file():
                    dest = building / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dest)
        _compile_natively(building, s)
        (building / stamp.name).write_text(json.dumps({"key": key}))
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        building.rename(target)
    return target


_compiled: set[str] = set()


def precompile(code_dir: Path, s: ArtifactSettings) -> None:
    """Byte-compile the unpacked zip with a native 3.13 (same .pyc as the emulated 3.13): without it every emulated
    environment would compile Pillow, numpy and powertools under qemu at each cold start. Best effort."""
    with _lock:
        if str(code_dir) in _compiled:
            return
    _compile_natively(code_dir, s)
    with _lock:
        _compiled.add(str(code_dir))


def _compile_natively(folder: Path, s: ArtifactSettings) -> None:
    try:
        native = find_interpreter(host_arch(), s)
        cmd = [native.prefix[0], "-I", "-m", "compileall", "-qq", "-j", "0", str(folder)]
        subprocess.run(cmd, capture_output=True, timeout=300, env=dict(native.env), check=False)
    except (RuntimeUnavailable, OSError, subprocess.SubprocessError) as exc:
        LOG.warning("could not precompile %s natively (%s): emulated cold starts compile it", folder, exc)


@dataclass(frozen=True)
class ModeRecord:
    """What `harness status` shows per function: <state>/code-modes/<function>.json, written at environment start."""

    function_name: str
    code_mode: str
    arch: str
    interpreter: str
    emulated: bool


def write_mode_record(s: ArtifactSettings, record: ModeRecord) -> None:
    write_json_atomic(s.state_dir / "code-modes" / f"{record.function_name}.json", asdict(record))


def artifact_launch(function_name: str, config: Any, s: ArtifactSettings, *, venv_python: Path) -> Launch | None:
    """The Launch of an artifact-mode function (None in venv mode, where languages.launch_for decides); records the
    mode either way for python functions so the status line can name the interpreter."""
    runtime = str(getattr(config.runtime, "value", config.runtime) or "")
    if not runtime.startswith("python3"):
        return None
    mode = code_mode(config.environment)
    arch = function_arch(config.architectures)
    if mode == "venv":
        write_mode_record(
            s, ModeRecord(function_name, mode, arch, f"{venv_python} (project venv, host {host_arch()})", False)
        )
        return None
    if runtime != f"python{PYTHON_MINOR}":
        raise RuntimeUnavailable(
            "ARTIFACT_RUNTIME_UNSUPPORTED", f"Expected python{PYTHON_MINOR} for artifact mode but received {runtime!r}"
        )
    code_dir = Path(str(config.code.get_unzipped_code_location()))
    interpreter = find_interpreter(arch, s)
    if interpreter.emulated:
        precompile(code_dir, s)
    layer = runtime_modules_dir(s)
    env = dict(interpreter.env)
    env["PYTHONPATH"] = f"{code_dir}{os.pathsep}{layer}"
    env["HARNESS_CODE_MODE"] = mode
    _log_once(function_name, f"artifact mode: {interpreter.description}, PYTHONPATH {env['PYTHONPATH']}")
    write_mode_record(s, ModeRecord(function_name, mode, arch, interpreter.description, interpreter.emulated))
    return Launch(argv=(*interpreter.prefix, str(PYTHON_BOOTSTRAP)), env=env)


_logged: set[tuple[str, str]] = set()


def _log_once(function_name: str, line: str) -> None:
    """Name the interpreter in LocalStack's log at the first environment of each function and mode."""
    with _lock:
        if (function_name, line) in _logged:
            return
        _logged.add((function_name, line))
    LOG.info("%s: %s", function_name, line)
