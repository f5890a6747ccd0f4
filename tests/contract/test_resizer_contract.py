"""Resizer contract on both backends: exact sizes, formats, orientation, colour, alpha, frames, limits, no metadata."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fixtures.generate import photo
from thumbnailer.errors import PermanentError, ThumbnailError
from thumbnailer.resizers import Limits, ResizeResult, ResizeSpec, SizeSpec, get_resizer

from .conftest import BACKENDS, Resize
from .imaging import decode, grey, mean_colour_error, rgb, ssim

pytestmark = pytest.mark.parametrize("backend", BACKENDS)

# fixture -> (large WxH, small WxH, format) for the default spec (1024 and 256 boxes, inside, auto, q80);
# written out by hand, not computed with the code under test
EXPECTED = {
    "jpeg-12mp-baseline.jpg": ((1024, 768), (256, 192), "jpeg"),
    "jpeg-24mp-baseline.jpg": ((1024, 683), (256, 171), "jpeg"),
    "jpeg-12mp-progressive.jpg": ((1024, 768), (256, 192), "jpeg"),
    "jpeg-24mp-progressive.jpg": ((1024, 683), (256, 171), "jpeg"),
    "jpeg-12mp-exif6.jpg": ((1024, 768), (256, 192), "jpeg"),  # stored 3000x4000, shown upright 4000x3000
    "jpeg-12mp-cmyk-icc.jpg": ((1024, 768), (256, 192), "jpeg"),
    "jpeg-p3-icc.jpg": ((1024, 768), (256, 192), "jpeg"),
    "png-16bit-rgb.png": ((1024, 768), (256, 192), "jpeg"),
    "png-rgba-12mp.png": ((1024, 768), (256, 192), "webp"),
    "png-palette-trns.png": ((800, 600), (256, 192), "webp"),  # never upscaled
    "gif-animated.gif": ((400, 300), (256, 192), "webp"),
    "webp-photo.webp": ((1024, 768), (256, 192), "jpeg"),
    "webp-animated.webp": ((480, 320), (256, 171), "jpeg"),
    "tiny.jpg": ((16, 12), (16, 12), "jpeg"),
}
CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png", "avif": "image/avif"}


def ok(result: ResizeResult | ThumbnailError) -> ResizeResult:
    if isinstance(result, ThumbnailError):
        raise AssertionError(f"resize failed: {result}")
    return result


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exact_output_sizes_and_formats(
    backend: str, name: str, resize: Resize, manifest: dict[str, dict[str, Any]]
) -> None:
    large_wh, small_wh, fmt = EXPECTED[name]
    result = ok(resize(backend, name))
    assert [t.name for t in result.outputs] == ["large", "small"]
    for thumb, wh in zip(result.outputs, (large_wh, small_wh), strict=True):
        assert (thumb.width, thumb.height) == wh
        assert thumb.format == fmt and thumb.content_type == CONTENT_TYPES[fmt]
        im = Image.open(io.BytesIO(thumb.data))
        assert im.size == wh and im.format.lower() == fmt  # the bytes are what the result says
    assert result.backend == backend and result.timings.total_ms > 0
    assert manifest[name]["kind"] == "valid"


@pytest.mark.parametrize("name", ["bad-truncated.jpg", "bad-zero-bytes.jpg", "bad-text.jpg", "bad-bomb.png"])
def test_bad_inputs_are_rejected_with_the_manifest_code(
    backend: str, name: str, resize: Resize, manifest: dict[str, dict[str, Any]]
) -> None:
    err = resize(backend, name)
    assert isinstance(err, PermanentError), err
    assert err.code == manifest[name]["error_code"]
    assert err.message.startswith("Expected ")


@pytest.mark.parametrize(
    "name", ["jpeg-12mp-exif6.jpg", "jpeg-p3-icc.jpg", "jpeg-12mp-cmyk-icc.jpg", "png-rgba-12mp.png"]
)
def test_outputs_carry_no_metadata(backend: str, name: str, resize: Resize) -> None:
    for thumb in ok(resize(backend, name)).outputs:
        im = Image.open(io.BytesIO(thumb.data))
        assert not im.getexif(), f"{thumb.name} keeps EXIF"
        assert "icc_profile" not in im.info and "exif" not in im.info and "xmp" not in im.info
        assert b"Exif" not in thumb.data[:4096] and b"GPS" not in thumb.data


def test_exif_orientation_6_comes_out_upright(backend: str, resize: Resize) -> None:
    rotated = ok(resize(backend, "jpeg-12mp-exif6.jpg")).outputs[0]
    upright = ok(resize(backend, "jpeg-12mp-baseline.jpg")).outputs[0]
    assert ssim(grey(rotated.data), grey(upright.data)) > 0.95


def test_cmyk_with_icc_is_converted_to_srgb(backend: str, resize: Resize) -> None:
    # the CMYK file is the baseline photo sent through a CMYK profile: colours must come back close to it
    cmyk = rgb(ok(resize(backend, "jpeg-12mp-cmyk-icc.jpg")).outputs[0].data)
    base = rgb(ok(resize(backend, "jpeg-12mp-baseline.jpg")).outputs[0].data)
    assert mean_colour_error(cmyk, base) < 12  # measured ~10 (gamut of the CMYK round trip); naive CMYK->RGB ~40
    assert ssim(grey(cmyk), grey(base)) > 0.9


def test_display_p3_profile_is_converted_not_dropped(backend: str, resize: Resize) -> None:
    out = rgb(ok(resize(backend, "jpeg-p3-icc.jpg")).outputs[0].data)
    reference = rgb(photo(1600, 1200, 3).resize((1024, 768), Image.Resampling.LANCZOS))
    assert mean_colour_error(out, reference) < 4.5  # measured 2.6; stripping the profile gives 7.6


def test_16_bit_png_keeps_its_colours(backend: str, resize: Resize) -> None:
    out = rgb(ok(resize(backend, "png-16bit-rgb.png")).outputs[0].data)
    reference = rgb(photo(1600, 1200, 4).resize((1024, 768), Image.Resampling.LANCZOS))
    assert mean_colour_error(out, reference) < 5.5  # measured 4.4 (q80 JPEG alone costs 3.4)


def test_alpha_is_kept(backend: str, resize: Resize) -> None:
    out = ok(resize(backend, "png-rgba-12mp.png")).outputs[0]
    alpha = np.asarray(decode(out.data, "RGBA"))[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0  # clear corners
    assert alpha[384, 512] == 255  # opaque centre
    assert 0 < np.mean((alpha > 0) & (alpha < 255)) < 0.2  # a soft edge survives


def test_palette_transparency_is_kept(backend: str, resize: Resize) -> None:
    out = ok(resize(backend, "png-palette-trns.png")).outputs[0]
    alpha = np.asarray(decode(out.data, "RGBA"))[..., 3]
    assert alpha[:60].max() == 0 and alpha[200:].min() == 255  # the transparent band at the top


def test_animated_gif_gives_its_first_frame(backend: str, resize: Resize, generated_fixtures: Any) -> None:
    out = grey(ok(resize(backend, "gif-animated.gif")).outputs[0].data)
    gif = Image.open(generated_fixtures / "gif-animated.gif")
    frames = []
    for i in (0, 3):
        gif.seek(i)
        frames.append(grey(gif.convert("RGBA").copy()))
    first, last = (ssim(out, f) for f in frames)
    assert first > 0.9 and first > last + 0.01


def test_animated_webp_gives_its_first_frame(backend: str, resize: Resize) -> None:
    out = grey(ok(resize(backend, "webp-animated.webp")).outputs[0].data)
    first, second = grey(photo(480, 320, 10)), grey(photo(480, 320, 11))
    assert ssim(out, first) > 0.8 > ssim(out, second)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png", "avif"])
def test_every_output_format(backend: str, fmt: str, resize: Resize) -> None:
    spec = ResizeSpec(sizes=(SizeSpec("m", 320, 320),), format=fmt)
    result = resize(backend, "jpeg-p3-icc.jpg", spec)
    if fmt == "avif" and isinstance(result, ThumbnailError):
        pytest.skip(f"no AVIF encoder in this {backend} build: {result}")
    (thumb,) = ok(result).outputs
    assert (thumb.width, thumb.height, thumb.format, thumb.content_type) == (320, 240, fmt, CONTENT_TYPES[fmt])
    assert Image.open(io.BytesIO(thumb.data)).size == (320, 240)


@pytest.mark.parametrize(("fit", "box"), [("cover", (256, 256)), ("attention", (300, 100)), ("cover", (100, 300))])
def test_cover_fits_fill_the_box_exactly(backend: str, fit: str, box: tuple[int, int], resize: Resize) -> None:
    spec = ResizeSpec(sizes=(SizeSpec("big", 800, 800), SizeSpec("crop", *box)), fit=fit)
    result = ok(resize(backend, "jpeg-12mp-exif6.jpg", spec))
    assert [(t.width, t.height) for t in result.outputs] == [(800, 800), box]


def test_attention_crop_finds_the_subject(backend: str) -> None:
    # a flat grey scene with a busy, saturated subject on the right: a square attention crop must include it
    im = Image.new("RGB", (1200, 400), (128, 128, 128))
    rng = np.random.Generator(np.random.PCG64(3))
    subject = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    im.paste(Image.fromarray(subject, "RGB"), (860, 50))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    spec = ResizeSpec(sizes=(SizeSpec("sq", 200, 200),), fit="attention", format="png")
    (out,) = get_resizer(backend).resize(buf.getvalue(), spec).outputs
    centre_spec = ResizeSpec(sizes=(SizeSpec("sq", 200, 200),), fit="cover", format="png")
    (centre,) = get_resizer(backend).resize(buf.getvalue(), centre_spec).outputs
    assert np.std(rgb(out.data)) > 2 * np.std(rgb(centre.data))


def test_quality_changes_the_size(backend: str, resize: Resize) -> None:
    sizes = (SizeSpec("m", 512, 512),)
    low = ok(resize(backend, "jpeg-p3-icc.jpg", ResizeSpec(sizes=sizes, quality=30))).outputs[0]
    high = ok(resize(backend, "jpeg-p3-icc.jpg", ResizeSpec(sizes=sizes, quality=95))).outputs[0]
    assert len(low.data) < len(high.data) * 0.6


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        (Limits(max_pixels=10_000_000), "TOO_MANY_PIXELS"),  # 12 MP > 10 MP, read from the header
        (Limits(max_input_bytes=1_000_000), "TOO_MANY_BYTES"),
    ],
)
def test_limits(backend: str, limits: Limits, code: str, resize: Resize) -> None:
    err = resize(backend, "jpeg-12mp-baseline.jpg", ResizeSpec(limits=limits))
    assert isinstance(err, PermanentError) and err.code == code


def test_probe_reads_the_header_only(backend: str, generated_fixtures: Any) -> None:
    info = get_resizer(backend).probe((generated_fixtures / "jpeg-12mp-exif6.jpg").read_bytes(), Limits())
    assert (info.format, info.width, info.height, info.orientation) == ("jpeg", 3000, 4000, 6)
