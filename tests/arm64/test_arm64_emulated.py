"""The arm64 zip runs the real handler under qemu-aarch64 and matches native x86_64; bad zips fail to load."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from harness import arm64

pytestmark = pytest.mark.arm64

BACKENDS = ("pillow", "vips")
MEAN_TOLERANCE = 1.5  # mean absolute channel difference, 0-255
FAR_TOLERANCE = 0.002  # share of channel values more than 16 levels apart
# compiled modules the handler's imports go through (the first one that cannot load names the failure)
BINARY_MODULES = ("_multiarray_umath", "_imaging", "_cffi_backend", "_libvips")


def image_distance(a: bytes, b: bytes) -> tuple[tuple[int, int], tuple[int, int], float, float]:
    """(size a, size b, mean absolute channel difference 0-255, share of channel values more than 16 apart)."""
    from PIL import Image, ImageChops

    ia, ib = Image.open(io.BytesIO(a)), Image.open(io.BytesIO(b))
    if ia.size != ib.size:
        return ia.size, ib.size, 255.0, 1.0
    mode = "RGBA" if "A" in ia.getbands() or "A" in ib.getbands() else "RGB"
    hist = ImageChops.difference(ia.convert(mode), ib.convert(mode)).histogram()
    total = sum(hist)
    mean = sum((i % 256) * n for i, n in enumerate(hist)) / total
    far = sum(n for i, n in enumerate(hist) if i % 256 > 16) / total
    return ia.size, ib.size, mean, far


def _report(run: arm64.HandlerRun) -> dict[str, Any]:
    where = "emulated arm64" if run.emulated else "native x86_64"
    assert run.returncode == 0 and run.report, f"{where} run failed (exit {run.returncode}):\n{run.stderr[-4000:]}"
    for backend in BACKENDS:
        entry = run.report["backends"][backend]
        assert "import_error" not in entry and "crash" not in entry, entry
    return run.report


def _by_source(entry: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """source key -> {output key: put} for one backend's run."""
    from urllib.parse import unquote

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for put in entry["puts"]:
        out.setdefault(unquote(put["metadata"]["source-key"]), {})[put["key"]] = put
    return out


def _dead_letter_codes(entry: dict[str, Any]) -> dict[str, str]:
    return {m["body"]["source"]["key"]: m["attributes"]["error_code"] for m in entry["dead_letters"]}


def test_emulated_run_is_really_aarch64_from_the_artifact(
    emulated_run: arm64.HandlerRun, native_run: arm64.HandlerRun
) -> None:
    emulated, native = _report(emulated_run), _report(native_run)

    assert emulated["machine"] == "aarch64"
    assert emulated["python"].startswith("3.13.")
    assert native["machine"] == "x86_64"
    for backend in BACKENDS:
        files = emulated["backends"][backend]["module_files"]
        # handler code, Powertools and the compiled extensions all came from the unpacked zip
        assert all(path.startswith(emulated["site"]) for path in files.values()), files
    assert "aarch64" in emulated["backends"]["pillow"]["module_files"]["PIL._imaging"]


def test_same_outcomes_on_both_machines(emulated_run: arm64.HandlerRun, native_run: arm64.HandlerRun) -> None:
    emulated, native = _report(emulated_run), _report(native_run)
    for backend in BACKENDS:
        e, n = emulated["backends"][backend], native["backends"][backend]
        assert e["batch_item_failures"] == n["batch_item_failures"] == [], (e["batch_item_failures"], backend)
        # the truncated JPEG (tests/arm64/conftest.py `inputs`) is dead-lettered on both: equal and non-empty
        assert _dead_letter_codes(e) == _dead_letter_codes(n) == {"uploads/bad/truncated.jpg": "CORRUPT_IMAGE"}, backend
        assert _by_source(e).keys() == _by_source(n).keys(), backend
        for put in e["puts"]:  # the handler's contract holds on arm64 too
            assert put["content_type"].startswith("image/") and put["metadata"]["backend"] == backend
            assert put["metadata"]["run-id"] == "arm64-check"


