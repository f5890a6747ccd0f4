"""Resizer registry: `get_resizer(name, **opts)` imports the chosen backend lazily (pillow | vips)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..errors import ConfigError, ErrorCode, expected
from .base import (
    CONTENT_TYPES,
    EXTENSIONS,
    FITS,
    FORMATS,
    Limits,
    Resizer,
    ResizeResult,
    ResizeSpec,
    SizeSpec,
    SourceInfo,
    Thumbnail,
    Timings,
    parse_sizes,
)

# name -> (module, class); aliases point at the same backend
BACKENDS: dict[str, tuple[str, str]] = {
    "pillow": (".pillow", "PillowResizer"),
    "vips": (".vips", "VipsResizer"),
}
ALIASES: dict[str, str] = {"pil": "pillow", "pyvips": "vips", "libvips": "vips"}


def backend_names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def canonical_backend(name: str) -> str:
    key = (name or "").strip().lower()
    key = ALIASES.get(key, key)
    if key not in BACKENDS:
        raise ConfigError(
            expected(f"one of {'|'.join(BACKENDS)}", "resizer backend", name),
            field="backend",
            code=ErrorCode.UNKNOWN_BACKEND,
        )
    return key


def get_resizer(name: str, **opts: Any) -> Resizer:
    """A ready resizer for backend `name` (options are backend specific, e.g. vips `threads=1`)."""
    key = canonical_backend(name)
    module_name, class_name = BACKENDS[key]
    module = import_module(module_name, __name__)
    resizer: Resizer = getattr(module, class_name)(**opts)
    return resizer


__all__ = [
    "BACKENDS",
    "CONTENT_TYPES",
    "EXTENSIONS",
    "FITS",
    "FORMATS",
    "Limits",
    "ResizeResult",
    "ResizeSpec",
    "Resizer",
    "SizeSpec",
    "SourceInfo",
    "Thumbnail",
    "Timings",
    "backend_names",
    "canonical_backend",
    "get_resizer",
    "parse_sizes",
]
