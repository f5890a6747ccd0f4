"""Resize spec validation, box arithmetic, the backend registry and the library-free header checks."""

from __future__ import annotations

import struct
import zlib

import pytest

from thumbnailer.errors import ConfigError, ErrorCode, InvalidSpec
from thumbnailer.resizers import get_resizer
from thumbnailer.resizers.base import Limits, ResizeSpec, SizeSpec, fit_box, parse_sizes
from thumbnailer.resizers.sniff import check_input


@pytest.mark.parametrize(
    ("src", "box", "fit", "out"),
    [
        ((4000, 3000), (1024, 1024), "inside", (1024, 768)),
        ((3000, 4000), (1024, 1024), "inside", (768, 1024)),
        ((6000, 4000), (256, 256), "inside", (256, 171)),
        ((100, 50), (1024, 1024), "inside", (100, 50)),  # no upscaling
        ((4000, 3000), (256, 256), "cover", (256, 256)),
        ((4000, 3000), (300, 100), "attention", (300, 100)),
        ((200, 100), (256, 256), "cover", (200, 100)),  # smaller than the box: not enlarged
        ((1, 5000), (256, 256), "inside", (1, 256)),
    ],
)
def test_fit_box(src: tuple[int, int], box: tuple[int, int], fit: str, out: tuple[int, int]) -> None:
    assert fit_box(*src, *box, fit, upscale=False)[:2] == out


def test_upscale_when_asked() -> None:
    assert fit_box(100, 50, 1000, 1000, "inside", upscale=True)[:2] == (1000, 500)


def test_sizes_are_parsed_sorted_and_unique() -> None:
    assert [s.name for s in parse_sizes("s:10x10, l:100x100 ,m:50x50")] == ["l", "m", "s"]
    with pytest.raises(InvalidSpec, match="Expected unique size names"):
        parse_sizes("a:1x1,a:2x2")


@pytest.mark.parametrize("kwargs", [{"fit": "fill"}, {"format": "gif"}, {"quality": 0}, {"sizes": ()}])
def test_invalid_spec(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSpec) as info:
        ResizeSpec(**kwargs)  # type: ignore[arg-type]
    assert info.value.code == ErrorCode.INVALID_SPEC and info.value.message.startswith("Expected ")


def test_size_spec_validation() -> None:
    with pytest.raises(InvalidSpec, match="Expected an integer"):
        SizeSpec("a", 0, 10)


def test_unknown_backend() -> None:
    with pytest.raises(ConfigError) as info:
        get_resizer("imagemagick")
    assert info.value.code == ErrorCode.UNKNOWN_BACKEND


def _png(width: int, height: int, colour: int = 0, depth: int = 8, crc_ok: bool = True) -> bytes:
    def chunk(t: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(t + body) ^ (0 if crc_ok else 1)
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", crc & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "limits", "code"),
    [
        (b"", Limits(), "EMPTY_INPUT"),
        (b"\xff\xd8\xff" + b"\0" * 100, Limits(max_input_bytes=50), "TOO_MANY_BYTES"),
        (b"hello world, no image", Limits(), "UNSUPPORTED_FORMAT"),
        (_png(100_000, 100_000), Limits(), "TOO_MANY_PIXELS"),
        (_png(1001, 1000), Limits(max_pixels=1_000_000), "TOO_MANY_PIXELS"),
        (_png(10, 10, crc_ok=False), Limits(), "CORRUPT_IMAGE"),
        (_png(10, 10, colour=1), Limits(), "CORRUPT_IMAGE"),
        (_png(10, 10)[:-12], Limits(), "CORRUPT_IMAGE"),  # IEND missing (truncated)
        (b"\x89PNG\r\r\x1a\r" + _png(10, 10)[8:], Limits(), "CORRUPT_IMAGE"),  # signature damaged by a text transfer
    ],
)
def test_header_checks_reject_before_decoding(data: bytes, limits: Limits, code: str) -> None:
    with pytest.raises(Exception) as info:
        check_input(data, limits)
    assert getattr(info.value, "code", None) == code and not info.value.retryable  # type: ignore[attr-defined]


def test_header_dimensions() -> None:
    assert check_input(_png(640, 480), Limits()).width == 640
    assert check_input(_png(1000, 1000), Limits(max_pixels=1_000_000)).height == 1000


@pytest.mark.vips
def test_vips_threads_option_sets_libvips_concurrency() -> None:
    import pyvips

    before = pyvips.concurrency_get()
    try:
        get_resizer("vips", threads=2)
        assert pyvips.concurrency_get() == 2
        assert pyvips.cache_get_max() == 0  # operation cache off: every call decodes its own input
    finally:
        pyvips.concurrency_set(before)
