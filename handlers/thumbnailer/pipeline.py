"""Fetch -> resize -> put for one object, given an ObjectStore port and a Resizer (no boto3, no image library)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from . import contract as c
from .config import Settings
from .errors import ErrorCode, ThumbnailError, decode_guard
from .events import ObjectRef
from .resizers.base import Resizer, ResizeResult, ResizeSpec
from .resizers.sniff import format_name

RUN_ID_METADATA = c.META_RUN_ID


@dataclass(frozen=True, slots=True)
class SourceObject:
    """A downloaded source object."""

    bucket: str
    key: str
    data: bytes
    etag: str = ""
    version_id: str = ""
    content_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.metadata.get(RUN_ID_METADATA, "")


class ObjectStore(Protocol):
    """Object storage port (S3 in Lambda, a dict in tests). Raises our errors, never the SDK's."""

    def get(self, bucket: str, key: str, *, version_id: str = "", max_bytes: int | None = None) -> SourceObject: ...

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None: ...


class DeadLetterSink(Protocol):
    """Where permanent failures are reported (the DLQ). Raises RetryableError when it cannot deliver."""

    def send(self, body: str, attributes: dict[str, str]) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredThumbnail:
    """One uploaded output."""

    size: str
    bucket: str
    key: str
    width: int
    height: int
    format: str
    bytes: int


@dataclass(frozen=True, slots=True)
class ObjectOutcome:
    """Everything made for one source object."""

    source: SourceObject
    thumbnails: tuple[StoredThumbnail, ...]
    result: ResizeResult
    total_ms: float


def output_key(source_key: str, size_name: str, fmt: str, settings: Settings) -> str:
    """`uploads/a/x.jpg` -> `thumbnails/<size>/a/x.jpg.<ext>` under the settings' prefixes (rule: contract)."""
    return c.output_key(
        source_key, size_name, fmt, input_prefix=settings.input_prefix, output_prefix=settings.output_prefix
    )


def should_skip(ref: ObjectRef, settings: Settings) -> str:
    """A reason not to process this object ('' = process): outside the input prefix, or one of our own outputs."""
    if settings.input_prefix and not ref.key.startswith(settings.input_prefix):
        return f"key outside input prefix {settings.input_prefix!r}"
    same_bucket = not settings.output_bucket or settings.output_bucket == ref.bucket
    if same_bucket and ref.key.startswith(settings.output_prefix):
        return "key is a thumbnail (output prefix)"
    return ""


def fetch(ref: ObjectRef, store: ObjectStore, settings: Settings) -> SourceObject:
    return store.get(ref.bucket, ref.key, version_id=ref.version_id, max_bytes=settings.max_input_bytes)


def make_thumbnails(
    src: SourceObject,
    resizer: Resizer,
    spec: ResizeSpec,
    store: ObjectStore,
    settings: Settings,
    *,
    handler_start_ms: int,
    started: float,
) -> ObjectOutcome:
    """Resize `src` to every size and upload each output with Content-Type, Cache-Control and linking metadata."""
    # a failure on the source bytes repeats on every attempt: permanent, whatever the resizer raised
    with decode_guard(format_name(src.data), f"the {resizer.name} resizer"):
        result = resizer.resize(src.data, spec)
    out_bucket = settings.output_bucket or src.bucket
    total_ms = (time.perf_counter() - started) * 1000.0
    base_meta = {
        c.META_SOURCE_BUCKET: src.bucket,
        c.META_SOURCE_KEY: c.encode_source_key(src.key),  # S3 metadata is ASCII: the key is percent-encoded UTF-8
        c.META_SOURCE_ETAG: src.etag,
        c.META_SOURCE_VERSION_ID: src.version_id,
        c.META_BACKEND: result.backend,
        c.META_HANDLER_START_MS: str(handler_start_ms),
        c.META_RESIZE_MS: f"{result.timings.total_ms:.1f}",
        c.META_TOTAL_MS: f"{total_ms:.1f}",
    }
    if src.run_id:
        base_meta[RUN_ID_METADATA] = src.run_id
    stored: list[StoredThumbnail] = []
    for thumb in result.outputs:
        key = output_key(src.key, thumb.name, thumb.format, settings)
        meta = {
            **base_meta,
            c.META_THUMBNAIL_SIZE: thumb.name,
            c.META_WIDTH: str(thumb.width),
            c.META_HEIGHT: str(thumb.height),
        }
        store.put(
            out_bucket,
            key,
            thumb.data,
            content_type=thumb.content_type,
            cache_control=settings.cache_control,
            metadata={k: v for k, v in meta.items() if v != ""},
        )
        stored.append(
            StoredThumbnail(thumb.name, out_bucket, key, thumb.width, thumb.height, thumb.format, len(thumb.data))
        )
    return ObjectOutcome(src, tuple(stored), result, (time.perf_counter() - started) * 1000.0)


def describe(exc: BaseException) -> tuple[str, str]:
    """(code, message) of any exception; MemoryError is RESOURCE_EXHAUSTED, other unknown ones UNEXPECTED (+ type)."""
    if isinstance(exc, ThumbnailError):
        return str(exc.code), exc.message
    if isinstance(exc, MemoryError):
        return str(ErrorCode.RESOURCE_EXHAUSTED), f"{type(exc).__name__}: {exc}"
    return str(ErrorCode.UNEXPECTED), f"{type(exc).__name__}: {exc}"
