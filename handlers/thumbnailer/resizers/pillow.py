"""Pillow resizer: header checks, JPEG draft decode, one decode for all sizes, sRGB output, orientation on outputs."""

from __future__ import annotations

import io
import struct
import time
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageFilter, UnidentifiedImageError

from ..errors import CorruptImage, InvalidSpec, TooManyPixels, UnsupportedFormat, cause_text, decode_guard, expected
from .base import (
    CONTENT_TYPES,
    DEFAULT_RESAMPLE,
    RESAMPLE_CHOICES,
    Limits,
    ResizeResult,
    ResizeSpec,
    SizeSpec,
    SourceInfo,
    Thumbnail,
    Timings,
    fit_box,
)
from .pil_encode import EXIF_TRANSPOSE, SAVE_OPTIONS
from .sniff import check_input, check_pixels, format_name

ALLOWED_FORMATS = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "TIFF": "tiff", "AVIF": "avif"}
# what Pillow's plugins raise on damaged data (anything else is caught by decode_guard in resize/probe)
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    Image.DecompressionBombError,
    ZeroDivisionError,
)
_SRGB = ImageCms.createProfile("sRGB")
_PIL_SAVE = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG", "avif": "AVIF"}


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


class PillowResizer:
    """Resizer backed by Pillow (libjpeg-turbo DCT scaling via draft(), reducing_gap resampling)."""

    name = "pillow"

    def __init__(self, *, reducing_gap: float | None = 3.0, resample: str = DEFAULT_RESAMPLE, **_ignored: Any) -> None:
        self.reducing_gap = reducing_gap
        key = resample.strip().lower() if isinstance(resample, str) else resample
        if key not in RESAMPLE_CHOICES:
            raise InvalidSpec(expected(f"one of {'|'.join(RESAMPLE_CHOICES)}", "resample", resample))
        self.resample = Image.Resampling[key.upper()]

    # ---- header ------------------------------------------------------------------------------------------------
    def _open(self, data: bytes, limits: Limits) -> tuple[Image.Image, SourceInfo]:
        sniffed = check_input(data, limits)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:  # Pillow's own ceiling (2 x MAX_IMAGE_PIXELS), below ours
            raise TooManyPixels(
                f"Expected at most {Image.MAX_IMAGE_PIXELS} pixels for Pillow but received an "
                f"image above twice that: {exc}"
            ) from exc
        except UnidentifiedImageError as exc:
            raise CorruptImage(
                f"Expected a decodable {sniffed.format.upper()} for the source object but Pillow "
                f"could not read its header ({cause_text(exc)})"
            ) from exc
        except _DECODE_ERRORS as exc:
            raise CorruptImage(
                f"Expected a readable {sniffed.format.upper()} header for the source object but "
                f"Pillow raised {cause_text(exc)}"
            ) from exc
        fmt = ALLOWED_FORMATS.get(im.format or "")
        if fmt is None:
            raise UnsupportedFormat(expected("JPEG, PNG, GIF, WebP, TIFF or AVIF", "the source format", im.format))
        check_pixels(im.width, im.height, limits)
        orientation = 1
        try:
            orientation = int(im.getexif().get(0x0112, 1) or 1)
        except _DECODE_ERRORS:
            orientation = 1  # unreadable EXIF: treat as upright rather than reject the image
        if orientation not in range(1, 9):
            orientation = 1
        has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
        frames = int(getattr(im, "n_frames", 1) or 1)
        return im, SourceInfo(fmt, im.width, im.height, orientation, has_alpha, frames)

    def probe(self, data: bytes, limits: Limits) -> SourceInfo:
        with decode_guard(format_name(data), "Pillow"):
            return self._open(data, limits)[1]

    # ---- resize ------------------------------------------------------------------------------------------------
    def resize(self, data: bytes, spec: ResizeSpec) -> ResizeResult:
        """Every exception raised on these bytes (decode, transform, encode) is classified: none escapes raw."""
        with decode_guard(format_name(data), "Pillow"):
            return self._resize(data, spec)

    def _resize(self, data: bytes, spec: ResizeSpec) -> ResizeResult:
        t_start = time.perf_counter()
        im, info = self._open(data, spec.limits)
        swap = info.orientation >= 5
        # targets in stored (un-rotated) orientation: boxes are swapped for 90-degree orientations
        first = spec.sizes[0]
        box_w, box_h = (first.height, first.width) if swap else (first.width, first.height)
        if info.format == "jpeg" and im.mode in ("RGB", "L", "CMYK", "YCbCr"):
            need = _decode_size(im.width, im.height, box_w, box_h, spec)
            im.draft(im.mode if im.mode != "YCbCr" else "RGB", need)
        try:
            im.load()
        except _DECODE_ERRORS as exc:
            raise CorruptImage(
                f"Expected a complete, decodable {info.format.upper()} for the source object but "
                f"Pillow raised {cause_text(exc)}"
            ) from exc
        icc = im.info.get("icc_profile")
        base = _normalise_mode(im)
        decode_ms = _ms(t_start)

        t_resize = time.perf_counter()
        oriented_w, oriented_h = (info.height, info.width) if swap else (info.width, info.height)
        outputs: list[tuple[SizeSpec, Image.Image]] = []
        for size in spec.sizes:
            # exact output size from the original (oriented) dimensions, whatever image it is made from
            tw, th, _ = fit_box(oriented_w, oriented_h, size.width, size.height, spec.fit, spec.upscale)
            largest = outputs[0] if outputs else None
            if largest is not None and _can_reuse(largest[1], largest[0], size, tw, th, spec.fit):
                out = _resize_to(largest[1], tw, th, spec.fit, self.resample, self.reducing_gap)
            else:
                sw, sh = (th, tw) if swap else (tw, th)
                out = _resize_to(base, sw, sh, spec.fit, self.resample, self.reducing_gap)
                out = _to_srgb(out, icc)
                if info.orientation in EXIF_TRANSPOSE:  # rotate the output, never the full image
                    out = out.transpose(EXIF_TRANSPOSE[info.orientation])
            outputs.append((size, out))
        if outputs and _opaque_alpha(outputs[0][1]):
            outputs = [(s, o.convert("RGB") if o.mode == "RGBA" else o) for s, o in outputs]
        resize_ms = _ms(t_resize)

        t_encode = time.perf_counter()
        fmt = _choose_format(spec.format, outputs[0][1])
        thumbs = tuple(_encode(size.name, out, fmt, spec.quality) for size, out in outputs)
        encode_ms = _ms(t_encode)
        return ResizeResult(thumbs, info, Timings(decode_ms, resize_ms, encode_ms, _ms(t_start)), self.name)


