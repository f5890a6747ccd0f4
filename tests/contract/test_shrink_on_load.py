"""Shrink-on-load paths (issue 16): WebP scaled decode, alpha and palette inputs, GIF first frame, orientation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from thumbnailer.resizers import ResizeSpec, SizeSpec, get_resizer

from .conftest import BACKENDS
from .imaging import decode

pytestmark = pytest.mark.parametrize("backend", BACKENDS)

RED, GREEN, BLUE, WHITE = (230, 20, 20), (20, 200, 20), (20, 20, 230), (240, 240, 240)


def _quadrants(w: int, h: int) -> Image.Image:
    """Stored image with a colour per quadrant: red top-left, green top-right, blue bottom-left, white bottom-right."""
    im = Image.new("RGB", (w, h), WHITE)
    im.paste(RED, (0, 0, w // 2, h // 2))
    im.paste(GREEN, (w // 2, 0, w, h // 2))
    im.paste(BLUE, (0, h // 2, w // 2, h))
    return im


def _webp(im: Image.Image, orientation: int = 1) -> bytes:
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "WEBP", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def _at(data: bytes, fx: float, fy: float) -> tuple[int, ...]:
    im = decode(data)
    px = np.asarray(im)[int(fy * im.height), int(fx * im.width)]
    return tuple(int(c) for c in px)


def _close(got: tuple[int, ...], want: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(g - w) <= tol for g, w in zip(got, want, strict=False))


def test_webp_scaled_decode_gives_the_exact_sizes(backend: str) -> None:
    # 3000x2000: a 1/2 scaled decode (1500x1000) still covers the 1024 box; odd sizes check the rounding
    data = _webp(_quadrants(3001, 1999))
    spec = ResizeSpec(sizes=(SizeSpec("large", 1024, 1024), SizeSpec("small", 256, 256), SizeSpec("odd", 333, 77)))
    result = get_resizer(backend).resize(data, spec)
    got = {t.name: (t.width, t.height, t.format) for t in result.outputs}
    assert got == {"large": (1024, 682, "jpeg"), "small": (256, 171, "jpeg"), "odd": (116, 77, "jpeg")}
    large = result.by_name()["large"]
    assert _close(_at(large.data, 0.25, 0.25), RED) and _close(_at(large.data, 0.75, 0.75), WHITE)


def test_webp_exif_orientation_6_comes_out_upright(backend: str) -> None:
    # stored 2000x3000 landscape-on-its-side; orientation 6 = rotate 90 degrees clockwise to display
    data = _webp(_quadrants(2000, 3000), orientation=6)
    result = get_resizer(backend).resize(data, ResizeSpec())
    large, small = result.outputs
    assert (large.width, large.height) == (1024, 683) and (small.width, small.height) == (256, 171)
    assert result.source.orientation == 6
    # after a clockwise turn the stored bottom-left (blue) is top-left, the stored top-left (red) top-right
    for thumb in (large, small):
        assert _close(_at(thumb.data, 0.25, 0.25), BLUE), _at(thumb.data, 0.25, 0.25)
        assert _close(_at(thumb.data, 0.75, 0.25), RED), _at(thumb.data, 0.75, 0.25)
        assert _close(_at(thumb.data, 0.25, 0.75), WHITE), _at(thumb.data, 0.25, 0.75)


def test_rgba_png_shrunk_on_load_keeps_alpha_without_dark_fringes(backend: str) -> None:
    # opaque red square on a fully transparent (black, alpha 0) background: premultiplied resampling keeps
    # the edge red, a straight-alpha resize would drag the black in
    im = Image.new("RGBA", (2400, 1800), (0, 0, 0, 0))
    im.paste((255, 0, 0, 255), (600, 450, 1800, 1350))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    result = get_resizer(backend).resize(buf.getvalue(), ResizeSpec())
    large = result.outputs[0]
    assert (large.width, large.height, large.format) == (1024, 768, "webp")
    out = np.asarray(Image.open(io.BytesIO(large.data)).convert("RGBA")).astype(int)
    edge = out[:, :, 3] > 128
    assert edge.any() and out[:, :, 3][0, 0] < 10  # corner transparent, square opaque
    assert out[edge][:, 0].min() > 180  # no dark fringe on the edge pixels that are visible


def test_webp_input_at_its_own_size_is_not_resampled_away(backend: str) -> None:
    data = _webp(_quadrants(800, 600))
    large, small = get_resizer(backend).resize(data, ResizeSpec()).outputs
    assert (large.width, large.height) == (800, 600) and (small.width, small.height) == (256, 192)


@pytest.mark.vips
@pytest.mark.parametrize("fmt", ["WEBP", "PNG", "GIF"])
def test_vips_decodes_non_jpeg_inputs_through_thumbnail(
    backend: str, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "vips":
        pytest.skip("libvips path only")
    import pyvips

    calls: list[tuple[int, int]] = []
    real = pyvips.Image.thumbnail_source  # the input is read in place from a memory source (no copy)

    def spy(source: pyvips.Source, width: int, **kw: object) -> pyvips.Image:
        calls.append((width, int(kw["height"])))  # type: ignore[call-overload]
        assert kw.get("no_rotate") is True and kw.get("size") == "force"
        return real(source, width, **kw)

    monkeypatch.setattr(pyvips.Image, "thumbnail_source", staticmethod(spy))
    from thumbnailer.resizers import vips as vips_backend

    real_webp = vips_backend._webp_decode  # an opaque WebP is scaled by libwebp itself, as thumbnail would ask it to

    def webp_spy(data: bytes, header: pyvips.Image, out_w: int, out_h: int) -> pyvips.Image | None:
        img = real_webp(data, header, out_w, out_h)
        if img is not None:
            calls.append((out_w, out_h))
        return img

    monkeypatch.setattr(vips_backend, "_webp_decode", webp_spy)
    buf = io.BytesIO()
    _quadrants(2048, 1536).convert("P" if fmt == "GIF" else "RGB").save(buf, fmt)
    result = get_resizer("vips").resize(buf.getvalue(), ResizeSpec())
    assert calls == [(1024, 768)]  # one scaled decode, straight to the largest output; the small one reuses it
    assert [(t.width, t.height) for t in result.outputs] == [(1024, 768), (256, 192)]
