"""THUMB_OVERLAP: overlapped batches end every record as sequential ones do, overlap, and stay in budget."""

from __future__ import annotations

import io
import json
import logging
import random
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from aws_lambda_powertools import Logger
from PIL import Image

from common.waiting import wait_until
from thumbnailer.app import Thumbnailer
from thumbnailer.config import MB_PER_VCPU, Settings
from thumbnailer.errors import ConfigError, SourceMissing, Throttled, UpstreamError
from thumbnailer.events import ObjectRef
from thumbnailer.pipeline import (
    DEFAULT_FETCH_WORKERS,
    DEFAULT_MAX_IN_FLIGHT,
    OverlappedBatch,
    SourceCost,
    SourceObject,
    expected_cost,
    fits,
    reserved_bytes,
    resize_workers_for,
    source_budget_bytes,
    source_cost,
)
from thumbnailer.resizers import get_resizer
from thumbnailer.resizers.base import ResizeResult, ResizeSpec, SourceInfo, Thumbnail, Timings

from .conftest import BACKENDS, Resize

BUCKET = "overlap-bucket"
# values that differ between two runs of the same batch (clocks), removed before comparing
TIMING_FIELDS = {"ms", "resize_ms", "resize_cpu_ms", "record_ms", "timestamp", "failed_at_ms", "handler-start-ms"}
TIMING_FIELDS |= {"s3_cpu_ms"}
TIMING_FIELDS |= {"total-ms"}
TIMING_FIELDS |= {"resize-ms", "sampling_rate", "location", "service", "cold_start", "xray_trace_id"}


# ---- fakes ---------------------------------------------------------------------------------------------------------
@dataclass
class FakeS3:
    """A thread-safe in-memory ObjectStore with injected faults and a view of how many sources are held at once."""

    objects: dict[str, bytes] = field(default_factory=dict)
    puts: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_get: dict[str, Exception] = field(default_factory=dict)
    fail_put: dict[str, Exception] = field(default_factory=dict)  # output key -> error
    sizes_per_source: int = 2
    get_log: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: int = 0  # sources fetched (or being fetched) whose outputs are not all written yet
    peak_held: int = 0
    _puts_per_source: dict[str, int] = field(default_factory=dict)

    def get(self, bucket: str, key: str, *, version_id: str = "", max_bytes: int | None = None) -> SourceObject:
        with self.lock:
            self.get_log.append(key)
            self.held += 1
            self.peak_held = max(self.peak_held, self.held)
        if key in self.fail_get or key not in self.objects:
            with self.lock:
                self.held -= 1
            if key in self.fail_get:
                raise self.fail_get[key]
            raise SourceMissing(f"Expected an existing object for get s3://{bucket}/{key} but received NoSuchKey (404)")
        return SourceObject(bucket, key, self.objects[key], etag=f"e-{len(key)}", metadata={"run-id": "run-o"})

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None:
        source = metadata.get("source-key", "")
        if key in self.fail_put:
            with self.lock:
                self.held -= 1  # its record ends here (the remaining PUTs are not attempted)
            raise self.fail_put[key]
        with self.lock:
            self.puts[key] = {"data": data, "content_type": content_type, "cache": cache_control, "meta": metadata}
            n = self._puts_per_source[source] = self._puts_per_source.get(source, 0) + 1
            if n == self.sizes_per_source:
                self.held -= 1


@dataclass
class FakeDlq:
    sent: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, body: str, attributes: dict[str, str]) -> None:
        with self.lock:
            self.sent.append((json.loads(body), attributes))


