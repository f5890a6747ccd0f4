"""Perceptual comparison helpers for image tests (SSIM with numpy, decode to arrays); never compare bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def _gaussian_kernel(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - size // 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _blur(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable 'valid' convolution along both axes."""
    n = len(k)
    h, w = a.shape
    tmp = sum(k[i] * a[:, i : w - n + 1 + i] for i in range(n))
    return sum(k[i] * tmp[i : h - n + 1 + i, :] for i in range(n))  # type: ignore[no-any-return]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5) of two same-shape greyscale arrays, 0..255."""
    if a.shape != b.shape:
        raise ValueError(f"Expected equal shapes for ssim but received {a.shape} and {b.shape}")
    x, y = a.astype(np.float64), b.astype(np.float64)
    k = _gaussian_kernel()
    mx, my = _blur(x, k), _blur(y, k)
    sxx = _blur(x * x, k) - mx * mx
    syy = _blur(y * y, k) - my * my
    sxy = _blur(x * y, k) - mx * my
    num = (2 * mx * my + _C1) * (2 * sxy + _C2)
    den = (mx * mx + my * my + _C1) * (sxx + syy + _C2)
    return float(np.mean(num / den))


def decode(data: bytes, mode: str = "RGB") -> Image.Image:
    """Decode and, when there is transparency, composite over white first (what a viewer on white shows)."""
    im = Image.open(io.BytesIO(data))
    im.load()
    if mode != "RGBA" and (im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert(mode)
    return im.convert(mode)


def grey(data_or_image: bytes | Image.Image | np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Luma (ITU-R 601, like Pillow's "L") of encoded bytes, a Pillow image or an RGB array."""
    if isinstance(data_or_image, np.ndarray):
        if data_or_image.ndim == 2:
            return data_or_image.astype(np.float64)
        return data_or_image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    im = decode(data_or_image, "L") if isinstance(data_or_image, bytes) else data_or_image.convert("L")
    if size is not None and im.size != size:
        im = im.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.float64)


def rgb(data_or_image: bytes | Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    im = decode(data_or_image) if isinstance(data_or_image, bytes) else data_or_image.convert("RGB")
    if size is not None and im.size != size:
        im = im.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.float64)


def mean_colour_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute per-channel difference (0..255) of two same-shape RGB arrays."""
    return float(np.mean(np.abs(a - b)))


def photo(w: int, h: int, mode: str = "RGB") -> Image.Image:
    """A photo-like test image: smooth gradients with seeded noise (what JPEG is for); RGBA has an opaque centre, a
    soft edge and clear corners; L is its grey version."""
    rng = np.random.default_rng(16)
    y, x = np.mgrid[0:h, 0:w]
    px = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h))], axis=-1).astype(np.int16)
    px = np.clip(px + rng.integers(-12, 12, px.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(px, "RGB")
    if mode == "RGBA":
        r = np.hypot((x - w / 2) / (w / 2), (y - h / 2) / (h / 2))
        im.putalpha(Image.fromarray((np.clip((1.0 - r) / 0.2, 0, 1) * 255).astype(np.uint8), "L"))
    return im if mode in ("RGB", "RGBA") else im.convert(mode)
