"""Fetch -> resize -> put for one object, or for a batch's objects with the I/O overlapped (no boto3, no image library).

Overlapped (THUMB_OVERLAP=on): `OverlappedBatch` fetches the next sources while the current one is resized and uploads
thumbnails on worker threads, in a memory budget taken from the function's MemorySize; each object's outcome (its
thumbnails or its exception) is the same as the sequential path's, only the time it takes changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from . import contract as c
from .config import MB_PER_VCPU, Settings
from .errors import ErrorCode, ThumbnailError, decode_guard
from .events import ObjectRef
from .resizers.base import Resizer, ResizeResult, ResizeSpec
from .resizers.sniff import _dimensions, detect_format, format_name

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
    get_cpu_ms: float = 0.0  # CPU of the thread that fetched it, over the store's get (the S3 client's share)

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
    put_cpu_ms: float = 0.0  # CPU of the threads that uploaded the thumbnails, over the store's puts


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
    """The source, with the CPU its GET took on this thread (`get_cpu_ms`)."""
    cpu0 = time.thread_time()
    src = store.get(ref.bucket, ref.key, version_id=ref.version_id, max_bytes=settings.max_input_bytes)
    return replace(src, get_cpu_ms=(time.thread_time() - cpu0) * 1000.0)


def _timed_put(store: ObjectStore, bucket: str, key: str, data: bytes, kwargs: dict[str, Any]) -> float:
    """store.put; the CPU ms it took on the calling thread."""
    cpu0 = time.thread_time()
    store.put(bucket, key, data, **kwargs)
    return (time.thread_time() - cpu0) * 1000.0


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
    result = resize_source(src, resizer, spec)
    return upload_thumbnails(src, result, store, settings, handler_start_ms=handler_start_ms, started=started)


def resize_source(src: SourceObject, resizer: Resizer, spec: ResizeSpec) -> ResizeResult:
    """The CPU part: every size of `src`; a failure on the source bytes is permanent, whatever the resizer raised."""
    # a failure on the source bytes repeats on every attempt: permanent, whatever the resizer raised
    cpu0 = time.process_time()
    with decode_guard(format_name(src.data), f"the {resizer.name} resizer"):
        result = resizer.resize(src.data, spec)
    cpu_ms = (time.process_time() - cpu0) * 1000.0
    return replace(result, timings=replace(result.timings, cpu_ms=cpu_ms))


def upload_thumbnails(
    src: SourceObject,
    result: ResizeResult,
    store: ObjectStore,
    settings: Settings,
    *,
    handler_start_ms: int,
    started: float,
    resized_ms: float | None = None,
    puts: Executor | None = None,
) -> ObjectOutcome:
    """The output part: one PUT per thumbnail, in order, stopping at the first failure (it is raised).

    `resized_ms` is the time from `started` to the end of the resize (the `total-ms` metadata), now when omitted.
    With `puts` (the overlapped path) the PUTs run at once, the first here and the others on that pool: an object's
    upload takes one PUT's latency instead of one per size. Every PUT is then attempted, and the failure raised is
    the first in size order, the one the sequential path stops at: the object's outcome is the same (only a
    thumbnail after a failed one may be written, and the retry that follows writes it again).
    """
    out_bucket = settings.output_bucket or src.bucket
    total_ms = (time.perf_counter() - started) * 1000.0 if resized_ms is None else resized_ms
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
    calls: list[tuple[str, str, bytes, dict[str, Any]]] = []
    for thumb in result.outputs:
        key = output_key(src.key, thumb.name, thumb.format, settings)
        meta = {
            **base_meta,
            c.META_THUMBNAIL_SIZE: thumb.name,
            c.META_WIDTH: str(thumb.width),
            c.META_HEIGHT: str(thumb.height),
        }
        kwargs: dict[str, Any] = {
            "content_type": thumb.content_type,
            "cache_control": settings.cache_control,
            "metadata": {k: v for k, v in meta.items() if v != ""},
        }
        calls.append((out_bucket, key, thumb.data, kwargs))
        stored.append(
            StoredThumbnail(thumb.name, out_bucket, key, thumb.width, thumb.height, thumb.format, len(thumb.data))
        )
    put_cpu_ms = 0.0
    if puts is None or len(calls) < 2:
        for bucket, key, data, kwargs in calls:
            put_cpu_ms += _timed_put(store, bucket, key, data, kwargs)
    else:
        later = [puts.submit(_timed_put, store, *call) for call in calls[1:]]
        first: Exception | None = None
        try:
            put_cpu_ms += _timed_put(store, *calls[0])
        except Exception as exc:  # noqa: BLE001 - raised below, once the PUTs under way are done
            first = exc
        errors = [first, *(f.exception() for f in later)]  # exception() waits for each
        for err in errors:
            if err is not None:
                raise err
        put_cpu_ms += sum(f.result() for f in later)
    return ObjectOutcome(src, tuple(stored), result, (time.perf_counter() - started) * 1000.0, put_cpu_ms)


def describe(exc: BaseException) -> tuple[str, str]:
    """(code, message) of any exception; MemoryError is RESOURCE_EXHAUSTED, other unknown ones UNEXPECTED (+ type)."""
    if isinstance(exc, ThumbnailError):
        return str(exc.code), exc.message
    if isinstance(exc, MemoryError):
        return str(ErrorCode.RESOURCE_EXHAUSTED), f"{type(exc).__name__}: {exc}"
    return str(ErrorCode.UNEXPECTED), f"{type(exc).__name__}: {exc}"


# ---- overlapped processing (THUMB_OVERLAP=on) ----------------------------------------------------------------------
_MB = 1024 * 1024
RUNTIME_BASELINE_MB = 96  # a warm environment before any source: interpreter, boto3, Powertools, the image library
SOURCE_BUDGET_SHARE = 0.5  # of the memory above the baseline; the rest is the codecs' working memory and slack
DECODED_BYTES_PER_PIXEL = 4  # RGBA, 8 bits per channel
UNKNOWN_DECODE_FACTOR = 16  # decoded / encoded bytes when the header gives no dimensions (and before the fetch)
DEFAULT_MAX_IN_FLIGHT = 8  # sources between fetch start and result taken; the memory budget usually binds first
DEFAULT_UPLOAD_WORKERS = 4  # objects being uploaded at once (each object's PUTs at once: upload_thumbnails)
# GETs at once from one full vCPU up: there a GET (tens of ms to its first byte) outlasts a resize and one fetcher
# left the resizer waiting; below it the resize is the longer step and one fetcher keeps up
DEFAULT_FETCH_WORKERS = 4
MAX_RESIZE_WORKERS = 6  # Lambda's most vCPUs (10240 MB)
DEFAULT_MEMORY_MB = 512  # outside Lambda (AWS_LAMBDA_FUNCTION_MEMORY_SIZE unset)


def fetch_workers_for(memory_mb: int | None) -> int:
    """Concurrent GETs of an overlapped batch: DEFAULT_FETCH_WORKERS from one full vCPU up, else 1.

    One fetcher also keeps the memory rule exact: the next fetch is admitted on the real cost of every earlier one.
    With several, fetches under way are admitted on their event sizes (encoded bytes exact, pixels estimated), so
    a source that decodes larger than estimated can have others' encoded bytes beside it (never a second decode);
    at 1769 MB and up the budget leaves room for that.
    """
    return DEFAULT_FETCH_WORKERS if (memory_mb or DEFAULT_MEMORY_MB) >= MB_PER_VCPU else 1


def resize_workers_for(memory_mb: int | None) -> int:
    """Resizes at once: Lambda's vCPUs for `memory_mb`, rounded (1 up to 2653 MB, 2 at 3008 MB's 1.7 vCPU), at most
    MAX_RESIZE_WORKERS. Both backends' decode, resample and encode run without the GIL, so each uses a vCPU."""
    vcpus = (memory_mb or DEFAULT_MEMORY_MB) / MB_PER_VCPU
    return max(1, min(MAX_RESIZE_WORKERS, round(vcpus)))