class CachedResizer:
    """The real backend, each distinct input resized once (both runs of a comparison get the same bytes).

    Corpus files come from the contract session's resize cache (`shared`: bytes -> that fixture's result).
    """

    def __init__(self, backend: str, shared: dict[bytes, Any] | None = None) -> None:
        self.inner = get_resizer(backend)
        self.name = self.inner.name
        self.cache: dict[bytes, ResizeResult | Exception] = dict(shared or {})
        self.lock = threading.Lock()

    def resize(self, data: bytes, spec: ResizeSpec) -> ResizeResult:
        with self.lock:
            hit = self.cache.get(data)
        if hit is None:
            try:
                hit = self.inner.resize(data, spec)
            except Exception as exc:  # noqa: BLE001 - replayed to the pipeline as it was raised
                hit = exc
            with self.lock:
                self.cache[data] = hit
        if isinstance(hit, Exception):
            raise hit
        return hit

    def probe(self, data: bytes, limits: Any) -> SourceInfo:
        return self.inner.probe(data, limits)


class StubResizer:
    """Two tiny outputs for any input; `hook(data)` runs at the start of every resize (to stage interleavings)."""

    name = "stub"

    def __init__(self, hook: Any = None) -> None:
        self.hook = hook
        self.calls: list[bytes] = []

    def resize(self, data: bytes, spec: ResizeSpec) -> ResizeResult:
        self.calls.append(data)
        if self.hook is not None:
            self.hook(data)
        outs = tuple(Thumbnail(s.name, 4, 3, "jpeg", "image/jpeg", b"\xff\xd8" + s.name.encode()) for s in spec.sizes)
        return ResizeResult(outs, SourceInfo("jpeg", 40, 30), Timings(1.0, 1.0, 1.0, 3.0), self.name)

    def probe(self, data: bytes, limits: Any) -> SourceInfo:
        return SourceInfo("jpeg", 40, 30)


# ---- events --------------------------------------------------------------------------------------------------------
def s3_record(key: str, size: int) -> dict[str, Any]:
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key, safe="/"), "size": size}},
    }


def sqs_record(body: str, message_id: str, receive_count: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1764284400000"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:thumbs",
    }


def event_of(bodies: list[str | tuple[str, int]]) -> dict[str, Any]:
    records = []
    for i, b in enumerate(bodies):
        body, count = (b, 1) if isinstance(b, str) else b
        records.append(sqs_record(body, f"m{i}", count))
    return {"Records": records}


def one(key: str, size: int = 1000) -> str:
    return json.dumps({"Records": [s3_record(key, size)]})


