"""An emulated arm64 Linux for the Lambda artifact: a Debian root (mmdebstrap) run under qemu-aarch64-static."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.errors import CodedError
from common.paths import ROOT
from infra.artifact.archive import extract
from thumbnailer.contract import ATTR_ERROR_CODE

DEFAULT_ROOT = ROOT / ".arm64" / "root"
RUNNER_SCRIPT = ROOT / "harness" / "arm64_runner.py"
QEMU = "qemu-aarch64-static"
# Graviton2's core. The default qemu CPU model enables pointer authentication, which trixie's binaries use and qemu
# emulates slowly (a 4 s run takes 18-20 s).
QEMU_CPU = "neoverse-n1"
PYTHON_MINOR = "3.13"
READY_MARKER = ".harness-root.json"


class Arm64Error(CodedError):
    """The emulated environment could not be built or run; `code` (ARM64_...) is stable."""


@dataclass(frozen=True)
class RootSpec:
    """What goes into the arm64 root: Debian trixie carries CPython 3.13 (bookworm has 3.11)."""

    suite: str = "trixie"
    mirror: str = "http://deb.debian.org/debian"
    packages: tuple[str, ...] = ("python3.13", "libstdc++6", "zlib1g")


@dataclass(frozen=True)
class Arm64Root:
    """A ready root folder: its aarch64 python runs under qemu with `-L <path>`."""

    path: Path
    spec: RootSpec

    @property
    def python(self) -> Path:
        return self.path / "usr" / "bin" / f"python{PYTHON_MINOR}"


@dataclass(frozen=True)
class ProcessRun:
    """The outcome of one interpreter process (under qemu or native)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def require_tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise Arm64Error(
            "ARM64_TOOL_MISSING",
            f"Expected {name} on PATH but received nothing "
            "(`make test-arm64` installs qemu-user-static and mmdebstrap with apt-get)",
        )
    return found


def _marker(spec: RootSpec) -> str:
    return json.dumps(asdict(spec), sort_keys=True)


def root_is_ready(path: Path, spec: RootSpec = RootSpec()) -> bool:
    marker = path / READY_MARKER
    return marker.is_file() and marker.read_text() == _marker(spec) and (path / "usr" / "bin" / "python3.13").exists()


