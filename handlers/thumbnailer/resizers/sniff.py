"""Library-free checks run before any decoder: size limit, format by magic bytes, header dimensions, PNG integrity."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import CorruptImage, EmptyInput, TooManyBytes, TooManyPixels, UnsupportedFormat
from .base import Limits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# colour type -> allowed bit depths (PNG spec, table 11.1)
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_HEIF_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"}


@dataclass(frozen=True, slots=True)
class Sniffed:
    """Format from the magic bytes; width/height when the header could be read without a decoder (else 0)."""

    format: str  # jpeg | png | gif | webp | tiff | heif
    width: int = 0
    height: int = 0


def detect_format(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == PNG_SIGNATURE:
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "heif"
    return None


def format_name(data: bytes) -> str:
    """The format for a message: detect_format, with AVIF told apart from other HEIF brands; "image" if unknown."""
    fmt = detect_format(data)
    if fmt == "heif" and data[8:12] in (b"avif", b"avis"):
        return "avif"
    return fmt or "image"


def check_input(data: bytes, limits: Limits) -> Sniffed:
    """Reject empty, oversized, unknown, structurally broken or too-many-pixel inputs before decoding anything."""
    if not data:
        raise EmptyInput("Expected image bytes for the source object but received 0 bytes")
    if len(data) > limits.max_input_bytes:
        raise TooManyBytes(
            f"Expected at most {limits.max_input_bytes} bytes for the source object but received {len(data)} bytes",
            size=len(data),
            limit=limits.max_input_bytes,
        )
    fmt = detect_format(data)
    if fmt is None and len(data) >= 8 and sum(a == b for a, b in zip(data[:8], PNG_SIGNATURE, strict=True)) >= 5:
        raise CorruptImage(
            f"Expected the PNG signature {PNG_SIGNATURE!r} for the source object but received "
            f"{data[:8]!r} (damaged, e.g. by a text-mode transfer)"
        )
    if fmt is None:
        head = data[:12]
        raise UnsupportedFormat(
            f"Expected a JPEG, PNG, GIF, WebP, TIFF or AVIF/HEIF image for the source object "
            f"but received bytes starting {head!r}"
        )
    width, height = _dimensions(fmt, data)
    if width and height:
        check_pixels(width, height, limits)
    return Sniffed(fmt, width, height)


def check_pixels(width: int, height: int, limits: Limits) -> None:
    if width <= 0 or height <= 0:
        raise CorruptImage(f"Expected positive dimensions for the image header but received {width}x{height}")
    if width * height > limits.max_pixels:
        raise TooManyPixels(
            f"Expected at most {limits.max_pixels} pixels for the image but received "
            f"{width}x{height} = {width * height} pixels (from the header)",
            width=width,
            height=height,
            limit=limits.max_pixels,
        )


def _dimensions(fmt: str, data: bytes) -> tuple[int, int]:
    try:
        if fmt == "png":
            return _png(data)
        if fmt == "gif":
            w, h = struct.unpack("<HH", data[6:10])
            return w, h
        if fmt == "jpeg":
            return _jpeg(data)
        if fmt == "webp":
            return _webp(data)
    except struct.error as exc:
        raise CorruptImage(
            f"Expected a complete {fmt.upper()} header but received {len(data)} bytes that end inside it"
        ) from exc
    return 0, 0


def _png(data: bytes) -> tuple[int, int]:
    """Walk every chunk: IHDR first and valid, CRCs correct, at least one IDAT, IEND present."""
    pos, n = 8, len(data)
    view = memoryview(data)  # chunk bodies are checked in place: a slice of bytes would copy every IDAT
    width = height = 0
    seen_idat = seen_iend = False
    first = True
    while pos + 8 <= n:
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            raise CorruptImage(
                f"Expected a complete PNG chunk {ctype!r} at offset {pos} but the data ends at {n} (truncated)"
            )
        if not ctype.isalpha():
            raise CorruptImage(f"Expected a PNG chunk type of 4 letters at offset {pos} but received {ctype!r}")
        body = view[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : end])
        if zlib.crc32(body, zlib.crc32(ctype)) & 0xFFFFFFFF != crc:
            raise CorruptImage(
                f"Expected a matching CRC for PNG chunk {ctype.decode('latin-1')} at offset {pos} "
                f"but received 0x{crc:08x}"
            )
        if first:
            if ctype != b"IHDR" or length != 13:
                raise CorruptImage(f"Expected IHDR as the first PNG chunk but received {ctype!r}")
            width, height, depth, colour, compression, filt, interlace = struct.unpack(">IIBBBBB", body)
            if colour not in _PNG_DEPTHS or depth not in _PNG_DEPTHS[colour]:
                raise CorruptImage(
                    f"Expected a valid PNG colour type/bit depth for IHDR but received "
                    f"colour type {colour} with bit depth {depth}"
                )
            if compression != 0 or filt != 0 or interlace not in (0, 1):
                raise CorruptImage(
                    "Expected compression 0, filter 0, interlace 0|1 for IHDR but received "
                    f"{compression}, {filt}, {interlace}"
                )
            first = False
        elif ctype == b"IDAT":
            seen_idat = True
        elif ctype == b"IEND":
            seen_iend = True
            break
        pos = end
    if first:
        raise CorruptImage(f"Expected an IHDR chunk in the PNG but received {n} bytes without one")
    if not seen_idat:
        raise CorruptImage("Expected at least one IDAT chunk in the PNG but received none")
    if not seen_iend:
        raise CorruptImage("Expected an IEND chunk at the end of the PNG but received a truncated file")
    return width, height


def _jpeg(data: bytes) -> tuple[int, int]:
    """Dimensions from the first SOF marker (segments walked, entropy data never touched)."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise CorruptImage(f"Expected a JPEG marker at offset {pos} but received 0x{data[pos]:02x}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return w, h
        if marker in (0xDA, 0xD9):
            break
        pos += 2 + length
    raise CorruptImage("Expected a JPEG frame header (SOF) before the image data but received none")


def _webp(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        b = data[21:25]
        if len(b) < 4:
            raise struct.error("short VP8L header")
        bits = int.from_bytes(b, "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise CorruptImage(f"Expected a VP8, VP8L or VP8X chunk in the WebP but received {chunk!r}")