def source_budget_bytes(memory_mb: int | None) -> int:
    """Bytes the sources in flight may take: SOURCE_BUDGET_SHARE of the MemorySize above the runtime's baseline."""
    mb = memory_mb or DEFAULT_MEMORY_MB
    return int(max(0, mb - RUNTIME_BASELINE_MB) * _MB * SOURCE_BUDGET_SHARE)


@dataclass(frozen=True, slots=True)
class SourceCost:
    """Memory of one source in flight: its encoded bytes (held until its record is done) and its decoded pixels."""

    encoded: int
    decoded: int


def source_cost(data: bytes) -> SourceCost:
    """The cost of fetched bytes: decoded size from the header's dimensions, else UNKNOWN_DECODE_FACTOR x bytes."""
    width = height = 0
    fmt = detect_format(data)
    if fmt is not None:
        try:
            width, height = _dimensions(fmt, data)
        except Exception:  # noqa: BLE001 - a broken header is the resizer's to report; here it only costs an estimate
            width = height = 0
    if width > 0 and height > 0:
        decoded = width * height * DECODED_BYTES_PER_PIXEL
    else:
        decoded = len(data) * UNKNOWN_DECODE_FACTOR
    return SourceCost(len(data), decoded)


def expected_cost(ref: ObjectRef, budget: int) -> SourceCost:
    """The cost reserved before the fetch: from the event's object size, the whole budget when the size is unknown."""
    if ref.size < 0:
        return SourceCost(budget, 0)
    return SourceCost(ref.size, ref.size * UNKNOWN_DECODE_FACTOR)


