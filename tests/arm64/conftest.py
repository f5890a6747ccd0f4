"""Fixtures for the arm64 package tests: built artifacts (good and deliberately bad), the emulated root, test images."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from common.paths import SHARED_CORPORA
from harness import arm64
from infra.artifact.build import build_artifact
from infra.artifact.options import BuildOptions
from infra.artifact.pins import REQUIREMENTS

# A few real files from the shared corpora join the run when that folder exists (their test skips otherwise).
CORPORA_FILES = (
    "exif-orientation/Landscape_6.jpg",
    "exif-orientation/Portrait_8.jpg",
    "pngsuite/png/basn6a16.png",
    "pngsuite/png/tbrn2c08.png",
    "pngsuite/png/basn3p04.png",
)


@pytest.fixture(scope="session")
def arm64_tools() -> None:
    missing = [t for t in (arm64.QEMU, "mmdebstrap") if not shutil.which(t)]
    if missing:
        # In CI a missing tool is a broken setup, not a reason to pass quietly.
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing: `make test-arm64` (or `make arm64-tools`) installs them")
        pytest.skip(f"{', '.join(missing)} not installed: run `make test-arm64`, which installs them with apt-get")


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("package")


def _build(package_dir: Path, name: str, options: BuildOptions) -> Path:
    out = package_dir / f"{name}.zip"
    build_artifact(options, out, check=False, compresslevel=1)  # level 1: faster, checks unaffected
    return out


@pytest.fixture(scope="session")
def arm64_zip(package_dir: Path) -> Path:
    return _build(package_dir, "lambda-arm64", BuildOptions(arch="arm64"))


@pytest.fixture(scope="session")
def x86_64_zip(package_dir: Path) -> Path:
    return _build(package_dir, "lambda-x86_64", BuildOptions(arch="x86_64"))


# The real requirements, numpy unpinned (numpy 2.5 publishes no cp311 wheels).
BAD_REQUIREMENTS = tuple(r for r in REQUIREMENTS if not r.startswith("numpy")) + ("numpy>=2,<3",)


@pytest.fixture(scope="session")
def bad_zips(package_dir: Path) -> dict[str, Path]:
    """arm64 artifacts that are wrong the ways a real build goes wrong: x86_64 wheels, CPython 3.11 wheels."""
    return {
        "x86_64-wheels": _build(
            package_dir,
            "bad-x86_64-wheels",
            BuildOptions(arch="arm64", wheel_arch="x86_64", requirements=BAD_REQUIREMENTS),
        ),
        "cp311-wheels": _build(
            package_dir,
            "bad-cp311-wheels",
            BuildOptions(arch="arm64", python_version="3.11", requirements=BAD_REQUIREMENTS),
        ),
    }


@pytest.fixture(scope="session")
def arm64_root(arm64_tools: None) -> arm64.Arm64Root:
    return arm64.ensure_root(arm64.DEFAULT_ROOT)


def _photo_like(width: int, height: int) -> Any:
    """Gradients + shapes + seeded noise: deterministic, and not flat (so resampling differences would show)."""
    import random

    from PIL import Image, ImageDraw, ImageFilter

    im = Image.linear_gradient("L").resize((width, height))
    rgb = Image.merge(
        "RGB",
        (
            im,
            im.transpose(Image.Transpose.ROTATE_90).resize((width, height)),
            Image.radial_gradient("L").resize((width, height)),
        ),
    )
    draw = ImageDraw.Draw(rgb)
    for i in range(12):
        x, y = (i * 137) % width, (i * 89) % height
        draw.ellipse((x, y, x + width // 6, y + height // 5), fill=((i * 40) % 256, (i * 90) % 256, (i * 20) % 256))
        draw.line((0, (i * 53) % height, width, (i * 97) % height), fill=(255, 255, 255), width=3)
    noise = Image.frombytes("L", (width, height), random.Random(8).randbytes(width * height)).convert("RGB")
    return Image.blend(rgb, noise, 0.12).filter(ImageFilter.SMOOTH)


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[str, ...]]:
    """The source 'bucket': generated images under uploads/ (+ a few corpora files when present)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("bucket")
    up = root / "uploads"
    (up / "gen").mkdir(parents=True)
    photo = _photo_like(2400, 1600)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: outputs must come out portrait on both machines
    photo.save(up / "gen" / "photo exif6.jpg", quality=90, exif=exif)
    photo.save(up / "gen" / "progressive.jpg", quality=85, progressive=True)
    rgba = _photo_like(900, 700).convert("RGBA")
    rgba.putalpha(Image.radial_gradient("L").resize((900, 700)))
    rgba.save(up / "gen" / "alpha.png")
    (up / "bad").mkdir()
    jpeg = (up / "gen" / "progressive.jpg").read_bytes()
    (up / "bad" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])  # must end in the DLQ on both machines
    keys = [p.relative_to(root).as_posix() for p in sorted(up.rglob("*")) if p.is_file()]
    for rel in CORPORA_FILES:
        src = SHARED_CORPORA / rel
        if src.is_file():
            dst = up / "corpora" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            keys.append(dst.relative_to(root).as_posix())
    return root, tuple(keys)


Bucket = tuple[Path, tuple[str, ...]]


@pytest.fixture(scope="session")
def native_run(x86_64_zip: Path, inputs: Bucket, tmp_path_factory: pytest.TempPathFactory) -> arm64.HandlerRun:
    return arm64.run_handler(x86_64_zip, tmp_path_factory.mktemp("native"), *inputs, root=None)


@pytest.fixture(scope="session")
def emulated_run(
    arm64_zip: Path, arm64_root: arm64.Arm64Root, inputs: Bucket, tmp_path_factory: pytest.TempPathFactory
) -> arm64.HandlerRun:
    return arm64.run_handler(
        arm64_zip, tmp_path_factory.mktemp("emulated"), *inputs, root=arm64_root, precompile_code=True
    )