def make_app(store: FakeS3, dlq: FakeDlq, resizer: Any, *, overlap: str, memory_mb: int = 1024) -> Thumbnailer:
    settings = Settings(dlq_url="https://sqs.example/dlq", overlap=overlap)
    buf = io.StringIO()
    logger = Logger(service=f"overlap-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(buf))
    app = Thumbnailer(settings, store, dlq, resizer, logger=logger, memory_mb=memory_mb)
    app.log_buffer = buf  # type: ignore[attr-defined]
    return app


def strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def run(
    bodies: list[str | tuple[str, int]], objects: dict[str, bytes], resizer: Any, overlap: str, memory_mb: int = 1024
) -> dict[str, Any]:
    """Handle one batch; everything observable about it, with clock values removed."""
    store, dlq = FakeS3(objects=dict(objects)), FakeDlq()
    store.fail_get["uploads/faults/throttled.jpg"] = Throttled("Expected a successful get but received SlowDown (503)")
    store.fail_get["uploads/faults/boom.jpg"] = RuntimeError("an exception nobody classified")
    store.fail_put["thumbnails/small/faults/put-fails.jpg.jpg"] = UpstreamError(
        "Expected a successful put but received InternalError (500)", code="STORAGE_ERROR"
    )
    app = make_app(store, dlq, resizer, overlap=overlap, memory_mb=memory_mb)
    response = app.handle(event_of(bodies))
    lines = [json.loads(ln) for ln in app.log_buffer.getvalue().splitlines()]  # type: ignore[attr-defined]
    records = [strip(ln) for ln in lines if ln.get("message") == "thumbnail record"]
    return {
        "response": response,
        "dlq": sorted((json.dumps(strip(b), sort_keys=True), json.dumps(a, sort_keys=True)) for b, a in dlq.sent),
        "puts": {k: strip(v) for k, v in store.puts.items()},
        "records": records,
        "stats": app.last_overlap,
    }


# ---- outcomes ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("memory_mb", [1024, 3008])  # one resizer; two (and four fetchers) at 1.7 vCPU
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_outcome_is_the_same_with_overlap_on_and_off(
    backend: str, memory_mb: int, generated_fixtures: Path, resize: Resize
) -> None:
    # GIVEN the fixture corpus (good and poison inputs), faults on GET and PUT, and records of several shapes
    manifest = json.loads((generated_fixtures / "manifest.json").read_text())["fixtures"]
    objects = {f"uploads/corpus/{fx['name']}": (generated_fixtures / fx["name"]).read_bytes() for fx in manifest}
    objects["uploads/faults/put-fails.jpg"] = (generated_fixtures / "tiny.jpg").read_bytes()
    keys = list(objects)
    bodies: list[str | tuple[str, int]] = [one(k, len(objects[k])) for k in keys]
    bodies += [
        one("uploads/faults/missing.jpg"),
        one("uploads/faults/throttled.jpg"),
        (one("uploads/faults/throttled.jpg"), 3),  # the last allowed receive: to the DLQ
        one("uploads/faults/boom.jpg"),
        "not json at all",
        json.dumps({"Event": "s3:TestEvent"}),
        one("thumbnails/small/x.jpg.jpg"),  # one of our outputs: skipped
        json.dumps(  # one message, three objects: a good one, a corrupt one, a missing one
            {
                "Records": [
                    s3_record(keys[0], 10),
                    s3_record("uploads/corpus/bad-truncated.jpg", 10),
                    s3_record("uploads/faults/missing-2.jpg", -1),
                ]
            }
        ),
        one(keys[1], len(objects[keys[1]])),  # the same object again in the same batch
    ]
    shared = {(generated_fixtures / fx["name"]).read_bytes(): resize(backend, fx["name"]) for fx in manifest}
    resizer = CachedResizer(backend, shared)

    # WHEN the same batch is handled sequentially and overlapped
    off = run(bodies, objects, resizer, "off", memory_mb)
    on = run(bodies, objects, resizer, "on", memory_mb)

    # THEN the partial batch response, the DLQ messages, the thumbnails and every log line are the same
    assert off["stats"] is None and on["stats"] is not None and on["stats"].objects >= len(keys)
    assert on["stats"].resize_workers == resize_workers_for(memory_mb) == (2 if memory_mb == 3008 else 1)
    assert on["response"] == off["response"]
    assert {f["itemIdentifier"] for f in off["response"]["batchItemFailures"]} == {
        f"m{len(keys) + i}" for i in (1, 3)
    } | {f"m{keys.index('uploads/faults/put-fails.jpg')}"}
    assert on["dlq"] == off["dlq"] and len(off["dlq"]) >= 8
    assert on["puts"] == off["puts"] and len(off["puts"]) >= 2 * 13
    assert on["records"] == off["records"] and len(off["records"]) == len(bodies)


def test_bad_overlap_setting_is_a_coded_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"THUMB_OVERLAP": "maybe"})
    assert err.value.code == "INVALID_CONFIG" and err.value.field == "overlap"
    assert "THUMB_OVERLAP" in str(err.value) and str(err.value).startswith("INVALID_CONFIG: Expected one of on|off")
    assert Settings.from_env({"THUMB_OVERLAP": " off "}).overlap == "off" and Settings().overlap == "on"


# ---- overlap -------------------------------------------------------------------------------------------------------
def test_the_next_source_is_fetched_while_the_current_one_is_resized() -> None:
    # GIVEN a resizer that, on the first source, waits for the store to have been asked for the second one
    objects = {f"uploads/{i}.jpg": f"image-{i}".encode() for i in range(4)}
    store = FakeS3(objects=objects)
    seen: dict[bytes, list[str]] = {}

    def hook(data: bytes) -> None:
        if data == b"image-0":
            wait_until(lambda: "uploads/1.jpg" in store.get_log, timeout=10, interval=0.005)
        seen[data] = list(store.get_log)

    app = make_app(store, FakeDlq(), StubResizer(hook), overlap="on")

    # WHEN a batch of four is handled
    response = app.handle(event_of([one(k, 10) for k in objects]))

    # THEN the second GET happened during the first resize, and every source was thumbnailed
    assert response == {"batchItemFailures": []}
    assert "uploads/1.jpg" in seen[b"image-0"] and len(store.puts) == 8


