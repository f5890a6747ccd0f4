"""The vips backend's Pillow encoders (pil_encode.py) write the bytes libvips' own JPEG and WebP savers write, with
every EXIF orientation applied the same way."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thumbnailer.resizers import ResizeSpec, SizeSpec, get_resizer
from thumbnailer.resizers.pil_encode import can_encode, encode

from .imaging import photo

pytestmark = pytest.mark.vips

SPEC = ResizeSpec(sizes=(SizeSpec("large", 1024, 1024), SizeSpec("small", 256, 256), SizeSpec("odd", 333, 77)))
GENERATED = ("jpeg-12mp-exif6.jpg", "png-palette-trns.png", "webp-photo.webp", "gif-animated.gif", "jpeg-p3-icc.jpg")


def _encoded(im: Image.Image, fmt: str, **opts: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **opts)  # type: ignore[arg-type]
    return buf.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _synthetic() -> dict[str, bytes]:
    rotated = {
        f"rgb jpeg, orientation {o}": _encoded(photo(700, 500, "RGB"), "JPEG", quality=92, exif=_exif(o))
        for o in range(1, 9)
    }
    return {
        **rotated,
        "rgb jpeg 1800x1200, orientation 6": _encoded(photo(1800, 1200, "RGB"), "JPEG", quality=92, exif=_exif(6)),
        "rgba webp, orientation 8 -> webp": _encoded(photo(900, 700, "RGBA"), "WEBP", quality=90, exif=_exif(8)),
        "rgba png -> webp": _encoded(photo(1300, 900, "RGBA"), "PNG"),
        "grey png -> grey jpeg (libvips' saver)": _encoded(photo(900, 700, "L"), "PNG"),
        "rgb png -> jpeg": _encoded(photo(1100, 800, "RGB"), "PNG"),
    }


def _inputs(generated_fixtures: Path) -> dict[str, bytes]:
    return {**_synthetic(), **{n: (generated_fixtures / n).read_bytes() for n in GENERATED}}


def test_every_output_has_the_bytes_of_libvips_savers(generated_fixtures: Path) -> None:
    # GIVEN the same resizer with Pillow's encoders (default) and with libvips' savers
    fast, reference = get_resizer("vips"), get_resizer("vips", pil_encoders=False)
    for name, data in _inputs(generated_fixtures).items():
        # WHEN both make every size THEN every output is byte for byte the same (format, size and pixels follow)
        a, b = fast.resize(data, SPEC), reference.resize(data, SPEC)
        assert [(t.name, t.width, t.height, t.format) for t in a.outputs] == [
            (t.name, t.width, t.height, t.format) for t in b.outputs
        ], name
        for x, y in zip(a.outputs, b.outputs, strict=True):
            assert x.data == y.data, f"{name}: {x.name} ({len(x.data)} vs {len(y.data)} bytes)"


def test_jpeg_has_no_jfif_segment_and_no_metadata() -> None:
    rgb = np.asarray(photo(64, 48, "RGB")).tobytes()
    data = encode(rgb, 64, 48, 3, "jpeg", 80)
    assert data[:2] == b"\xff\xd8" and data[2:4] != b"\xff\xe0"  # SOI, then straight to the tables
    im = Image.open(io.BytesIO(data))
    assert (im.size, im.mode, im.info.get("progressive", 0)) == ((64, 48), "RGB", 0)
    assert "exif" not in im.info and "icc_profile" not in im.info
    webp = Image.open(io.BytesIO(encode(np.asarray(photo(64, 48, "RGBA")).tobytes(), 64, 48, 4, "webp", 80)))
    assert (webp.size, webp.mode) == ((64, 48), "RGBA") and "exif" not in webp.info and "icc_profile" not in webp.info


@pytest.mark.parametrize(
    ("fmt", "bands", "band_format", "ok"),
    [
        ("jpeg", 3, "uchar", True),
        ("webp", 3, "uchar", True),
        ("webp", 4, "uchar", True),
        ("jpeg", 1, "uchar", False),  # libvips writes a grey JPEG with other bytes: its own saver stays
        ("jpeg", 4, "uchar", False),
        ("webp", 2, "uchar", False),
        ("jpeg", 3, "ushort", False),
        ("png", 3, "uchar", False),
        ("avif", 3, "uchar", False),
    ],
)
def test_only_layouts_whose_bytes_match_go_to_pillow(fmt: str, bands: int, band_format: str, ok: bool) -> None:
    assert can_encode(fmt, bands, band_format) is ok