def _decode_size(w: int, h: int, box_w: int, box_h: int, spec: ResizeSpec) -> tuple[int, int]:
    """The smallest decode size that still covers the largest output (draft picks a DCT scale >= this)."""
    if spec.fit == "inside":
        scale = min(box_w / w, box_h / h)
    else:
        scale = max(box_w / w, box_h / h)
    scale = min(scale, 1.0)
    return max(1, int(w * scale + 0.999)), max(1, int(h * scale + 0.999))


def _normalise_mode(im: Image.Image) -> Image.Image:
    """Any decoded mode -> L, RGB, RGBA or CMYK (8 bits per channel), first frame only."""
    mode = im.mode
    if mode in ("RGB", "L", "RGBA", "CMYK"):
        if mode in ("RGB", "L") and "transparency" in im.info:
            return im.convert("RGBA")
        return im
    if mode == "P":
        rgba_palette = im.palette is not None and im.palette.mode == "RGBA"
        return im.convert("RGBA" if "transparency" in im.info or rgba_palette else "RGB")
    if mode == "PA":
        return im.convert("RGBA")
    if mode == "1":
        return im.convert("L")
    if mode in ("LA", "La"):
        return im.convert("RGBA")
    if mode == "RGBa":
        return im.convert("RGBA")
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im).astype(np.float64)
        peak = (
            1.0
            if mode == "F" and arr.max(initial=0) <= 1.0
            else (65535.0 if mode != "F" and (mode.startswith("I;16") or arr.max(initial=0) > 255) else 255.0)
        )
        grey = Image.fromarray(np.clip(arr * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8), "L")
        tr = im.info.get("transparency")
        if isinstance(tr, int):
            rgba = grey.convert("RGBA")
            rgba.putalpha(Image.fromarray(np.where(np.asarray(im) == tr, 0, 255).astype(np.uint8), "L"))
            return rgba
        return grey
    return im.convert("RGBA" if "A" in mode else "RGB")


def _can_reuse(prev: Image.Image, prev_size: SizeSpec, size: SizeSpec, tw: int, th: int, fit: str) -> bool:
    """Make this size from the largest output when that holds enough pixels (and, for cover, the same crop)."""
    if fit != "inside" and size.width * prev_size.height != size.height * prev_size.width:
        return False
    return prev.width >= tw and prev.height >= th