@dataclass
class SlowGets(FakeS3):
    """A FakeS3 whose GETs take a while and that records how many were under way at once."""

    get_s: float = 0.05
    active: int = 0
    peak_active: int = 0

    def get(self, bucket: str, key: str, *, version_id: str = "", max_bytes: int | None = None) -> SourceObject:
        with self.lock:
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
        try:
            threading.Event().wait(self.get_s)  # the GET's time to first byte
            return super().get(bucket, key, version_id=version_id, max_bytes=max_bytes)
        finally:
            with self.lock:
                self.active -= 1


@pytest.mark.parametrize(("memory_mb", "concurrent"), [(MB_PER_VCPU, True), (MB_PER_VCPU - 1, False)])
def test_gets_run_concurrently_from_one_full_vcpu_up(memory_mb: int, concurrent: bool) -> None:
    # GIVEN GETs that take 50 ms each and a batch of eight small sources
    objects = {f"uploads/{i}.jpg": f"image-{i}".encode() for i in range(8)}
    store = SlowGets(objects=objects)
    app = make_app(store, FakeDlq(), StubResizer(), overlap="on", memory_mb=memory_mb)

    # WHEN the batch is handled
    assert app.handle(event_of([one(k, 10) for k in objects])) == {"batchItemFailures": []}

    # THEN from 1769 MB several GETs were under way at once (a GET outlasts a resize there), below it one at a time
    assert len(store.puts) == 16
    if concurrent:
        assert 2 <= store.peak_active <= DEFAULT_FETCH_WORKERS
    else:
        assert store.peak_active == 1


@pytest.mark.parametrize(("memory_mb", "parallel"), [(3008, True), (MB_PER_VCPU, False)])
def test_resizes_run_side_by_side_from_about_two_vcpus(memory_mb: int, parallel: bool) -> None:
    # GIVEN a resizer that records how many resizes run at once, each waiting briefly for a second one to start
    objects = {f"uploads/{i}.jpg": f"image-{i}".encode() for i in range(6)}
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def hook(data: bytes) -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            if parallel:
                wait_until(lambda: state["peak"] >= 2, timeout=10, interval=0.005)
            else:
                threading.Event().wait(0.02)  # room for a second resize to start, were there one
        finally:
            with lock:
                state["now"] -= 1

    store = FakeS3(objects=objects)
    app = make_app(store, FakeDlq(), StubResizer(hook), overlap="on", memory_mb=memory_mb)

    # WHEN a batch of six is handled
    assert app.handle(event_of([one(k, 10) for k in objects])) == {"batchItemFailures": []}

    # THEN at 3008 MB (1.7 vCPU) two resizes ran at once, at 1769 MB one at a time; every source was thumbnailed
    assert state["peak"] == (2 if parallel else 1) and len(store.puts) == 12


def test_uploads_do_not_hold_up_the_next_resize() -> None:
    # GIVEN a store whose first PUT waits until the resize of the second source has started
    objects = {f"uploads/{i}.jpg": f"image-{i}".encode() for i in range(3)}
    second_resize = threading.Event()

    class SlowPut(FakeS3):
        def put(self, bucket: str, key: str, data: bytes, **kw: Any) -> None:
            if key.startswith("thumbnails/large/0.jpg") and not second_resize.wait(timeout=10):
                raise UpstreamError("Expected the second resize to start during the first upload", code="STORAGE_ERROR")
            super().put(bucket, key, data, **kw)

    store = SlowPut(objects=objects)
    resizer = StubResizer(lambda data: second_resize.set() if data == b"image-1" else None)
    app = make_app(store, FakeDlq(), resizer, overlap="on")

    # WHEN the batch is handled
    response = app.handle(event_of([one(k, 10) for k in objects]))

    # THEN the second resize ran while the first source's thumbnails were uploading: nothing failed
    assert response == {"batchItemFailures": []} and len(store.puts) == 6


