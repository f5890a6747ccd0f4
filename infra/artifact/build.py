"""Build the Lambda zip for one architecture: handlers/ plus the pinned manylinux wheels (pip), then check it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from common.paths import HANDLERS_DIR, PACKAGE_DIR
from infra.artifact.archive import write_zip
from infra.artifact.checks import check_artifact
from infra.artifact.options import BuildOptions
from infra.artifact.pins import PYTHON_VERSION, pyvips_pin
from infra.artifact.report import ArtifactReport
from infra.artifact.runtime import GLIBC_MAX, MANYLINUX_MIN_MINOR, WHEEL_ARCH
from infra.errors import ArtifactError, ArtifactErrorCode

# Not needed at run time in Lambda: scripts, byte code caches (and the dependencies' own test suites).
EXCLUDED_PARTS: frozenset[str] = frozenset({"__pycache__", "bin"})
EXCLUDED_SUFFIXES: tuple[str, ...] = (".pyc", ".pyo")


def platform_args(wheel_arch: str) -> list[str]:
    """pip does not widen a newer manylinux tag to older ones: name every manylinux_2_N from 17 to 34."""
    suffix = WHEEL_ARCH[wheel_arch]
    args = ["--platform", f"manylinux2014_{suffix}"]
    for minor in range(MANYLINUX_MIN_MINOR, GLIBC_MAX[1] + 1):
        args += ["--platform", f"manylinux_2_{minor}_{suffix}"]
    return args


def _pip(python: str, args: list[str], what: str, timeout: float) -> None:
    cmd = [python, "-m", "pip", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ArtifactError(ArtifactErrorCode.PIP_TIMEOUT, f"pip did not finish {what} within {timeout:.0f}s") from None
    if proc.returncode != 0:
        noise = "is ignored: it is neither a file nor a directory"
        tail = "\n".join(ln for ln in (proc.stderr + proc.stdout).splitlines() if noise not in ln)[-3000:]
        raise ArtifactError(ArtifactErrorCode.PIP_FAILED, f"pip failed while {what} (exit {proc.returncode}):\n{tail}")


def _iter_sources(site: Path, handlers: Path) -> Iterator[tuple[Path, str]]:
    def walk(
        base: Path, skip_top: frozenset[str], skip_dirs: frozenset[str] = EXCLUDED_PARTS
    ) -> Iterator[tuple[Path, str]]:
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(base)
            if not p.is_file() or rel.parts[0] in skip_top or skip_dirs & set(rel.parts[:-1]):
                continue
            if any(part.startswith(".") for part in rel.parts):  # editor/tool droppings (.mypy_cache, .DS_Store)
                continue
            if p.suffix in EXCLUDED_SUFFIXES:
                continue
            yield p, rel.as_posix()

    yield from walk(handlers, frozenset({"tests", "seed"}))  # seed: the Node.js replica, its own zip (seed_artifact)
    yield from walk(site, frozenset({"bin"}), skip_dirs=EXCLUDED_PARTS | {"tests"})


def default_output(arch: str) -> Path:
    return PACKAGE_DIR / f"lambda-{arch}.zip"


def build_artifact(
    options: BuildOptions,
    out: Path | None = None,
    *,
    handlers: Path = HANDLERS_DIR,
    python: str | None = None,
    check: bool = True,
    timeout: float = 600.0,
    compresslevel: int = 6,
) -> ArtifactReport:
    """Build the zip for `options.arch` and check it; raises ArtifactError (ARTIFACT_CHECK_FAILED) if `check`
    and any check fails. `python` runs pip (default: this interpreter); tests trade size for speed with
    `compresslevel=1`."""
    python = python or sys.executable
    out = Path(out) if out else default_output(options.arch)
    if not (handlers / "thumbnailer").is_dir():
        raise ArtifactError(
            ArtifactErrorCode.HANDLER_MISSING, f"Expected a thumbnailer package in {handlers} but received none"
        )
    wheel_arch = options.wheel_arch or options.arch
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"build-{options.arch}-", dir=out.parent) as tmp:
        wheels, site = Path(tmp) / "wheels", Path(tmp) / "site"
        _pip(
            python,
            ["wheel", "--no-deps", "--quiet", "-w", str(wheels), pyvips_pin(options.arch)],
            "building the pyvips wheel",
            timeout,
        )
        _pip(
            python,
            [
                "install",
                "--quiet",
                "--no-compile",
                "--target",
                str(site),
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                options.python_version,
                *platform_args(wheel_arch),
                "--find-links",
                str(wheels),
                *options.requirements,
            ],
            f"installing {wheel_arch} wheels for python {options.python_version}",
            timeout,
        )
        write_zip(_iter_sources(site, handlers), out, compresslevel)
    report = check_artifact(out, options.arch, PYTHON_VERSION)
    out.with_suffix(".json").write_text(report.to_json() + "\n")
    if check and not report.ok:
        raise ArtifactError(
            ArtifactErrorCode.CHECK_FAILED,
            f"{out.name} failed {len(report.problems)} check(s)",
            problems=report.problems,
        )
    return report
