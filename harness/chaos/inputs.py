"""Deterministic upload payloads for chaos runs: small valid PNGs and poison (corrupt, bomb, non-image, empty)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from harness.chaos.errors import ChaosError

# What the handler is expected to answer for each poison kind (any of these codes is fine).
POISON_CODES: dict[str, frozenset[str]] = {
    "corrupt": frozenset({"CORRUPT_IMAGE"}),
    "bomb": frozenset({"TOO_MANY_PIXELS"}),
    "not_image": frozenset({"UNSUPPORTED_FORMAT", "CORRUPT_IMAGE"}),
    "empty": frozenset({"EMPTY_INPUT", "CORRUPT_IMAGE"}),
}
KINDS = ("image", *POISON_CODES)


@dataclass(frozen=True)
class Payload:
    """One object to upload: its kind, file name suffix, bytes and content type."""

    kind: str
    suffix: str
    body: bytes
    content_type: str

    @property
    def poison(self) -> bool:
        return self.kind != "image"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png(width: int, height: int, seed: int = 0) -> bytes:
    """A valid RGB PNG with a seed-dependent gradient (no image library needed)."""
    if width < 1 or height < 1:
        raise ChaosError(
            "INVALID_PAYLOAD", f"Expected positive integers for width/height but received {width}x{height}"
        )
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows += bytes(
                (
                    (x * 255 // width + seed * 37) % 256,
                    (y * 255 // height + seed * 11) % 256,
                    ((x + y + seed * 53) * 3) % 256,
                )
            )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 6))
        + _chunk(b"IEND", b"")
    )


def bomb_png(side: int = 40_000) -> bytes:
    """A small PNG whose header claims side x side pixels (a decompression bomb by declared size)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\x00" * (side + 1) * 16, 9)  # a few rows of data; the rest is missing
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", row) + _chunk(b"IEND", b"")


def payload(kind: str, seed: int = 0) -> Payload:
    """The payload of `kind` (one of KINDS); images vary with `seed` so outputs are distinct per upload."""
    if kind == "image":
        return Payload(kind, ".png", png(320 + seed % 7 * 16, 240 + seed % 5 * 16, seed), "image/png")
    if kind == "corrupt":
        good = png(320, 240, seed)
        return Payload(kind, ".png", good[: len(good) // 3], "image/png")
    if kind == "bomb":
        return Payload(kind, ".png", bomb_png(), "image/png")
    if kind == "not_image":
        return Payload(kind, ".jpg", b"this is a text file pretending to be a JPEG\n" * 20, "image/jpeg")
    if kind == "empty":
        return Payload(kind, ".jpg", b"", "image/jpeg")
    raise ChaosError("INVALID_PAYLOAD", f"Expected one of {'|'.join(KINDS)} for payload kind but received {kind!r}")