def test_an_objects_puts_run_at_once_with_overlap_on() -> None:
    # GIVEN a store whose large PUT of each object waits until the small PUT of the same object has started
    objects = {f"uploads/{i}.jpg": f"image-{i}".encode() for i in range(3)}
    started: dict[str, threading.Event] = {k: threading.Event() for k in objects}

    class PairedPuts(FakeS3):
        def put(self, bucket: str, key: str, data: bytes, **kw: Any) -> None:
            source = kw["metadata"]["source-key"]
            if key.startswith("thumbnails/small/"):
                started[source].set()
            elif not started[source].wait(timeout=10):
                raise UpstreamError(f"Expected the small PUT of {source} during its large one", code="STORAGE_ERROR")
            super().put(bucket, key, data, **kw)

    store = PairedPuts(objects=objects)
    app = make_app(store, FakeDlq(), StubResizer(), overlap="on")

    # WHEN the batch is handled
    response = app.handle(event_of([one(k, 10) for k in objects]))

    # THEN both PUTs of every object were under way at once and every thumbnail was written
    assert response == {"batchItemFailures": []} and len(store.puts) == 6


@pytest.mark.parametrize("failing", ["large", "small", "both"])
def test_a_failed_put_ends_the_object_the_same_with_overlap_on_and_off(failing: str) -> None:
    # GIVEN a batch whose second object's PUT of one size (or of both, with different errors) fails
    objects = {f"uploads/{i}.jpg": f"image-{i}".encode() for i in range(3)}
    errors = {
        "large": UpstreamError("Expected a successful put but received InternalError (500)", code="STORAGE_ERROR"),
        "small": Throttled("Expected a successful put but received SlowDown (503)"),
    }
    bodies: list[str | tuple[str, int]] = [one(k, 10) for k in objects]
    seen = {}
    for mode in ("off", "on"):
        store = FakeS3(objects=dict(objects))
        for size, err in errors.items():
            if failing in (size, "both"):
                store.fail_put[f"thumbnails/{size}/1.jpg.jpg"] = err
        app = make_app(store, FakeDlq(), StubResizer(), overlap=mode)

        # WHEN it is handled sequentially and overlapped
        response = app.handle(event_of(bodies))
        lines = [json.loads(ln) for ln in app.log_buffer.getvalue().splitlines()]  # type: ignore[attr-defined]
        records = [strip(ln) for ln in lines if ln.get("message") == "thumbnail record"]
        seen[mode] = (response, records, {k for k in store.puts if "/1.jpg" not in k})

    # THEN the response and every record line are the same: the error of the first failing size in order
    assert seen["on"] == seen["off"]
    assert seen["on"][0] == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    failed = next(r for r in seen["on"][1] if r.get("message_id") == "m1")
    expected = "STORAGE_ERROR" if failing in ("large", "both") else "THROTTLED"
    assert failed["outcome"] == "retry" and failed["code"] == expected, failed


# ---- memory bound ----------------------------------------------------------------------------------------------------
def noise_png(w: int, h: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    im = Image.frombytes("RGB", (w, h), rnd.randbytes(w * h * 3))
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=0)
    return buf.getvalue()


def admissible(sources: list[bytes], memory_mb: int, max_in_flight: int) -> int:
    """How many of `sources` the model admits at once when none is released (the bound the batch must keep)."""
    budget = source_budget_bytes(memory_mb)
    live: list[SourceCost] = []
    for data in sources:
        ref = ObjectRef(BUCKET, "k", size=len(data))
        if len(live) >= max_in_flight or not fits(live, expected_cost(ref, budget), budget):
            break
        live.append(source_cost(data))
    return len(live)