def fits(live: Sequence[SourceCost], new: SourceCost, budget: int, decoders: int = 1) -> bool:
    """At most `decoders` sources are decoded at once: the peak is every source's encoded bytes plus the `decoders`
    largest decodes."""
    if not live:
        return True  # the sequential path holds one source whatever its size: so may we
    return reserved_bytes([*live, new], decoders) <= budget


def reserved_bytes(live: Sequence[SourceCost], decoders: int = 1) -> int:
    """Memory `live` may take at its peak: every encoded source plus the `decoders` largest decodes."""
    largest = sorted((c.decoded for c in live), reverse=True)[: max(1, decoders)]
    return sum(c.encoded for c in live) + sum(largest)


@dataclass(slots=True)
class Attempt:
    """What happened to one object of an overlapped batch: its source (None if the fetch failed), outcome or error."""

    ref: ObjectRef
    started: float = 0.0  # perf_counter() when its fetch began
    finished: float = 0.0  # perf_counter() when its last step ended
    src: SourceObject | None = None
    outcome: ObjectOutcome | None = None
    error: Exception | None = None

    @property
    def ms(self) -> float:
        return (self.finished - self.started) * 1000.0


@dataclass(slots=True)
class OverlapStats:
    """How far the overlap went in one batch (tests and debug logs read it)."""

    objects: int = 0
    budget_bytes: int = 0
    max_in_flight: int = 0
    peak_in_flight: int = 0
    peak_reserved_bytes: int = 0
    fetch_workers: int = 0
    resize_workers: int = 0


class BatchClosed(Exception):
    """Raised for objects an `OverlappedBatch` never started because it was closed first."""


