"""Contract-test fixtures: both backends as a parameter, the generated corpus and a per-session resize cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from thumbnailer.errors import ThumbnailError
from thumbnailer.resizers import ResizeResult, ResizeSpec, get_resizer

BACKENDS = [pytest.param("pillow", id="pillow"), pytest.param("vips", id="vips", marks=pytest.mark.vips)]
DEFAULT_SPEC = ResizeSpec()

Resize = Callable[..., "ResizeResult | ThumbnailError"]


@pytest.fixture(scope="session")
def manifest(generated_fixtures: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((generated_fixtures / "manifest.json").read_text())
    return {f["name"]: f for f in data["fixtures"]}


@pytest.fixture(scope="session")
def resize(generated_fixtures: Path) -> Resize:
    """resize(backend, fixture_name, spec=DEFAULT_SPEC) -> ResizeResult or the ThumbnailError raised (cached)."""
    cache: dict[tuple[str, str, ResizeSpec], ResizeResult | ThumbnailError] = {}

    def run(backend: str, name: str, spec: ResizeSpec = DEFAULT_SPEC) -> ResizeResult | ThumbnailError:
        key = (backend, name, spec)
        if key not in cache:
            data = (generated_fixtures / name).read_bytes()
            try:
                cache[key] = get_resizer(backend).resize(data, spec)
            except ThumbnailError as exc:
                cache[key] = exc
        return cache[key]

    return run
