"""Handler behaviour with fakes: every record, DLQ for permanent errors, partial batch response, logs, keys."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from aws_lambda_powertools import Logger
from PIL import Image

from thumbnailer.app import METRIC_INVOCATION_CPU_MS, Thumbnailer
from thumbnailer.config import Settings
from thumbnailer.errors import SourceMissing, Throttled, UpstreamError
from thumbnailer.pipeline import SourceObject
from thumbnailer.resizers import get_resizer

BUCKET = "pipeline-bucket"


# ---- fakes -------------------------------------------------------------------------------------------------------
@dataclass
class FakeStore:
    """ObjectStore in memory; `fail_get` injects an error per key."""

    objects: dict[tuple[str, str], SourceObject] = field(default_factory=dict)
    puts: dict[tuple[str, str], dict[str, object]] = field(default_factory=dict)
    fail_get: dict[str, Exception] = field(default_factory=dict)

    def add(self, key: str, data: bytes, run_id: str = "run-1") -> None:
        self.objects[(BUCKET, key)] = SourceObject(
            BUCKET, key, data, etag=f"etag-{len(self.objects)}", version_id="", metadata={"run-id": run_id}
        )

    def get(self, bucket: str, key: str, *, version_id: str = "", max_bytes: int | None = None) -> SourceObject:
        if key in self.fail_get:
            raise self.fail_get[key]
        try:
            return self.objects[(bucket, key)]
        except KeyError:
            raise SourceMissing(
                f"Expected an existing object for get s3://{bucket}/{key} but received NoSuchKey (404)"
            ) from None

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None:
        self.puts[(bucket, key)] = {
            "data": data,
            "content_type": content_type,
            "cache_control": cache_control,
            "metadata": metadata,
        }


@dataclass
class FakeDlq:
    sent: list[tuple[dict[str, object], dict[str, str]]] = field(default_factory=list)
    fail: Exception | None = None

    def send(self, body: str, attributes: dict[str, str]) -> None:
        if self.fail:
            raise self.fail
        self.sent.append((json.loads(body), attributes))


def jpeg(w: int = 96, h: int = 64, colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    im = Image.new("RGB", (w, h), colour)
    im.paste((20, 30, 200), (w // 4, h // 4, w // 2, h // 2))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def s3_body(key: str, bucket: str = BUCKET) -> str:
    """A real-shaped S3 notification; S3 form-encodes the key (space -> '+', '+' -> %2B, UTF-8 -> %XX)."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-east-1",
                    "eventTime": "2026-11-27T23:00:00.000Z",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "thumbs",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {"key": quote_plus(key, safe="/"), "size": 1234, "eTag": "abc", "sequencer": "00A"},
                    },
                }
            ]
        }
    )


def sqs_record(body: str, message_id: str, receive_count: int = 1) -> dict[str, object]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1764284400000",
            "SenderId": "AIDA",
            "ApproximateFirstReceiveTimestamp": "1764284400001",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:thumbs",
        "awsRegion": "us-east-1",
    }


LOGS: dict[int, io.StringIO] = {}