def test_a_small_memory_size_bounds_the_sources_in_flight() -> None:
    # GIVEN ten incompressible ~0.75 MB sources, a 128 MB function and room for ten in flight but for the memory
    sources = [noise_png(500, 500, seed) for seed in range(10)]
    bound = admissible(sources, 128, max_in_flight=10)
    assert 2 <= bound < 10  # the memory, not the count, is what limits here
    objects = {f"uploads/{i}.png": data for i, data in enumerate(sources)}
    store = FakeS3(objects=objects)
    box: dict[str, OverlappedBatch] = {}

    def hook(data: bytes) -> None:  # hold the first resize until the fetcher has filled the budget
        if data == sources[0]:
            wait_until(lambda: box["batch"].in_flight() >= bound, timeout=10, interval=0.005)

    refs = [ObjectRef(BUCKET, k, size=len(v)) for k, v in objects.items()]
    settings = Settings()
    batch = OverlappedBatch(
        refs, store, StubResizer(hook), settings.resize_spec(), settings, handler_start_ms=0, memory_mb=128,
        max_in_flight=10,
    )  # fmt: skip
    box["batch"] = batch

    # WHEN the batch runs and its results are taken in order
    with batch:
        attempts = [batch.result(i) for i in range(len(refs))]

    # THEN every source was done, and never more than the bound were held at once (nor reserved beyond the budget)
    assert all(a.error is None and a.outcome is not None for a in attempts)
    assert batch.stats.peak_in_flight == bound and store.peak_held <= bound
    assert batch.stats.peak_reserved_bytes <= source_budget_bytes(128)


def test_sources_larger_than_the_budget_are_processed_one_at_a_time() -> None:
    # GIVEN 12 MP sources (48 MB decoded) and a 128 MB function (a 16 MB budget)
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (90, 120, 30)).save(buf, "PNG", compress_level=1)
    big = buf.getvalue()
    assert source_cost(big).decoded == 4000 * 3000 * 4 > source_budget_bytes(128)
    objects = {f"uploads/{i}.png": big for i in range(5)}
    small_mem, large_mem = FakeS3(objects=objects), FakeS3(objects=objects)

    def wait_for_second_get(data: bytes) -> None:  # at 1024 MB: the first resize waits for the next fetch
        if len(large_mem.get_log) == 1:
            wait_until(lambda: len(large_mem.get_log) >= 2, timeout=10, interval=0.005)

    # WHEN the same batch runs at 128 MB and at 1024 MB
    for store, mb, resizer in ((small_mem, 128, StubResizer()), (large_mem, 1024, StubResizer(wait_for_second_get))):
        app = make_app(store, FakeDlq(), resizer, overlap="on", memory_mb=mb)
        assert app.handle(event_of([one(k, len(v)) for k, v in objects.items()])) == {"batchItemFailures": []}
        assert app.last_overlap is not None and len(store.puts) == 10

    # THEN at 128 MB one source at a time (as sequentially), at 1024 MB several, up to the count cap
    assert small_mem.peak_held == 1
    assert 2 <= large_mem.peak_held <= DEFAULT_MAX_IN_FLIGHT


def test_budget_model() -> None:
    assert source_budget_bytes(128) == 16 * 1024 * 1024 and source_budget_bytes(96) == 0
    a, b = SourceCost(1_000_000, 8_000_000), SourceCost(2_000_000, 4_000_000)
    assert fits([], SourceCost(10**12, 10**12), 1) is True  # alone: always
    assert fits([a], b, 11_000_000) is True and fits([a], b, 10_999_999) is False
    # two decoders: both decodes count
    assert reserved_bytes([a, b], decoders=2) == 15_000_000 and fits([a], b, 15_000_000, decoders=2) is True
    assert fits([a], b, 14_999_999, decoders=2) is False
    assert expected_cost(ObjectRef(BUCKET, "k", size=-1), 123) == SourceCost(123, 0)  # unknown size: alone
