"""Inputs of the emulator image build made on the host: the wheelhouse (pip commands per target architecture)."""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common.errors import CodedError, expected
from common.paths import LOCK_DIR, ROOT
from harness import paths

DOCKER_DIR = ROOT / "docker"
WHEELHOUSE_ROOT = DOCKER_DIR / "wheelhouse"
EMULATOR_REQUIREMENTS = paths.REQUIREMENTS_DIR / "emulator.txt"
EMULATOR_CONSTRAINTS = paths.REQUIREMENTS_DIR / "emulator-constraints.txt"
EMULATOR_LOCK = LOCK_DIR / "emulator.txt"  # the versions the image installs (as the embedded emulator venv)
LAYER_LOCK = LOCK_DIR / "project.txt"  # the project venv's versions: the layer's
PYTHON_VERSION = "3.13"  # LocalStack 2026.3 needs exactly 3.13

# Docker's architecture names -> the manylinux platform tags pip may download for them (newest glibc last).
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    "amd64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64", "manylinux_2_36_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64", "manylinux_2_36_aarch64"),
}
_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class DockerImageError(CodedError):
    """The image's build inputs could not be prepared; `code` is stable (UNKNOWN_ARCH, PIP_FAILED, NO_PYTHON313)."""


def native_arch(machine: str | None = None) -> str:
    """This host's architecture in Docker's words (amd64, arm64)."""
    machine = machine or platform.machine()
    try:
        return _MACHINES[machine.lower()]
    except KeyError:
        raise DockerImageError("UNKNOWN_ARCH", expected("x86_64 or aarch64", "the host machine", machine)) from None


def _check_arch(arch: str) -> str:
    if arch not in PLATFORM_TAGS:
        raise DockerImageError("UNKNOWN_ARCH", expected(" or ".join(PLATFORM_TAGS), "--arch", arch))
    return arch


@dataclass(frozen=True)
class WheelhousePlan:
    """The pip commands that fill `out` with every wheel the image needs for `arch`."""

    arch: str
    out: Path
    commands: tuple[tuple[str, ...], ...]


def _docker_script(module: str) -> object:
    """A stdlib-only module of docker/ (the same code the image build runs)."""
    sys.path.insert(0, str(DOCKER_DIR))
    try:
        return __import__(module)
    finally:
        sys.path.remove(str(DOCKER_DIR))


def layer_requirements() -> list[str]:
    """The function layer's requirement lines (docker/layer_requirements.py)."""
    return list(_docker_script("layer_requirements").layer_requirements(ROOT / "pyproject.toml"))  # type: ignore[attr-defined]


def write_pins(lock: Path, out: Path) -> Path | None:
    """`name==version` constraints from a lock file (docker/lock_pins.py), or None when the lock is absent."""
    if not lock.is_file():
        return None
    out.write_text("".join(f"{pin}\n" for pin in _docker_script("lock_pins").lock_pins(lock)))  # type: ignore[attr-defined]
    return out


def plan_wheelhouse(
    arch: str,
    out: Path,
    *,
    python: Path,
    native: str,
    emulator_pins: Path | None = None,
    layer_pins: Path | None = None,
) -> WheelhousePlan:
    """Native: `pip wheel` with a CPython 3.13 (builds sdist-only packages such as pyvips). Another architecture:
    `pip download --only-binary=:all:` for its platform, finding the pure wheels built natively in the native folder."""
    _check_arch(arch)
    emulator: tuple[str, ...] = ("-r", str(EMULATOR_REQUIREMENTS), "-c", str(EMULATOR_CONSTRAINTS))
    if emulator_pins is not None:
        emulator += ("-c", str(emulator_pins))
    layer: tuple[str, ...] = tuple(layer_requirements())
    if layer_pins is not None:
        layer += ("-c", str(layer_pins))
    build_tools: tuple[str, ...] = (
        "setuptools>=69",
        "wheel",
    )  # to build harness/executor inside the image without an index
    pip = (str(python), "-m", "pip")
    commands: tuple[tuple[str, ...], ...]
    if arch == native:
        # --find-links out: wheels already there (pyvips built from its sdist) are reused, byte for byte
        wheel = (*pip, "wheel", "-q", "--wheel-dir", str(out), "--find-links", str(out))
        commands = (wheel + emulator, wheel + layer, wheel + build_tools)
    else:
        native_dir = out.parent / native
        download = (
            *pip,
            "download",
            "-q",
            "--dest",
            str(out),
            "--only-binary=:all:",
            *[f"--platform={tag}" for tag in PLATFORM_TAGS[arch]],
            "--platform=any",
            f"--python-version={PYTHON_VERSION}",
            "--implementation=cp",
            "--abi=cp313",
            "--abi=abi3",
            "--abi=none",
            "--find-links",
            str(native_dir),
        )
        commands = (download + emulator, download + layer, download + build_tools)
    return WheelhousePlan(arch, out, commands)


def build_wheelhouse(plan: WheelhousePlan) -> None:
    plan.out.mkdir(parents=True, exist_ok=True)
    for command in plan.commands:
        result = subprocess.run(list(command), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            noise = "is ignored: it is neither a file nor a directory"
            said = "\n".join(line for line in (result.stderr or result.stdout).splitlines() if noise not in line)
            raise DockerImageError("PIP_FAILED", f"{' '.join(command[:4])} ... failed:\n{said[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.docker_image", description=__doc__)
    parser.add_argument("--arch", default=None, help="amd64 or arm64 (default: this host's)")
    parser.add_argument("--python", required=True, type=Path, help="a CPython 3.13 interpreter with pip")
    parser.add_argument("--out", type=Path, default=None, help="default: docker/wheelhouse/<arch>")
    parser.add_argument("--clean", action="store_true", help="empty the folder first")
    args = parser.parse_args(argv)
    try:
        native = native_arch()
        arch = _check_arch(args.arch or native)
        out = (args.out or WHEELHOUSE_ROOT / arch).resolve()
        version = subprocess.run(
            [str(args.python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if arch == native and version != PYTHON_VERSION:
            raise DockerImageError(
                "NO_PYTHON313",
                expected(f"a CPython {PYTHON_VERSION}", "--python", f"{args.python} (Python {version or '?'})"),
            )
        if args.clean and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        pins = {
            "emulator_pins": write_pins(EMULATOR_LOCK, out / "emulator-pins.txt"),
            "layer_pins": write_pins(LAYER_LOCK, out / "layer-pins.txt"),
        }
        build_wheelhouse(plan_wheelhouse(arch, out, python=args.python, native=native, **pins))
    except DockerImageError as exc:
        print(f"error {exc}", file=sys.stderr)
        return 2
    wheels = sorted(out.glob("*.whl"))
    print(f"wheelhouse {out}: {len(wheels)} wheels for linux/{arch}, cp313")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