def make_app(store: FakeStore, dlq: FakeDlq | None, **overrides: object) -> Thumbnailer:
    """A Thumbnailer with the real Pillow resizer and a Powertools logger writing into a buffer (see log_lines)."""
    settings = Settings(dlq_url="https://sqs.example/dlq", **overrides)  # type: ignore[arg-type]
    buf = io.StringIO()
    logger = Logger(service=f"thumbnailer-test-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(buf))
    app = Thumbnailer(settings, store, dlq, get_resizer("pillow"), logger=logger)
    LOGS[id(app)] = buf
    return app


def thumbnail_sets(store: FakeStore) -> dict[str, set[str]]:
    """source key -> size names written for it (from the outputs' metadata)."""
    sets: dict[str, set[str]] = {}
    for (_, _key), put in store.puts.items():
        meta = put["metadata"]
        assert isinstance(meta, dict)
        sets.setdefault(meta["source-key"], set()).add(meta["thumbnail-size"])
    return sets


def log_lines(app: Thumbnailer) -> list[dict[str, object]]:
    """The JSON log lines the handler wrote (every line must be JSON)."""
    lines = [json.loads(line) for line in LOGS[id(app)].getvalue().splitlines()]
    return [ln for ln in lines if ln.get("message") == "thumbnail record"]


# ---- the brief's scenarios -----------------------------------------------------------------------------------------
def test_batch_of_ten_with_two_corrupt_and_one_missing() -> None:
    # GIVEN 7 good uploads (keys with spaces, plus signs, unicode), 2 corrupt ones and 1 that no longer exists
    store, dlq = FakeStore(), FakeDlq()
    good = [
        "uploads/a/x.jpg",
        "uploads/b/x.jpg",
        "uploads/my photo.jpg",
        "uploads/c++/1+1=2.jpg",
        "uploads/café/naïve ünïcode 写真.jpg",
        "uploads/deep/er/path/img.jpeg",
        "uploads/%41 literal.jpg",
    ]
    for i, key in enumerate(good):
        store.add(key, jpeg(96 + i, 64), run_id="run-42")
    store.add("uploads/broken/truncated.jpg", jpeg(400, 300)[:300], run_id="run-42")
    store.add("uploads/broken/text.jpg", b"just some text, not an image\n" * 3, run_id="run-42")
    keys = (
        good[:3]
        + ["uploads/broken/truncated.jpg"]
        + good[3:5]
        + ["uploads/gone.jpg"]
        + good[5:]
        + ["uploads/broken/text.jpg"]
    )
    event = {"Records": [sqs_record(s3_body(k), f"m{i}") for i, k in enumerate(keys)]}
    assert len(event["Records"]) == 10

    # WHEN the batch is handled
    app = make_app(store, dlq)
    response = app.handle(event)

    # THEN 7 complete thumbnail sets, 3 DLQ messages with codes, nothing left for retry
    assert response == {"batchItemFailures": []}
    sets = thumbnail_sets(store)
    assert sets == {quote(k, safe="/"): {"large", "small"} for k in good}
    codes = sorted(str(attrs["error_code"]) for _, attrs in dlq.sent)
    assert codes == ["CORRUPT_IMAGE", "SOURCE_MISSING", "UNSUPPORTED_FORMAT"]
    for body, attrs in dlq.sent:
        assert attrs["error_message"].startswith("Expected ") and body["error"]["code"] == attrs["error_code"]  # type: ignore[index]
        assert body["original"]["Records"][0]["eventName"] == "ObjectCreated:Put"  # type: ignore[index]
    by_key = {body["source"]["key"]: attrs for body, attrs in dlq.sent}  # type: ignore[index]
    assert by_key["uploads/broken/text.jpg"]["run_id"] == "run-42"  # run id read from the source's metadata
    assert "run_id" not in by_key["uploads/gone.jpg"] or not by_key["uploads/gone.jpg"]["run_id"]
    # one structured log line per record, with the outcome
    lines = log_lines(app)
    assert len(lines) == 10
    assert sorted(str(ln["outcome"]) for ln in lines) == ["dlq"] * 3 + ["ok"] * 7
    ok = next(ln for ln in lines if ln["key"] == "uploads/my photo.jpg")
    assert ok["run_id"] == "run-42" and ok["backend"] == "pillow" and ok["sizes"] == ["large", "small"]
    assert isinstance(ok["ms"], float) and ok["outputs"] == {"large": "98x64", "small": "98x64"}  # never upscaled


def test_outputs_carry_content_type_cache_control_and_links_back() -> None:
    store = FakeStore()
    store.add("uploads/a/x.jpg", jpeg(2000, 1000), run_id="run-7")
    app = make_app(store, FakeDlq(), cache_control="public, max-age=60")
    assert app.handle({"Records": [sqs_record(s3_body("uploads/a/x.jpg"), "m1")]}) == {"batchItemFailures": []}
    large = store.puts[(BUCKET, "thumbnails/large/a/x.jpg.jpg")]
    small = store.puts[(BUCKET, "thumbnails/small/a/x.jpg.jpg")]
    assert large["content_type"] == small["content_type"] == "image/jpeg"
    assert large["cache_control"] == "public, max-age=60"
    meta = large["metadata"]
    assert isinstance(meta, dict)
    assert meta["run-id"] == "run-7" and meta["source-key"] == "uploads/a/x.jpg" and meta["backend"] == "pillow"
    assert meta["source-etag"].startswith("etag-") and int(meta["handler-start-ms"]) > 1_700_000_000_000
    assert float(meta["resize-ms"]) > 0 and float(meta["total-ms"]) >= float(meta["resize-ms"])
    assert Image.open(io.BytesIO(large["data"])).size == (1024, 512)  # type: ignore[arg-type]
    assert Image.open(io.BytesIO(small["data"])).size == (256, 128)  # type: ignore[arg-type]


def test_same_file_name_in_two_folders_does_not_collide_and_redelivery_rewrites_same_keys() -> None:
    store = FakeStore()
    store.add("uploads/a/x.jpg", jpeg(300, 200, (255, 0, 0)))
    store.add("uploads/b/x.jpg", jpeg(300, 200, (0, 255, 0)))
    app = make_app(store, FakeDlq())
    event = {"Records": [sqs_record(s3_body("uploads/a/x.jpg"), "m1"), sqs_record(s3_body("uploads/b/x.jpg"), "m2")]}
    app.handle(event)
    first = dict(store.puts)
    assert len(first) == 4
    app.handle(event)  # redelivery
    assert set(store.puts) == set(first)
    # the rewrite is the same thumbnail: identical bytes, type and metadata except the per-run timings
    timings = {"handler-start-ms", "resize-ms", "total-ms"}
    for key, put in store.puts.items():
        before = first[key]
        assert put["data"] == before["data"], f"{key}: redelivery wrote different bytes"
        assert put["content_type"] == before["content_type"] and put["cache_control"] == before["cache_control"]
        meta, meta_before = put["metadata"], before["metadata"]
        assert isinstance(meta, dict) and isinstance(meta_before, dict)
        assert {k: v for k, v in meta.items() if k not in timings} == {
            k: v for k, v in meta_before.items() if k not in timings
        }, key
    assert (
        first[(BUCKET, "thumbnails/small/a/x.jpg.jpg")]["data"]
        != first[(BUCKET, "thumbnails/small/b/x.jpg.jpg")]["data"]
    )  # the two folders' images differ, so equal bytes above mean the same image was rewritten


def test_injected_throttling_puts_that_record_in_batch_item_failures() -> None:
    store, dlq = FakeStore(), FakeDlq()
    for k in ("uploads/1.jpg", "uploads/2.jpg", "uploads/3.jpg"):
        store.add(k, jpeg())
    store.fail_get["uploads/2.jpg"] = Throttled("get s3://b/uploads/2.jpg failed: SlowDown")
    event = {"Records": [sqs_record(s3_body(f"uploads/{i}.jpg"), f"m{i}") for i in (1, 2, 3)]}
    response = make_app(store, dlq).handle(event)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert dlq.sent == []
    assert set(thumbnail_sets(store)) == {"uploads/1.jpg", "uploads/3.jpg"}


def test_unknown_exception_is_retried_not_acked() -> None:
    store = FakeStore()
    store.add("uploads/1.jpg", jpeg())
    store.fail_get["uploads/1.jpg"] = RuntimeError("a bug")
    response = make_app(store, FakeDlq()).handle({"Records": [sqs_record(s3_body("uploads/1.jpg"), "m1")]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_last_allowed_receive_sends_retryable_failure_to_dlq_with_reason() -> None:
    store, dlq = FakeStore(), FakeDlq()
    store.fail_get["uploads/1.jpg"] = Throttled("SlowDown")
    app = make_app(store, dlq, max_receive_count=3)
    assert app.handle({"Records": [sqs_record(s3_body("uploads/1.jpg"), "m1", receive_count=2)]})[
        "batchItemFailures"
    ] == [{"itemIdentifier": "m1"}]
    assert (
        app.handle({"Records": [sqs_record(s3_body("uploads/1.jpg"), "m1", receive_count=3)]})["batchItemFailures"]
        == []
    )
    ((body, attrs),) = dlq.sent
    assert attrs["error_code"] == "THROTTLED" and "gave up after 3 receives" in attrs["error_message"]
    assert body["error"]["retryable"] is True  # type: ignore[index]


def test_dlq_unreachable_means_retry() -> None:
    store = FakeStore()
    store.add("uploads/bad.jpg", b"not an image at all")
    dlq = FakeDlq(fail=UpstreamError("send to DLQ failed: 500"))
    response = make_app(store, dlq).handle({"Records": [sqs_record(s3_body("uploads/bad.jpg"), "m1")]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_without_dlq_permanent_failures_are_left_to_sqs_redrive() -> None:
    store = FakeStore()
    store.add("uploads/bad.jpg", b"")
    response = make_app(store, None).handle({"Records": [sqs_record(s3_body("uploads/bad.jpg"), "m1")]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_s3_test_event_does_nothing() -> None:
    store, dlq = FakeStore(), FakeDlq()
    body = json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2026-11-27T23:00:00Z",
            "Bucket": BUCKET,
            "RequestId": "r",
            "HostId": "h",
        }
    )
    app = make_app(store, dlq)
    response = app.handle({"Records": [sqs_record(body, "m1")]})
    assert response == {"batchItemFailures": []}
    assert store.puts == {} and dlq.sent == []
    (line,) = log_lines(app)
    assert line["outcome"] == "skipped" and line["reason"] == "s3:TestEvent"


def test_invalid_body_goes_to_dlq_as_invalid_event() -> None:
    dlq = FakeDlq()
    response = make_app(FakeStore(), dlq).handle({"Records": [sqs_record("{not json", "m1")]})
    assert response == {"batchItemFailures": []}
    ((body, attrs),) = dlq.sent
    assert attrs["error_code"] == "INVALID_EVENT" and body["original"] == "{not json"
    assert attrs["error_message"].startswith("Expected a JSON message body")


def test_thumbnails_in_the_same_bucket_are_not_reprocessed() -> None:
    store = FakeStore()
    store.add("thumbnails/small/a.jpg.jpg", jpeg())
    response = make_app(store, FakeDlq(), input_prefix="").handle(
        {"Records": [sqs_record(s3_body("thumbnails/small/a.jpg.jpg"), "m1")]}
    )
    assert response == {"batchItemFailures": []} and store.puts == {}


def test_notifier_message_shape_is_processed() -> None:
    from notifier.message import build_message

    store = FakeStore()
    store.add("uploads/n/é x+y.jpg", jpeg(), run_id="run-n")
    body = build_message(
        BUCKET,
        "uploads/n/é x+y.jpg",
        etag="e",
        version_id="",
        size=10,
        metadata={"run-id": "run-n"},
        event_time="2026-11-27T23:00:00Z",
    )
    response = make_app(store, FakeDlq()).handle({"Records": [sqs_record(json.dumps(body), "m1")]})
    assert response == {"batchItemFailures": []}
    assert (BUCKET, "thumbnails/large/n/é x+y.jpg.jpg") in store.puts


def test_output_bucket_setting_writes_elsewhere() -> None:
    store = FakeStore()
    store.add("uploads/a.jpg", jpeg())
    make_app(store, FakeDlq(), output_bucket="thumbs-out").handle(
        {"Records": [sqs_record(s3_body("uploads/a.jpg"), "m1")]}
    )
    assert {b for b, _ in store.puts} == {"thumbs-out"}


def test_each_invocation_reports_its_cpu_and_each_object_its_resize_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN two uploads
    store = FakeStore()
    for key in ("uploads/cpu/a.jpg", "uploads/cpu/b.jpg"):
        store.add(key, jpeg(640, 480))
    app = make_app(store, FakeDlq())
    capsys.readouterr()

    # WHEN a batch of both is handled
    app.handle({"Records": [sqs_record(s3_body(f"uploads/cpu/{n}.jpg"), n) for n in ("a", "b")]})

    # THEN the EMF metrics carry the invocation's process CPU, at least the CPU of its two resizes
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    cpu = [doc[METRIC_INVOCATION_CPU_MS] for doc in emf if METRIC_INVOCATION_CPU_MS in doc]
    cpu = [v for c in cpu for v in (c if isinstance(c, list) else [c])]  # EMF: one value or a list of them
    resize_cpu = [float(ln["resize_cpu_ms"]) for ln in log_lines(app)]  # type: ignore[arg-type]
    assert len(cpu) == 1 and len(resize_cpu) == 2 and all(c > 0 for c in resize_cpu)
    assert float(cpu[0]) >= sum(resize_cpu)


def _spin(ms: float) -> None:
    """Burn `ms` of this thread's CPU (an SDK call's work, for the test)."""
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end:
        pass


@pytest.mark.parametrize("overlap", ["off", "on"])
def test_each_object_logs_its_s3_clients_cpu_from_the_threads_that_ran_the_calls(overlap: str) -> None:
    # GIVEN a store whose GET and PUTs each take 4 ms of CPU on the calling thread, and two uploads
    class BusyStore(FakeStore):
        def get(self, bucket: str, key: str, **kw: Any) -> SourceObject:
            _spin(4.0)
            return super().get(bucket, key, **kw)

        def put(self, bucket: str, key: str, data: bytes, **kw: Any) -> None:
            _spin(4.0)
            super().put(bucket, key, data, **kw)

    store = BusyStore()
    for key in ("uploads/s3cpu/a.jpg", "uploads/s3cpu/b.jpg"):
        store.add(key, jpeg(640, 480))
    app = make_app(store, FakeDlq(), overlap=overlap)

    # WHEN a batch of both is handled, sequentially and overlapped (PUTs on pool threads)
    app.handle({"Records": [sqs_record(s3_body(f"uploads/s3cpu/{n}.jpg"), n) for n in ("a", "b")]})

    # THEN each record line has the CPU of its GET and its two PUTs (3 x 4 ms), whatever thread ran them
    s3_cpu = [float(ln["s3_cpu_ms"]) for ln in log_lines(app)]  # type: ignore[arg-type]
    assert len(s3_cpu) == 2 and all(12.0 <= v < 40.0 for v in s3_cpu), s3_cpu