def _compare(emulated: arm64.HandlerRun, native: arm64.HandlerRun, backend: str, prefix: str) -> int:
    e_sources = _by_source(_report(emulated)["backends"][backend])
    n_sources = _by_source(_report(native)["backends"][backend])
    sources = sorted(k for k in n_sources if k.startswith(prefix))
    compared = 0
    for source in sources:
        assert e_sources.get(source, {}).keys() == n_sources[source].keys(), source
        for out_key, n in n_sources[source].items():
            e = e_sources[source][out_key]
            dims = (int(n["metadata"]["width"]), int(n["metadata"]["height"]))
            assert (int(e["metadata"]["width"]), int(e["metadata"]["height"])) == dims, out_key
            assert e["content_type"] == n["content_type"], out_key
            bucket = n["bucket"]
            size_e, size_n, mean, far = image_distance(
                (emulated.out / backend / out_key).read_bytes(), (native.out / backend / out_key).read_bytes()
            )
            assert size_e == size_n == dims, out_key
            assert mean <= MEAN_TOLERANCE and far <= FAR_TOLERANCE, (
                f"{bucket}/{out_key}: mean {mean:.2f}, far {far:.4f}"
            )
            compared += 1
    return compared


@pytest.mark.parametrize("backend", BACKENDS)
def test_arm64_thumbnails_match_x86_64(
    emulated_run: arm64.HandlerRun, native_run: arm64.HandlerRun, backend: str
) -> None:
    # 3 generated inputs x 2 sizes
    assert _compare(emulated_run, native_run, backend, "uploads/gen/") == 6


@pytest.mark.corpora
@pytest.mark.parametrize("backend", BACKENDS)
def test_arm64_thumbnails_match_x86_64_on_corpora(
    shared_corpora: Path, emulated_run: arm64.HandlerRun, native_run: arm64.HandlerRun, backend: str
) -> None:
    assert _compare(emulated_run, native_run, backend, "uploads/corpora/") >= 2


def test_exif_orientation_applied_on_arm64(emulated_run: arm64.HandlerRun) -> None:
    report = _report(emulated_run)
    for backend in BACKENDS:
        puts = _by_source(report["backends"][backend])["uploads/gen/photo exif6.jpg"].values()
        assert len(puts) == 2
        # stored 2400x1600 with EXIF orientation 6: upright outputs are portrait
        assert all(int(p["metadata"]["height"]) > int(p["metadata"]["width"]) for p in puts), puts


@pytest.mark.parametrize("bad", ["x86_64-wheels", "cp311-wheels"])
def test_emulated_run_fails_on_a_bad_artifact(
    bad: str,
    bad_zips: dict[str, Path],
    arm64_root: arm64.Arm64Root,
    inputs: tuple[Path, tuple[str, ...]],
    tmp_path: Path,
) -> None:
    # GIVEN an arm64 zip holding x86_64 or cp311 binaries WHEN the emulated arm64 python 3.13 runs the handler
    bucket, keys = inputs
    run = arm64.run_handler(bad_zips[bad], tmp_path, bucket, keys[:1], root=arm64_root, precompile_code=True)

    # THEN neither backend loads, and the reason is a compiled extension that IS in the zip but cannot load
    assert run.returncode != 0
    assert run.report is not None, run.stderr[-3000:]
    with zipfile.ZipFile(bad_zips[bad]) as zf:
        names = zf.namelist()
    for backend in BACKENDS:
        error = run.report["backends"][backend].get("import_error", "")
        culprit = next((m for m in BINARY_MODULES if m in error), None)
        assert culprit, f"{backend}: {error!r}"
        assert any(Path(n).name.startswith(culprit + ".") for n in names), f"{culprit} is not even in the zip"
