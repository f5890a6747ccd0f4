"""The benchmark's own pixel work (the only benchmarks module importing PIL): input probing, the floor job, references.

The floor is what any backend must pay at least: copy the input bytes, decode at the largest JPEG DCT scale that still
covers the largest output (full decode for other formats), and encode every output (pre-sized pixels, same encoder
settings as the backends). No resize, no rotation, no metadata handling.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps

from common.errors import expected
from thumbnailer.resizers.base import ResizeSpec, fit_box

from .errors import BenchError, BenchErrorCode
from .quality import luma, psnr, ssim

# Encoder settings every variant must share (sharp gets the same via its CLI flags): JPEG q80, 4:2:0 chroma,
# baseline (not progressive), optimised Huffman tables (as the Pillow resizer); WebP q80 method 4 for alpha inputs.
JPEG_QUALITY = 80
JPEG_SUBSAMPLING = "4:2:0"
JPEG_PROGRESSIVE = False
JPEG_OPTIMIZE_CODING = True
WEBP_QUALITY = 80
WEBP_METHOD = 4

ORIENTATION_TAG = 0x0112
_SRGB = ImageCms.createProfile("sRGB")
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True, slots=True)
class InputFacts:
    """What a benchmark input is (read from its header)."""

    path: str
    format: str  # JPEG | PNG | WEBP | ...
    width: int
    height: int
    mode: str
    bytes: int
    progressive: bool
    orientation: int
    has_alpha: bool

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def probe(path: Path) -> InputFacts:
    """Header facts of one input file (no full decode)."""
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
            progressive = bool(im.info.get("progressive") or im.info.get("progression"))
            has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            return InputFacts(
                str(path),
                str(im.format),
                im.width,
                im.height,
                im.mode,
                path.stat().st_size,
                progressive,
                orientation,
                has_alpha,
            )
    except (OSError, ValueError) as exc:
        raise BenchError(
            BenchErrorCode.INVALID_ARGUMENT, expected("a readable image file", "benchmark input", str(path))
        ) from exc


def derive_avif(source: Path, dest: Path, quality: int = 70) -> Path:
    """An AVIF copy of `source` (same pixels, Pillow's AVIF encoder), written once: an input all variants can read."""
    if dest.is_file() and dest.stat().st_mtime >= source.stat().st_mtime:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    with Image.open(source) as im:
        im.convert("RGB").save(tmp, "AVIF", quality=quality, speed=8)
    tmp.replace(dest)
    return dest


def output_format(facts: InputFacts) -> str:
    """What the job writes for this input under format=auto: WebP for alpha inputs, JPEG otherwise."""
    return "webp" if facts.has_alpha else "jpeg"


def output_dims(facts: InputFacts, spec: ResizeSpec) -> list[tuple[str, int, int]]:
    """(name, width, height) of each output after orientation, as every backend should produce them."""
    w, h = facts.width, facts.height
    if facts.orientation in SWAPPING_ORIENTATIONS:
        w, h = h, w
    out = []
    for size in spec.sizes:
        ow, oh, _ = fit_box(w, h, size.width, size.height, spec.fit, spec.upscale)
        out.append((size.name, ow, oh))
    return out


def encode(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        if im.mode != "RGB":
            im = im.convert("RGB")
        im.save(
            buf,
            "JPEG",
            quality=JPEG_QUALITY,
            subsampling=JPEG_SUBSAMPLING,
            progressive=JPEG_PROGRESSIVE,
            optimize=JPEG_OPTIMIZE_CODING,
        )
    elif fmt == "webp":
        im.save(buf, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    else:
        raise BenchError(BenchErrorCode.INVALID_ARGUMENT, expected("jpeg|webp", "floor output format", fmt))
    return buf.getvalue()


def decode_full(data: bytes) -> Image.Image:
    """Full-resolution decode, EXIF orientation applied, embedded ICC profile converted to sRGB (as the job does);
    RGB, or RGBA when the input has alpha."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        icc = im.info.get("icc_profile")
        out = ImageOps.exif_transpose(im) or im
        has_alpha = out.mode in ("RGBA", "LA", "PA") or (out.mode == "P" and "transparency" in out.info)
        if icc and not has_alpha and out.mode in ("RGB", "CMYK", "L"):
            try:
                converted = ImageCms.profileToProfile(
                    out,
                    ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                    _SRGB,
                    outputMode="RGB",
                    renderingIntent=ImageCms.Intent.PERCEPTUAL,
                )
                if converted is not None:
                    out = converted
            except (ImageCms.PyCMSError, OSError, ValueError):
                pass  # an unusable profile: compare the pixels as they are
        return out.convert("RGBA" if has_alpha else "RGB")


class FloorJob:
    """The floor for one input: prepared once (outputs pre-sized), then `run()` is timed."""

    def __init__(self, data: bytes, spec: ResizeSpec | None = None) -> None:
        self.spec = spec or ResizeSpec()
        self.data = data
        self.facts = _facts_from_bytes(data)
        self.fmt = output_format(self.facts)
        dims = output_dims(self.facts, self.spec)
        # the largest output, in the stored (pre-rotation) orientation: what the DCT-scaled decode must cover
        _, w0, h0 = dims[0]
        if self.facts.orientation in SWAPPING_ORIENTATIONS:
            w0, h0 = h0, w0
        self.need = (w0, h0)
        # the pixels to encode: realistic content at the output sizes, made from the same reduced decode so that
        # the floor's peak memory is the floor's too (untimed)
        decoded = self._decode(bytes(data))
        upright = ImageOps.exif_transpose(decoded) or decoded
        if upright.mode not in ("RGB", "RGBA"):
            upright = upright.convert("RGBA" if self.facts.has_alpha else "RGB")
        self.outputs = [(name, upright.resize((w, h), Image.Resampling.LANCZOS)) for name, w, h in dims]

    def _decode(self, buf: bytes) -> Image.Image:
        im = Image.open(io.BytesIO(buf))
        if im.format == "JPEG":
            im.draft(im.mode if im.mode in ("RGB", "L") else "RGB", self.need)
        im.load()
        return im

    def run(self) -> list[tuple[str, int, int, str, bytes]]:
        buf = bytes(memoryview(self.data))  # one copy of the bytes, as the other workers (see benchmarks/worker.py)
        self._decode(buf).close()
        return [(name, o.width, o.height, self.fmt, encode(o, self.fmt)) for name, o in self.outputs]

    def decode_scale(self) -> str:
        """The DCT scale `run()` decodes at (1/1, 1/2, 1/4, 1/8), for the report."""
        with Image.open(io.BytesIO(self.data)) as im:
            if im.format != "JPEG":
                return "full (not JPEG)"
            w = im.width
            im.draft(im.mode if im.mode in ("RGB", "L") else "RGB", self.need)
            return f"1/{max(1, round(w / im.size[0]))}"


def _facts_from_bytes(data: bytes) -> InputFacts:
    with Image.open(io.BytesIO(data)) as im:
        exif = im.getexif()
        has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
        return InputFacts(
            "<bytes>",
            str(im.format),
            im.width,
            im.height,
            im.mode,
            len(data),
            bool(im.info.get("progressive") or im.info.get("progression")),
            int(exif.get(ORIENTATION_TAG, 1) or 1),
            has_alpha,
        )


def _flatten(im: Image.Image) -> np.ndarray:
    """RGB array; alpha composited over mid grey so both sides of a comparison are treated alike."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))


class Reference:
    """High-quality reference of one input: full decode, EXIF orientation, LANCZOS straight to the output size."""

    def __init__(self, data: bytes) -> None:
        self.full = decode_full(data)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def at(self, w: int, h: int) -> np.ndarray:
        if (w, h) not in self._cache:
            self._cache[(w, h)] = luma(_flatten(self.full.resize((w, h), Image.Resampling.LANCZOS)))
        return self._cache[(w, h)]

    def compare(self, encoded: bytes) -> dict[str, Any]:
        """PSNR/SSIM (luma) of one encoded output against the reference at the output's own dimensions."""
        with Image.open(io.BytesIO(encoded)) as im:
            im.load()
            got = luma(_flatten(im))
            w, h = im.width, im.height
        ref = self.at(w, h)
        return {"width": w, "height": h, "psnr_db": round(psnr(ref, got), 3), "ssim": round(ssim(ref, got), 5)}