def _resize_to(
    im: Image.Image, out_w: int, out_h: int, fit: str, resample: Image.Resampling, reducing_gap: float | None
) -> Image.Image:
    """Resize `im` to exactly out_w x out_h: the whole image (inside) or a window of that aspect (cover)."""
    src_w, src_h = im.size
    if fit == "inside":
        if (out_w, out_h) == im.size:
            return im.copy()
        return im.resize((out_w, out_h), resample, reducing_gap=reducing_gap)
    # cover: the largest window of the output's aspect (centre or most interesting), resized in one pass
    if out_w * src_h < out_h * src_w:  # output narrower than source: crop the width
        crop_w, crop_h = src_h * out_w / out_h, float(src_h)
    else:
        crop_w, crop_h = float(src_w), src_w * out_h / out_w
    if fit == "attention":
        left, top = _attention_origin(im, crop_w, crop_h)
    else:
        left, top = (src_w - crop_w) / 2, (src_h - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    return im.resize((out_w, out_h), resample, box=box, reducing_gap=reducing_gap)


def _attention_origin(im: Image.Image, crop_w: float, crop_h: float) -> tuple[float, float]:
    """Slide the crop window along the long axis to where edges and saturation are strongest (like vips attention)."""
    small = im.convert("RGB")
    small.thumbnail((128, 128), Image.Resampling.BOX)
    edges = small.convert("L").filter(ImageFilter.FIND_EDGES)
    sat = small.convert("HSV").getchannel("S")
    energy = Image.blend(edges, sat, 0.5)
    sx, sy = im.width / small.width, im.height / small.height
    horizontal = crop_w < im.width - 0.5
    n = small.width if horizontal else small.height
    line = energy.resize((n, 1) if horizontal else (1, n), Image.Resampling.BOX)
    profile = list(line.tobytes())
    win = max(1, round((crop_w / sx) if horizontal else (crop_h / sy)))
    best, best_i, acc = -1.0, 0, float(sum(profile[:win]))
    for i in range(0, n - win + 1):
        if i:
            acc += profile[i + win - 1] - profile[i - 1]
        if acc > best:
            best, best_i = acc, i
    if horizontal:
        return min(best_i * sx, im.width - crop_w), (im.height - crop_h) / 2
    return (im.width - crop_w) / 2, min(best_i * sy, im.height - crop_h)


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Embedded ICC profile (RGB, grey or CMYK) -> sRGB; CMYK without a profile -> naive RGB."""
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            desc = (ImageCms.getProfileDescription(src) or "").lower()
            if im.mode == "CMYK" or "srgb" not in desc:
                mode_in = im.mode
                alpha = im.getchannel("A") if mode_in == "RGBA" else None
                base = im.convert("RGB") if mode_in == "RGBA" else im
                out_mode = "L" if base.mode == "L" and "gray" in desc else "RGB"
                if base.mode == "L" and out_mode == "RGB":
                    base = base.convert("RGB")
                converted = ImageCms.profileToProfile(
                    base, src, _SRGB, outputMode=out_mode, renderingIntent=ImageCms.Intent.PERCEPTUAL
                )
                if converted is not None:
                    if alpha is not None:
                        converted = converted.convert("RGBA")
                        converted.putalpha(alpha)
                    im = converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # an unusable profile is ignored: the pixels are used as they are
    if im.mode == "CMYK":
        im = im.convert("RGB")
    im.info = {}
    return im


def _choose_format(requested: str, largest: Image.Image) -> str:
    if requested != "auto":
        return requested
    return "webp" if largest.mode == "RGBA" else "jpeg"


def _opaque_alpha(im: Image.Image) -> bool:
    return im.mode == "RGBA" and im.getchannel("A").getextrema() == (255, 255)


def _encode(name: str, im: Image.Image, fmt: str, quality: int) -> Thumbnail:
    if fmt == "jpeg":
        if im.mode == "RGBA":
            bg = Image.new("RGB", im.size, (255, 255, 255))
            bg.paste(im, mask=im.getchannel("A"))
            im = bg
        opts: dict[str, Any] = {"quality": quality, **SAVE_OPTIONS["jpeg"]}
    elif fmt == "webp":
        opts = {"quality": quality, **SAVE_OPTIONS["webp"]}
    elif fmt == "png":
        opts = {"compress_level": 6}
    elif fmt == "avif":
        opts = {"quality": quality, "speed": 8}
    else:  # validated by ResizeSpec; kept for a clear error if called directly
        raise InvalidSpec(expected("jpeg|webp|png|avif", "output format", fmt))
    im.info = {}
    buf = io.BytesIO()
    im.save(buf, _PIL_SAVE[fmt], **opts)
    return Thumbnail(name, im.width, im.height, fmt, CONTENT_TYPES[fmt], buf.getvalue())


__all__ = ["PillowResizer"]