def precompile(folder: Path, *, timeout: float = 300.0) -> None:
    """Byte-compile a tree of Python sources with THIS interpreter (it must be the same minor version as the
    emulated one): with PYTHONDONTWRITEBYTECODE set, the emulated python would otherwise recompile every run."""
    if sys.version_info[:2] != tuple(int(x) for x in PYTHON_MINOR.split(".")):
        raise Arm64Error(
            "ARM64_WRONG_NATIVE_PYTHON",
            f"Expected python {PYTHON_MINOR} to precompile {folder} but received "
            f"{sys.version_info.major}.{sys.version_info.minor}",
        )
    # a child process (compileall's worker pool re-imports __main__); -qq: files that never compile (test data with
    # bad syntax) are skipped silently, as Debian does; exit 1 just means "some file did not compile"
    cmd = [sys.executable, "-I", "-m", "compileall", "-qq", "-j", "0", str(folder)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Arm64Error(
            "ARM64_PRECOMPILE_TIMEOUT", f"compileall did not finish {folder} within {timeout:.0f}s"
        ) from None
    if proc.returncode not in (0, 1):
        raise Arm64Error(
            "ARM64_PRECOMPILE_FAILED",
            f"compileall exited {proc.returncode} on {folder}:\n{(proc.stderr or proc.stdout)[-2000:]}",
        )


def ensure_root(path: Path = DEFAULT_ROOT, spec: RootSpec = RootSpec(), *, timeout: float = 600.0) -> Arm64Root:
    """Reuse the root at `path` if it was built from `spec`, else build it (mmdebstrap, extract variant, ~6 s)."""
    path = Path(path)
    if root_is_ready(path, spec):
        return Arm64Root(path, spec)
    mmdebstrap = require_tool("mmdebstrap")
    building = path.with_name(f"{path.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    mode = "root" if os.geteuid() == 0 else "unshare"
    cmd = [
        mmdebstrap,
        f"--mode={mode}",
        "--variant=extract",
        "--arch=arm64",
        "--quiet",
        f"--include={','.join(spec.packages)}",
        spec.suite,
        str(building),
        f"deb {spec.mirror} {spec.suite} main",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Arm64Error("ARM64_ROOT_TIMEOUT", f"mmdebstrap did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise Arm64Error(
            "ARM64_ROOT_FAILED", f"mmdebstrap exited {proc.returncode}:\n{(proc.stderr or proc.stdout)[-3000:]}"
        )
    # merged-/usr links: without them the aarch64 loader (/lib/ld-linux-aarch64.so.1) is not found
    for link in ("lib", "bin", "sbin"):
        target = building / link
        if not target.exists() and not target.is_symlink():
            target.symlink_to(f"usr/{link}")
    precompile(building / "usr" / "lib" / f"python{PYTHON_MINOR}")
    (building / READY_MARKER).write_text(_marker(spec))
    if root_is_ready(path, spec):  # another process finished the same root meanwhile: keep theirs
        shutil.rmtree(building, ignore_errors=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
        building.rename(path)
    return Arm64Root(path, spec)


def run_python(
    root: Arm64Root,
    args: Sequence[str],
    *,
    timeout: float = 300.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRun:
    """Run the root's aarch64 python (isolated mode, no site) under qemu without binfmt; bounded by `timeout`.

    Host paths that do not exist inside the root are read from the host (qemu's -L lookup falls back), so scripts,
    artifacts and outputs can live anywhere outside the root.
    """
    qemu = require_tool(QEMU)
    cmd = [qemu, "-L", str(root.path), str(root.python), "-I", "-S", *args]
    run_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "QEMU_CPU": QEMU_CPU}
    run_env.update(env or {})
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=run_env, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise Arm64Error(
            "ARM64_RUN_TIMEOUT", f"emulated python did not finish within {timeout:.0f}s: {' '.join(args)}"
        ) from exc
    return ProcessRun(tuple(cmd), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def run_native_python(
    python: Path | str, args: Sequence[str], *, timeout: float = 300.0, env: Mapping[str, str] | None = None
) -> ProcessRun:
    """The same isolated invocation with a native interpreter (the x86_64 reference run)."""
    cmd = [str(python), "-I", "-S", *args]
    run_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    run_env.update(env or {})
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=run_env)
    except subprocess.TimeoutExpired as exc:
        raise Arm64Error("ARM64_RUN_TIMEOUT", f"native python did not finish within {timeout:.0f}s") from exc
    return ProcessRun(tuple(cmd), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


@dataclass(frozen=True)
class HandlerRun:
    """One run of the real handler from an unpacked artifact: the runner's JSON report (None if it wrote none),
    exit code, stderr, wall time, and where the outputs are (<out>/<backend>/<output key>)."""

    report: dict[str, Any] | None
    returncode: int
    stderr: str
    seconds: float
    out: Path
    emulated: bool


def run_handler(
    zip_path: Path,
    workdir: Path,
    inputs: Path,
    keys: Sequence[str],
    *,
    root: Arm64Root | None,
    backends: Sequence[str] = ("pillow", "vips"),
    precompile_code: bool = False,
    timeout: float = 300.0,
) -> HandlerRun:
    """Unpack `zip_path` as Lambda does and run the handler on `keys` (paths below `inputs`) with the artifact's own
    interpreter: the arm64 one under qemu if `root`, else this (native) interpreter.

    `precompile_code` byte-compiles the unpacked code natively first (same .pyc as the emulated 3.13 would write),
    which is far cheaper than compiling under emulation.
    """
    site = extract(zip_path, Path(workdir) / "task")
    if precompile_code:
        precompile(site)
    out, report_path = Path(workdir) / "out", Path(workdir) / "report.json"
    report_path.unlink(missing_ok=True)
    args = [
        str(RUNNER_SCRIPT),
        "--site",
        str(site),
        "--inputs",
        str(inputs),
        "--out",
        str(out),
        "--report",
        str(report_path),
        *[a for k in keys for a in ("--key", k)],
        *[a for b in backends for a in ("--backend", b)],
    ]
    env = {"VIPS_CONCURRENCY": "1"}
    if root is not None:
        run = run_python(root, args, timeout=timeout, env=env)
    else:
        run = run_native_python(sys.executable, args, timeout=timeout, env=env)
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    return HandlerRun(report, run.returncode, run.stderr, run.seconds, out, root is not None)


def summarize(run: HandlerRun) -> str:
    """A few lines per backend: import and handling time, thumbnails written, dead letters, failures."""
    where = "emulated arm64 (qemu, QEMU_CPU=%s)" % QEMU_CPU if run.emulated else "native"
    lines = [
        f"{where}: exit {run.returncode}, wall {run.seconds:.1f} s (emulation: NOT a measure of ARM64 speed)"
        if run.emulated
        else f"{where}: exit {run.returncode}, wall {run.seconds:.1f} s"
    ]
    if run.report is None:
        return "\n".join(lines + [f"  no report; stderr: {run.stderr[-1500:]}"])
    lines[0] += f", {run.report['machine']} python {run.report['python']}"
    for backend, entry in run.report["backends"].items():
        if "import_error" in entry or "crash" in entry:
            lines.append(f"  {backend}: FAILED {entry.get('import_error') or entry['crash'].splitlines()[-1]}")
            continue
        codes = sorted({m["attributes"][ATTR_ERROR_CODE] for m in entry["dead_letters"]})
        lines.append(
            f"  {backend}: import {entry['import_s']:.1f} s, handle {entry['handle_s']:.1f} s, "
            f"{len(entry['puts'])} thumbnails, {len(entry['dead_letters'])} dead letters {codes}, "
            f"{len(entry['batch_item_failures'])} batch item failures"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m harness.arm64`: run the handler from the arm64 zip under qemu on a folder of images."""
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(prog="python -m harness.arm64", description=main.__doc__)
    ap.add_argument(
        "--zip",
        type=Path,
        default=ROOT / ".package" / "lambda-arm64.zip",
        help="artifact to run (default .package/lambda-arm64.zip; `make package` builds it)",
    )
    ap.add_argument(
        "--inputs",
        type=Path,
        default=ROOT / "fixtures" / "generated",
        help="folder of images; every file is one upload (default fixtures/generated)",
    )
    ap.add_argument("--native", action="store_true", help="run with this interpreter instead (an x86_64 zip)")
    ap.add_argument("--backend", action="append", choices=("pillow", "vips"), help="default: both")
    args = ap.parse_args(argv)
    if not args.zip.is_file():
        ap.error(f"Expected an artifact zip for --zip but received {str(args.zip)!r} (run `make package`)")
    if not args.inputs.is_dir():
        ap.error(f"Expected a folder of images for --inputs but received {str(args.inputs)!r}")
    keys = sorted(
        p.relative_to(args.inputs).as_posix()
        for p in args.inputs.rglob("*")
        if p.is_file() and p.suffix.lower() != ".json"
    )
    try:
        root = None if args.native else ensure_root()
        with tempfile.TemporaryDirectory(prefix="arm64-run-") as work:
            run = run_handler(
                args.zip,
                Path(work),
                args.inputs,
                keys,
                root=root,
                backends=tuple(args.backend or ("pillow", "vips")),
                precompile_code=True,
            )
    except Arm64Error as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    print(f"{len(keys)} inputs from {args.inputs}")
    print(summarize(run))
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
