"""Real-world corpora on both backends: 18 EXIF-orientation JPEGs come out upright; PngSuite valid vs corrupt files."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from thumbnailer.errors import PermanentError
from thumbnailer.resizers import ResizeSpec, SizeSpec, get_resizer

from .conftest import BACKENDS
from .imaging import grey, ssim

pytestmark = [pytest.mark.corpora, pytest.mark.parametrize("backend", BACKENDS)]

SPEC = ResizeSpec(sizes=(SizeSpec("m", 400, 400), SizeSpec("s", 64, 64)), format="png")
ORIENTATION_FILES = [f"{kind}_{i}.jpg" for kind in ("Landscape", "Portrait") for i in range(9)]


@pytest.mark.parametrize("name", ORIENTATION_FILES)
def test_every_exif_orientation_comes_out_upright(backend: str, name: str, shared_corpora: Path) -> None:
    folder = shared_corpora / "exif-orientation"
    resizer = get_resizer(backend)
    reference = resizer.resize((folder / f"{name.split('_')[0]}_1.jpg").read_bytes(), SPEC).outputs[0]
    out = resizer.resize((folder / name).read_bytes(), SPEC).outputs[0]
    assert (out.width, out.height) == (reference.width, reference.height)
    score = ssim(grey(out.data), grey(reference.data))
    # measured 0.98-1.00 when upright; a flipped or rotated output scores 0.18-0.51
    assert score > 0.95, f"{name}: SSIM {score:.3f} against the orientation-1 image"
    im = Image.open(io.BytesIO(out.data))
    flipped = max(
        ssim(grey(im.transpose(t)), grey(reference.data))
        for t in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM)
    )
    assert score > flipped + 0.3


def _pngsuite(shared: Path) -> list[Path]:
    files = sorted((shared / "pngsuite" / "png").glob("*.png"))
    assert len(files) > 150, "PngSuite looks incomplete"
    return files


def test_every_valid_pngsuite_file_gives_a_thumbnail(backend: str, shared_corpora: Path) -> None:
    resizer = get_resizer(backend)
    failures = []
    valid = [p for p in _pngsuite(shared_corpora) if not p.name.startswith("x")]
    for path in valid:
        try:
            result = resizer.resize(path.read_bytes(), ResizeSpec())
        except Exception as exc:  # noqa: BLE001 - collect every failure for one readable report
            failures.append(f"{path.name}: {exc!r}")
            continue
        src = Image.open(path)
        for thumb in result.outputs:
            im = Image.open(io.BytesIO(thumb.data))
            im.load()
            if im.size != (thumb.width, thumb.height) or thumb.width > max(src.size) or thumb.width < 1:
                failures.append(f"{path.name}: {thumb.name} is {im.size}")
    assert not failures, "\n".join(failures)
    assert len(valid) >= 150


def test_every_corrupt_pngsuite_file_is_rejected_with_a_permanent_code(backend: str, shared_corpora: Path) -> None:
    resizer = get_resizer(backend)
    corrupt = [p for p in _pngsuite(shared_corpora) if p.name.startswith("x")]
    assert len(corrupt) == 14
    outcomes = {}
    for path in corrupt:
        with pytest.raises(PermanentError) as info:
            resizer.resize(path.read_bytes(), ResizeSpec())
        outcomes[path.name] = info.value.code
    assert set(outcomes.values()) <= {"CORRUPT_IMAGE", "UNSUPPORTED_FORMAT"}, outcomes
