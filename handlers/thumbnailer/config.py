"""Handler settings: a frozen Settings read from THUMB_* environment variables at cold start, to_env() round-trip."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .contract import DEFAULT_INPUT_PREFIX, DEFAULT_OUTPUT_PREFIX
from .errors import ConfigError, ThumbnailError, expected
from .resizers.base import DEFAULT_RESAMPLE, FITS, FORMATS, RESAMPLE_CHOICES, Limits, ResizeSpec, SizeSpec, parse_sizes

PREFIX = "THUMB_"
BACKEND_CHOICES = ("pillow", "vips")
OVERLAP_CHOICES = ("on", "off")  # THUMB_OVERLAP: fetch/upload overlapped with resizing inside an invocation
DEFAULT_SIZES = "large:1024x1024,small:256x256"
# A Lambda function gets one vCPU per 1769 MB of memory (up to 6).
MB_PER_VCPU = 1769

# field name -> env var name (the public contract with infra; keep stable)
ENV_NAMES: dict[str, str] = {
    "output_bucket": "THUMB_OUTPUT_BUCKET",
    "input_prefix": "THUMB_INPUT_PREFIX",
    "output_prefix": "THUMB_OUTPUT_PREFIX",
    "dlq_url": "THUMB_DLQ_URL",
    "backend": "THUMB_BACKEND",
    "sizes": "THUMB_SIZES",
    "fit": "THUMB_FIT",
    "format": "THUMB_FORMAT",
    "quality": "THUMB_QUALITY",
    "max_input_bytes": "THUMB_MAX_INPUT_BYTES",
    "max_pixels": "THUMB_MAX_PIXELS",
    "cache_control": "THUMB_CACHE_CONTROL",
    "max_receive_count": "THUMB_MAX_RECEIVE_COUNT",
    "vips_threads": "THUMB_VIPS_THREADS",
    "resample": "THUMB_RESAMPLE",
    "overlap": "THUMB_OVERLAP",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated handler settings; construct directly (tests, infra) or with from_env() (cold start)."""

    output_bucket: str = ""  # empty = write thumbnails into the source bucket (single-bucket mode)
    input_prefix: str = DEFAULT_INPUT_PREFIX
    output_prefix: str = DEFAULT_OUTPUT_PREFIX
    dlq_url: str = ""
    backend: str = "pillow"
    sizes: str = DEFAULT_SIZES
    fit: str = "inside"
    format: str = "auto"
    quality: int = 80
    max_input_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 100_000_000
    cache_control: str = "public, max-age=86400"
    max_receive_count: int = 3
    vips_threads: int = 0  # 0 = derive from the function's memory size (one per vCPU)
    resample: str = DEFAULT_RESAMPLE  # Pillow's resampling filter (RESAMPLE_CHOICES); vips always uses lanczos3
    overlap: str = "on"  # on = prefetch the next source and upload in the background (pipeline.OverlappedBatch)

    def __post_init__(self) -> None:
        for name in ("output_bucket", "input_prefix", "output_prefix", "dlq_url", "sizes", "cache_control"):
            v = getattr(self, name)
            if not isinstance(v, str):
                raise ConfigError(expected("a string", ENV_NAMES[name], v), field=name)
        if self.backend not in BACKEND_CHOICES:
            raise ConfigError(
                expected(f"one of {'|'.join(BACKEND_CHOICES)}", "THUMB_BACKEND", self.backend), field="backend"
            )
        if self.overlap not in OVERLAP_CHOICES:
            raise ConfigError(
                expected(f"one of {'|'.join(OVERLAP_CHOICES)}", "THUMB_OVERLAP", self.overlap), field="overlap"
            )
        if self.resample not in RESAMPLE_CHOICES:
            raise ConfigError(
                expected(f"one of {'|'.join(RESAMPLE_CHOICES)}", "THUMB_RESAMPLE", self.resample), field="resample"
            )
        if self.fit not in FITS:
            raise ConfigError(expected(f"one of {'|'.join(FITS)}", "THUMB_FIT", self.fit), field="fit")
        if self.format not in FORMATS:
            raise ConfigError(expected(f"one of {'|'.join(FORMATS)}", "THUMB_FORMAT", self.format), field="format")
        for name, lo, hi in (
            ("quality", 1, 100),
            ("max_input_bytes", 1, 2**40),
            ("max_pixels", 1, 2**40),
            ("max_receive_count", 1, 1000),
            ("vips_threads", 0, 64),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(expected(f"an integer {lo}..{hi}", ENV_NAMES[name], v), field=name)
        if self.input_prefix and not self.input_prefix.endswith("/"):
            raise ConfigError(
                expected("a prefix ending in '/' (or empty)", "THUMB_INPUT_PREFIX", self.input_prefix),
                field="input_prefix",
            )
        if not self.output_prefix.endswith("/"):
            raise ConfigError(
                expected("a non-empty prefix ending in '/'", "THUMB_OUTPUT_PREFIX", self.output_prefix),
                field="output_prefix",
            )
        if self.input_prefix and self.output_prefix.startswith(self.input_prefix):
            # single-bucket mode would otherwise feed thumbnails back into the pipeline
            raise ConfigError(
                expected(
                    f"an output prefix outside the input prefix {self.input_prefix!r}",
                    "THUMB_OUTPUT_PREFIX",
                    self.output_prefix,
                ),
                field="output_prefix",
            )
        if "\n" in self.cache_control or "\r" in self.cache_control:
            raise ConfigError(
                expected("a single-line header value", "THUMB_CACHE_CONTROL", self.cache_control), field="cache_control"
            )
        try:
            parse_sizes(self.sizes)
        except ThumbnailError as exc:
            raise ConfigError(
                expected("'<name>:<W>x<H>[,...]' with unique names", "THUMB_SIZES", self.sizes), field="sizes"
            ) from exc

    # ---- derived values -----------------------------------------------------------------------------------------
    @property
    def size_specs(self) -> tuple[SizeSpec, ...]:
        return parse_sizes(self.sizes)

    @property
    def limits(self) -> Limits:
        return Limits(max_input_bytes=self.max_input_bytes, max_pixels=self.max_pixels)

    def resize_spec(self) -> ResizeSpec:
        return ResizeSpec(
            sizes=self.size_specs, fit=self.fit, format=self.format, quality=self.quality, limits=self.limits
        )

    def effective_vips_threads(self, memory_mb: int | None) -> int:
        """Explicit THUMB_VIPS_THREADS, else one thread per vCPU a Lambda of `memory_mb` gets (1 when unknown)."""
        if self.vips_threads:
            return self.vips_threads
        if not memory_mb:
            return 1
        return max(1, min(6, memory_mb // MB_PER_VCPU))

    # ---- environment round-trip ---------------------------------------------------------------------------------
    def to_env(self) -> dict[str, str]:
        """Every setting as THUMB_* strings (what infra puts into the function environment)."""
        return {ENV_NAMES[f.name]: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from THUMB_* variables (os.environ by default); missing ones take the defaults."""
        source: Mapping[str, str] = os.environ if env is None else env
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            name = ENV_NAMES[f.name]
            if name not in source:
                continue
            raw = source[name]
            if f.type in ("int", int):
                try:
                    kwargs[f.name] = int(raw.strip())
                except ValueError:
                    raise ConfigError(expected("an integer", name, raw), field=f.name) from None
            else:
                stripped = f.name in ("backend", "fit", "format", "sizes", "overlap", "resample")
                kwargs[f.name] = raw.strip() if stripped else raw
        return cls(**kwargs)


def lambda_memory_mb(env: Mapping[str, str] | None = None) -> int | None:
    """The function's configured memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), None outside Lambda."""
    source: Mapping[str, str] = os.environ if env is None else env
    raw = source.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    return int(raw) if raw.strip().isdigit() else None
