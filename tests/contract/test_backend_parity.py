"""Pillow and pyvips agree: the 1024 px outputs of every valid fixture are perceptually close (SSIM >= 0.97)."""

from __future__ import annotations

import pytest

from thumbnailer.resizers import ResizeResult

from .conftest import Resize
from .imaging import grey, ssim
from .test_resizer_contract import EXPECTED

pytestmark = pytest.mark.vips


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_backends_agree_on_the_large_output(name: str, resize: Resize) -> None:
    pil, vips = resize("pillow", name), resize("vips", name)
    assert isinstance(pil, ResizeResult) and isinstance(vips, ResizeResult)
    a, b = pil.outputs[0], vips.outputs[0]
    assert (a.width, a.height, a.format) == (b.width, b.height, b.format)
    score = ssim(grey(a.data), grey(b.data))
    assert score >= 0.97, f"{name}: SSIM {score:.4f}"
