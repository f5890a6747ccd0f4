"""The vips backend's own decoders: libjpeg-turbo (simplejpeg) at the smallest M/8 scale that covers the largest
output, the same thumbnails as libvips' jpegload within rounding; libwebp's scaler (the `webp` package) with the very
bytes libvips' thumbnail makes; libvips' loaders wherever they do not apply."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from thumbnailer.errors import CorruptImage
from thumbnailer.resizers import ResizeSpec, SizeSpec, get_resizer
from thumbnailer.resizers import vips as vips_backend

from .imaging import mean_colour_error, photo, rgb

pytestmark = pytest.mark.vips

SPEC = ResizeSpec(sizes=(SizeSpec("large", 1024, 1024), SizeSpec("small", 256, 256)))


def _jpeg(w: int, h: int, mode: str = "RGB", **opts: object) -> bytes:
    buf = io.BytesIO()
    photo(w, h, mode).save(buf, "JPEG", quality=90, **opts)  # type: ignore[arg-type]
    return buf.getvalue()


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int, int] | None]]:
    """(width, height, bands) of every turbo decode, None where it declined."""
    seen: list[tuple[int, int, int] | None] = []
    real = vips_backend._turbo_decode

    def spy(data: bytes, header: object, need_w: int, need_h: int) -> object:
        img = real(data, header, need_w, need_h)  # type: ignore[arg-type]
        seen.append(None if img is None else (img.width, img.height, img.bands))
        return img

    monkeypatch.setattr(vips_backend, "_turbo_decode", spy)
    yield seen


def _close_to_jpegload(data: bytes, spec: ResizeSpec) -> None:
    ours, ref = get_resizer("vips").resize(data, spec), get_resizer("vips", fast_decoders=False).resize(data, spec)
    for a, b in zip(ours.outputs, ref.outputs, strict=True):
        assert (a.name, a.width, a.height, a.format) == (b.name, b.width, b.height, b.format)
        diff = mean_colour_error(rgb(a.data), rgb(b.data))
        assert diff < 2.0, f"{a.name}: mean |diff| {diff:.2f} against jpegload's output"


def test_rgb_jpeg_is_decoded_at_five_eighths_for_a_1024_output(decoded: list) -> None:
    # GIVEN an 1800x1200 photo and a 1024 px box: 1/2 (900x600) is too small, 5/8 (1125x750) is the smallest cover
    data = _jpeg(1800, 1200)
    # WHEN the vips backend makes both sizes
    result = get_resizer("vips").resize(data, SPEC)
    # THEN libjpeg-turbo decoded once at 5/8, and the outputs are those of libvips' own jpegload within rounding
    assert decoded == [(1125, 750, 3)]
    assert [(t.width, t.height) for t in result.outputs] == [(1024, 683), (256, 171)]
    _close_to_jpegload(data, SPEC)


def test_grey_jpeg_is_decoded_grey_at_three_eighths(decoded: list) -> None:
    data = _jpeg(4000, 3000, "L")
    result = get_resizer("vips").resize(data, SPEC)
    assert decoded == [(1500, 1125, 1)]
    large = Image.open(io.BytesIO(result.outputs[0].data))
    assert (large.size, large.mode) == ((1024, 768), "L")


def test_cover_fit_and_exif_rotation_keep_their_geometry(decoded: list) -> None:
    # an EXIF 6 (stored landscape, shown portrait) photo cropped to a square: the decode must cover the crop's scale
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _jpeg(2400, 1600, exif=exif.tobytes())
    spec = ResizeSpec(sizes=(SizeSpec("sq", 600, 600),), fit="cover")
    result = get_resizer("vips").resize(data, spec)
    assert decoded and decoded[0] is not None and min(decoded[0][:2]) >= 600
    assert (result.outputs[0].width, result.outputs[0].height) == (600, 600)
    _close_to_jpegload(data, spec)


def test_icc_profile_is_carried_to_the_colour_transform(decoded: list, generated_fixtures: Path) -> None:
    data = (generated_fixtures / "jpeg-p3-icc.jpg").read_bytes()
    _close_to_jpegload(data, SPEC)
    assert decoded and decoded[0] is not None


def test_cmyk_jpeg_goes_to_jpegload(decoded: list) -> None:
    data = _jpeg(900, 700, "CMYK")
    result = get_resizer("vips").resize(data, SPEC)
    assert decoded == [None]
    assert Image.open(io.BytesIO(result.outputs[0].data)).mode == "RGB"


def test_truncated_jpeg_is_corrupt_not_a_partial_thumbnail(decoded: list) -> None:
    data = _jpeg(1800, 1200)
    with pytest.raises(CorruptImage):
        get_resizer("vips").resize(data[: len(data) * 2 // 3], SPEC)
    assert decoded == [None]  # simplejpeg refused the bytes; jpegload's fail_on=error classified them


@pytest.fixture
def webp_decoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int] | None]]:
    seen: list[tuple[int, int] | None] = []
    real = vips_backend._webp_decode

    def spy(data: bytes, header: object, out_w: int, out_h: int) -> object:
        img = real(data, header, out_w, out_h)  # type: ignore[arg-type]
        seen.append(None if img is None else (img.width, img.height))
        return img

    monkeypatch.setattr(vips_backend, "_webp_decode", spy)
    yield seen


def _webp(w: int, h: int, mode: str = "RGB", **opts: object) -> bytes:
    im = Image.open(io.BytesIO(_jpeg(w, h))).convert("RGB")
    if mode == "RGBA":
        im.putalpha(Image.linear_gradient("L").resize((w, h)))
    buf = io.BytesIO()
    im.save(buf, "WEBP", quality=85, **opts)  # type: ignore[arg-type]
    return buf.getvalue()


def test_the_webp_struct_layout_is_the_one_the_scaler_fields_are_set_in() -> None:
    assert vips_backend._WEBP_SCALING, "webp's WebPDecoderOptions is not libwebp's 19-int layout: the path is off"


@pytest.mark.parametrize("name", ["webp-photo.webp", "synthetic 1500x1000, ICC"])
def test_opaque_webp_is_scaled_by_libwebp_to_the_bytes_libvips_makes(
    name: str, webp_decoded: list, generated_fixtures: Path
) -> None:
    if name.endswith(".webp"):
        data = (generated_fixtures / name).read_bytes()
    else:
        icc = Image.open(generated_fixtures / "jpeg-p3-icc.jpg").info["icc_profile"]
        data = _webp(1500, 1000, icc_profile=icc)
    ours = get_resizer("vips").resize(data, SPEC)
    ref = get_resizer("vips", fast_decoders=False).resize(data, SPEC)
    assert webp_decoded and webp_decoded[0] == (ours.outputs[0].width, ours.outputs[0].height)
    for a, b in zip(ours.outputs, ref.outputs, strict=True):
        assert (a.width, a.height, a.format) == (b.width, b.height, b.format)
        assert a.data == b.data, f"{name} {a.name}: other bytes than libvips' thumbnail"


def test_alpha_webp_stays_with_libvips(webp_decoded: list) -> None:
    result = get_resizer("vips").resize(_webp(900, 600, "RGBA"), SPEC)
    assert webp_decoded in ([], [None])  # declined (or never asked) for an image with alpha
    assert result.outputs[0].format == "webp"


def test_truncated_webp_is_corrupt(webp_decoded: list) -> None:
    data = _webp(1500, 1000)
    with pytest.raises(CorruptImage):
        get_resizer("vips").resize(data[: len(data) // 2], SPEC)
    assert webp_decoded in ([], [None])  # never a thumbnail from part of the bytes