class OverlappedBatch:
    """fetch -> resize -> put for `refs` in order, on three stages that overlap (fetchers, resizers, uploaders).

    A source is in flight from the start of its fetch until its result is taken (`result(i)`, in order). Fetches
    are admitted in order, up to `fetch_workers` at once (`fetch_workers_for`); `resize_workers` resizers (one per
    vCPU, `resize_workers_for`) take them in order and the budget holds that many decodes at once. A fetch starts
    only when the sources in flight plus the new one fit `source_budget_bytes(memory_mb)` (see `fits`), and at most
    `max_in_flight` are in flight; a source alone is always admitted, as on the sequential path. Each
    object's steps are the sequential ones, its PUTs at once (`upload_thumbnails` with `puts`: the failure raised
    is the first in size order), so every object ends with the same thumbnails or the same exception. Use as a
    context manager: closing waits for the threads, so nothing runs after the invocation returns.
    """

    def __init__(
        self,
        refs: Sequence[ObjectRef],
        store: ObjectStore,
        resizer: Resizer,
        spec: ResizeSpec,
        settings: Settings,
        *,
        handler_start_ms: int,
        memory_mb: int | None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        upload_workers: int = DEFAULT_UPLOAD_WORKERS,
        fetch_workers: int | None = None,
        resize_workers: int | None = None,
    ) -> None:
        self.refs = tuple(refs)
        self.store, self.resizer, self.spec, self.settings = store, resizer, spec, settings
        self.handler_start_ms = handler_start_ms
        self.budget = source_budget_bytes(memory_mb)
        self.max_in_flight = max(1, max_in_flight)
        self.stats = OverlapStats(len(self.refs), self.budget, self.max_in_flight)
        self._attempts: list[Attempt | None] = [Attempt(ref) for ref in self.refs]
        self._fetched = [threading.Event() for _ in self.refs]
        self._done = [threading.Event() for _ in self.refs]
        self._cond = threading.Condition()
        self._live: dict[int, SourceCost] = {}  # index -> memory reserved for it
        self._taken = 0  # every index below has been released
        self._closed = False
        self._uploads = ThreadPoolExecutor(max_workers=max(1, upload_workers), thread_name_prefix="thumb-upload")
        # each upload runs its first PUT itself and the object's other sizes here (threads start only when used)
        later_puts = max(1, upload_workers) * max(0, len(spec.sizes) - 1)
        self._puts = ThreadPoolExecutor(max_workers=max(1, later_puts), thread_name_prefix="thumb-put")
        self._fetch_workers = fetch_workers_for(memory_mb) if fetch_workers is None else max(1, fetch_workers)
        self._pending = 0  # fetches admitted whose real cost is not known yet (< _fetch_workers)
        self._fetches = ThreadPoolExecutor(max_workers=self._fetch_workers, thread_name_prefix="thumb-fetch")
        self._resizers = resize_workers_for(memory_mb) if resize_workers is None else max(1, resize_workers)
        self._next_resize = 0  # the next index a resizer takes (in order, under _cond)
        self.stats.fetch_workers, self.stats.resize_workers = self._fetch_workers, self._resizers
        self._threads = (
            threading.Thread(target=self._fetch_all, name="thumb-admit", daemon=True),
            *(
                threading.Thread(target=self._resize_all, name=f"thumb-resize-{n}", daemon=True)
                for n in range(self._resizers)
            ),
        )

    def __enter__(self) -> OverlappedBatch:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def in_flight(self) -> int:
        with self._cond:
            return len(self._live)

    def result(self, index: int) -> Attempt:
        """Wait for object `index` (and every earlier one), release them from the budget and hand over its attempt."""
        for i in range(self._taken, index + 1):
            self._done[i].wait()
        attempt = self._attempts[index]
        if attempt is None:
            raise BatchClosed(f"Expected object {index} of the batch to be untaken but it was taken before")
        with self._cond:
            for i in range(self._taken, index + 1):
                self._live.pop(i, None)
                self._attempts[i] = None  # drop our reference to the source bytes
            self._taken = max(self._taken, index + 1)
            self._cond.notify_all()
        return attempt

    def close(self) -> None:
        """Start nothing more, wait for the steps under way and release everything. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            if t.is_alive():
                t.join()
        self._fetches.shutdown(wait=True)  # the resizer waited for every admitted fetch: these are done already
        self._uploads.shutdown(wait=True)
        self._puts.shutdown(wait=True)  # every upload waited for its PUTs: these are done already
        with self._cond:
            self._live.clear()
            self._attempts = [None] * len(self.refs)

    # ---- stages -------------------------------------------------------------------------------------------------
    def _fetch_all(self) -> None:
        for i, ref in enumerate(self.refs):
            attempt = self._attempts[i]
            assert attempt is not None
            want = expected_cost(ref, self.budget)
            with self._cond:
                while not self._closed and not (
                    self._pending < self._fetch_workers
                    and len(self._live) < self.max_in_flight
                    and fits(list(self._live.values()), want, self.budget, self._resizers)
                ):
                    self._cond.wait()
                if self._closed:
                    self._abandon(i)
                    return
                self._reserve(i, want)
                self._pending += 1
            try:
                self._fetches.submit(self._fetch_one, i, ref, attempt)
            except RuntimeError:  # the pool is shut down: closed under us
                with self._cond:
                    self._pending -= 1
                    self._abandon(i)
                return

    def _fetch_one(self, i: int, ref: ObjectRef, attempt: Attempt) -> None:
        attempt.started = time.perf_counter()
        cost = SourceCost(0, 0)  # a failed fetch holds nothing
        try:
            attempt.src = fetch(ref, self.store, self.settings)
            cost = source_cost(attempt.src.data)
        except Exception as exc:  # noqa: BLE001 - handed to the record's handler, which classifies it
            attempt.error = exc
        finally:
            with self._cond:
                self._pending -= 1
                self._reserve(i, cost)
            self._fetched[i].set()

    def _resize_all(self) -> None:
        while True:
            with self._cond:
                i, self._next_resize = self._next_resize, self._next_resize + 1
            if i >= len(self.refs):
                return
            self._fetched[i].wait()
            attempt = self._attempts[i]
            if attempt is None or attempt.error is not None or attempt.src is None:
                self._finish(i)
                continue
            try:
                result = resize_source(attempt.src, self.resizer, self.spec)
            except Exception as exc:  # noqa: BLE001 - as above
                attempt.error = exc
                self._finish(i)
                continue
            resized_ms = (time.perf_counter() - attempt.started) * 1000.0
            try:
                self._uploads.submit(self._upload, i, attempt, result, resized_ms)
            except RuntimeError as exc:  # the pool is shut down: closed under us
                attempt.error = BatchClosed(f"Expected the batch to be open for the upload of object {i}: {exc}")
                self._finish(i)

    def _upload(self, i: int, attempt: Attempt, result: ResizeResult, resized_ms: float) -> None:
        try:
            assert attempt.src is not None
            attempt.outcome = upload_thumbnails(
                attempt.src,
                result,
                self.store,
                self.settings,
                handler_start_ms=self.handler_start_ms,
                started=attempt.started,
                resized_ms=resized_ms,
                puts=self._puts,
            )
        except Exception as exc:  # noqa: BLE001 - as above
            attempt.error = exc
        finally:
            self._finish(i)

    # ---- bookkeeping (callers of _reserve/_abandon hold _cond) --------------------------------------------------
    def _reserve(self, i: int, cost: SourceCost) -> None:
        if i < self._taken:
            return  # already released (taken while still running: cannot happen in order, kept safe)
        self._live[i] = cost
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, len(self._live))
        reserved = reserved_bytes(list(self._live.values()), self._resizers)
        self.stats.peak_reserved_bytes = max(self.stats.peak_reserved_bytes, reserved)
        self._cond.notify_all()

    def _abandon(self, first: int) -> None:
        for i in range(first, len(self.refs)):
            attempt = self._attempts[i]
            if attempt is not None:
                attempt.error = BatchClosed(f"Expected object {i} of the batch to start but the batch was closed")
            self._fetched[i].set()

    def _finish(self, i: int) -> None:
        attempt = self._attempts[i]
        if attempt is not None:
            attempt.finished = time.perf_counter()
        self._done[i].set()
