"""Resizer port: the validated resize spec, the per-size results and the Resizer Protocol (no image library here)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from ..contract import EXTENSIONS
from ..errors import InvalidSpec, expected

Fit = Literal["inside", "cover", "attention"]
OutputFormat = Literal["auto", "jpeg", "webp", "png", "avif"]

FITS: tuple[str, ...] = ("inside", "cover", "attention")
FORMATS: tuple[str, ...] = ("auto", "jpeg", "webp", "png", "avif")
CONTENT_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "png": "image/png",
    "avif": "image/avif",
}
# EXTENSIONS (format -> file extension) is part of the output-key rule: it lives in ..contract
# Pillow's resampling filter (THUMB_RESAMPLE). Measured per filter on the 12 MP JPEG (benchmarks/README.md): lanczos
# 2.6x the floor; bicubic 2.0x at -0.0053 SSIM vs the reference (the bound is -0.005) and 0.967 SSIM vs libvips'
# lanczos3 (the parity contract asks 0.97); hamming 1.55x at -0.011. No filter meets both aims: lanczos stays default.
RESAMPLE_CHOICES: tuple[str, ...] = ("lanczos", "bicubic", "hamming", "bilinear", "box")
DEFAULT_RESAMPLE = "lanczos"

MAX_BOX = 16384
_SIZE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True, slots=True)
class SizeSpec:
    """One output: a name (used in the output key) and a bounding box in pixels."""

    name: str
    width: int
    height: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _SIZE_NAME.match(self.name):
            raise InvalidSpec(expected("a lower-case name [a-z0-9_-], 1-32 chars", "size name", self.name))
        for attr in ("width", "height"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_BOX:
                raise InvalidSpec(expected(f"an integer 1..{MAX_BOX}", f"{attr} of size {self.name!r}", v))

    @classmethod
    def parse(cls, text: str) -> SizeSpec:
        """`large:1024x1024` -> SizeSpec("large", 1024, 1024)."""
        m = re.fullmatch(r"\s*([^:\s]+)\s*:\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
        if not m:
            raise InvalidSpec(expected("'<name>:<width>x<height>'", "size", text))
        return cls(m.group(1), int(m.group(2)), int(m.group(3)))

    def __str__(self) -> str:
        return f"{self.name}:{self.width}x{self.height}"


def parse_sizes(text: str) -> tuple[SizeSpec, ...]:
    """`large:1024x1024,small:256x256` -> sizes, largest box first; names must be unique."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise InvalidSpec(expected("at least one '<name>:<width>x<height>'", "sizes", text))
    return normalise_sizes(tuple(SizeSpec.parse(p) for p in parts))


def normalise_sizes(sizes: tuple[SizeSpec, ...]) -> tuple[SizeSpec, ...]:
    names = [s.name for s in sizes]
    if len(set(names)) != len(names):
        raise InvalidSpec(expected("unique size names", "sizes", ",".join(names)))
    return tuple(sorted(sizes, key=lambda s: (-(s.width * s.height), s.name)))


@dataclass(frozen=True, slots=True)
class Limits:
    """Checked before the full decode: input size in bytes and pixel count read from the header."""

    max_input_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 100_000_000

    def __post_init__(self) -> None:
        for attr in ("max_input_bytes", "max_pixels"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidSpec(expected("a positive integer", attr, v))


@dataclass(frozen=True, slots=True)
class ResizeSpec:
    """Everything a resizer needs: sizes (largest first), fit, output format, quality, limits, upscaling."""

    sizes: tuple[SizeSpec, ...] = (SizeSpec("large", 1024, 1024), SizeSpec("small", 256, 256))
    fit: str = "inside"
    format: str = "auto"
    quality: int = 80
    limits: Limits = field(default_factory=Limits)
    upscale: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.sizes, tuple) or not self.sizes or not all(isinstance(s, SizeSpec) for s in self.sizes):
            raise InvalidSpec(expected("a non-empty tuple of SizeSpec", "sizes", self.sizes))
        object.__setattr__(self, "sizes", normalise_sizes(self.sizes))
        if self.fit not in FITS:
            raise InvalidSpec(expected(f"one of {'|'.join(FITS)}", "fit", self.fit))
        if self.format not in FORMATS:
            raise InvalidSpec(expected(f"one of {'|'.join(FORMATS)}", "format", self.format))
        q = self.quality
        if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 100:
            raise InvalidSpec(expected("an integer 1..100", "quality", q))


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """One encoded output image."""

    name: str
    width: int
    height: int
    format: str  # jpeg | webp | png | avif
    content_type: str
    data: bytes

    @property
    def bytes(self) -> bytes:  # alias: the brief calls the payload "bytes"
        return self.data

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the header said about the input (before orientation is applied)."""

    format: str
    width: int
    height: int
    orientation: int = 1
    has_alpha: bool = False
    frames: int = 1


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds spent per phase of one resize call."""

    decode_ms: float = 0.0
    resize_ms: float = 0.0
    encode_ms: float = 0.0
    total_ms: float = 0.0
    # process CPU over the call, every thread (libvips' workers too; on the overlapped path also the fetch and upload
    # threads): the resize's own CPU when nothing else runs, as on the sequential path. Set by the pipeline.
    cpu_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ResizeResult:
    """All outputs of one input, in the spec's size order, with the source facts and timings."""

    outputs: tuple[Thumbnail, ...]
    source: SourceInfo
    timings: Timings
    backend: str

    def by_name(self) -> dict[str, Thumbnail]:
        return {t.name: t for t in self.outputs}


@runtime_checkable
class Resizer(Protocol):
    """Input bytes + spec -> every size. Raises PermanentError subclasses (stable codes) for bad input."""

    name: str

    def resize(self, data: bytes, spec: ResizeSpec) -> ResizeResult: ...

    def probe(self, data: bytes, limits: Limits) -> SourceInfo:
        """Read the header only and enforce `limits` (no full decode)."""
        ...


def fit_box(src_w: int, src_h: int, box_w: int, box_h: int, fit: str, upscale: bool) -> tuple[int, int, float]:
    """Output (width, height) and scale for one size; `inside` keeps aspect, cover/attention fill the box.

    Without upscaling, a source smaller than the box keeps its size (inside) or is cropped to at most the box
    (cover), never enlarged.
    """
    if fit == "inside":
        scale = min(box_w / src_w, box_h / src_h)
        if not upscale:
            scale = min(scale, 1.0)
        w = max(1, min(box_w, round(src_w * scale)))
        h = max(1, min(box_h, round(src_h * scale)))
        if not upscale:
            w, h = min(w, src_w), min(h, src_h)
        return w, h, scale
    scale = max(box_w / src_w, box_h / src_h)
    if not upscale and scale > 1.0:
        scale = 1.0
    return min(box_w, max(1, round(src_w * scale))), min(box_h, max(1, round(src_h * scale))), scale
