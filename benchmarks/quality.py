"""Image quality metrics on numpy arrays: luma, PSNR and SSIM (no image library, no I/O)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from common.errors import expected

from .errors import BenchError, BenchErrorCode

Array = NDArray[np.floating]


def luma(rgb: NDArray[np.generic]) -> NDArray[np.float64]:
    """BT.601 luma of an HxWx3 (or HxW) array in 0..255, as float64."""
    a = np.asarray(rgb, dtype=np.float64)
    if a.ndim == 2:
        return a
    if a.ndim != 3 or a.shape[2] < 3:
        raise BenchError(
            BenchErrorCode.INVALID_ARGUMENT, expected("an HxW or HxWx3 array", "luma input", getattr(a, "shape", a))
        )
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def _same_shape(a: NDArray[np.generic], b: NDArray[np.generic]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise BenchError(
            BenchErrorCode.INVALID_ARGUMENT, expected(f"an array of shape {x.shape}", "the compared image", y.shape)
        )
    if x.size == 0:
        raise BenchError(BenchErrorCode.INVALID_ARGUMENT, expected("a non-empty array", "the compared image", x.shape))
    return x, y


def psnr(a: NDArray[np.generic], b: NDArray[np.generic], peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB (inf when identical)."""
    x, y = _same_shape(a, b)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _box_mean(a: NDArray[np.float64], win: int) -> NDArray[np.float64]:
    """Mean over every win x win window fully inside the image ('valid' mode), via an integral image."""
    s = np.pad(a, ((1, 0), (1, 0))).cumsum(axis=0).cumsum(axis=1)
    total = s[win:, win:] - s[:-win, win:] - s[win:, :-win] + s[:-win, :-win]
    return total / float(win * win)


def ssim(a: NDArray[np.generic], b: NDArray[np.generic], peak: float = 255.0, win: int = 7) -> float:
    """Mean structural similarity of two single-channel images (uniform win x win window, K1=0.01, K2=0.03).

    Matches scikit-image's `structural_similarity` defaults (uniform 7x7 window, sample covariance) to ~1e-6.
    """
    x, y = _same_shape(a, b)
    if x.ndim != 2:
        raise BenchError(
            BenchErrorCode.INVALID_ARGUMENT, expected("2-D (single channel) arrays", "ssim input", x.shape)
        )
    if min(x.shape) < win:
        raise BenchError(
            BenchErrorCode.INVALID_ARGUMENT, expected(f"images at least {win}x{win}", "ssim input", x.shape)
        )
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    n = win * win
    cov_norm = n / (n - 1.0)
    mx, my = _box_mean(x, win), _box_mean(y, win)
    vx = cov_norm * (_box_mean(x * x, win) - mx * mx)
    vy = cov_norm * (_box_mean(y * y, win) - my * my)
    vxy = cov_norm * (_box_mean(x * y, win) - mx * my)
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    # skimage crops (win-1)//2 from each border of the full-size map; 'valid' mode gives exactly that region
    return float(s.mean())
