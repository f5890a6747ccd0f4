"""Observation and accounting against in-memory fakes: one outcome per upload, duplicates explained, wire shapes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping

import pytest

from harness.load.corpus import CorpusItem
from harness.load.errors import OUTPUTS_INVALID, LoadError
from harness.load.generator import generate
from harness.load.observe import (
    REDRIVEN,
    DlqObservation,
    LogObservation,
    Outcome,
    PipelineTarget,
    QueueDepths,
    Sampler,
    ThumbnailObservation,
    account,
    collect,
    parse_dlq_message,
    parse_log_line,
    parse_timestamp_ms,
    settle,
)

OUTPUTS = {
    "input_bucket": "in",
    "output_bucket": "out",
    "queue_url": "http://q/jobs",
    "dlq_url": "http://q/dlq",
    "function_name": "load-thumbnailer",
}
TARGET = PipelineTarget.from_outputs(OUTPUTS)
RUN = "run-1"


def thumb(key: str, size: str, start: float = 1000.0, run: str | None = RUN) -> ThumbnailObservation:
    path = key[len("uploads/") :]
    return ThumbnailObservation(f"thumbnails/{size}/{path}.jpg", size, key, run, start, 20.0, 50.0, "pillow")


class FakePipeline:
    """Uploader + PipelineProbe: 'ok' keys get thumbnails, 'bad' go to the DLQ, 'lost' vanish, 'twice' redelivered."""

    target = TARGET

    def __init__(self) -> None:
        self.thumbs: list[ThumbnailObservation] = []
        self.dlq: list[DlqObservation] = []
        self.logs: list[LogObservation] = []
        self.pending = 0
        self.lock = threading.Lock()

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], content_type: str) -> str:
        assert metadata["run-id"] == RUN
        now = time.time() * 1000
        with self.lock:
            if b"bad" in body:
                self.dlq.append(DlqObservation(f"m-{key}", key, RUN, "CORRUPT_IMAGE", "bad bytes", "handler", now))
                self.logs.append(LogObservation(key, now, RUN, f"m-{key}", 1, now - 5, None, "CORRUPT_IMAGE"))
            elif b"lost" in body:
                pass
            else:
                receives = 2 if b"twice" in body else 1
                for n in range(1, receives + 1):
                    self.logs.append(
                        LogObservation(key, now, RUN, f"m-{key}", n, now - 5, None, "TIMEOUT" if n < receives else None)
                    )
                self.thumbs += [thumb(key, s, now + 10) for s in ("large", "small")]
        return "etag"

    def thumbnails(self, run_id: str, *, with_metadata: bool = True) -> list[ThumbnailObservation]:
        return list(self.thumbs)

    def dlq_messages(self) -> list[DlqObservation]:
        return list(self.dlq)

    def log_records(self, since_ms: float, run_id: str) -> list[LogObservation]:
        return list(self.logs)

    def depths(self) -> QueueDepths:
        return QueueDepths(self.pending, 0, 0, len(self.dlq))


def items(*bodies: bytes) -> list[CorpusItem]:
    return [CorpusItem(f"f{i}.jpg", b, "image/jpeg") for i, b in enumerate(bodies)]


def test_generator_and_collect_put_every_upload_in_exactly_one_outcome() -> None:
    fake = FakePipeline()
    bodies = [b"ok"] * 6 + [b"bad"] * 2 + [b"lost"] + [b"twice"]
    result = generate(RUN, [i * 0.002 for i in range(len(bodies))], items(*bodies), fake, concurrency=4)
    assert len(result.accepted) == 10
    acc = collect(RUN, OUTPUTS, result.expected_keys, probe=fake)
    assert acc.invariant_holds
    assert acc.counts == {"complete": 7, "dlq": 2, "missing": 1}
    assert acc.lost == 1
    assert acc.dlq_codes == {"CORRUPT_IMAGE": 2}
    assert len(acc.duplicates) == 1 and acc.unexplained_duplicates == 0
    assert "received 2 times after TIMEOUT" in acc.duplicates[0].explanation
    assert all(k.startswith(f"uploads/{RUN}/") for k in result.expected_keys)


def test_complete_wins_over_dlq_and_the_conflict_is_reported() -> None:
    key = f"uploads/{RUN}/000001-a.jpg"
    redrive = DlqObservation("m1", key, None, REDRIVEN, "", "redrive")
    logs = [LogObservation(key, 1.0, RUN, "m1", n) for n in (1, 2, 3)]
    acc = account(RUN, [key], TARGET, [thumb(key, "large"), thumb(key, "small")], [redrive], logs)
    assert acc.by_key()[key].outcome is Outcome.COMPLETE
    assert acc.conflicts == (key,)
    assert acc.duplicates[0].explained and "maxReceiveCount" in acc.duplicates[0].explanation


def test_a_partial_thumbnail_set_is_not_complete() -> None:
    key = f"uploads/{RUN}/000001-a.jpg"
    acc = account(RUN, [key], TARGET, [thumb(key, "large")], [], None)
    assert acc.by_key()[key].outcome is Outcome.MISSING
    assert acc.partial == (key,)
    assert acc.invariant_holds


def test_duplicates_without_evidence_are_unexplained_and_other_runs_are_ignored() -> None:
    key = f"uploads/{RUN}/000001-a.jpg"
    other = "uploads/run-2/000001-a.jpg"
    dlq = [
        DlqObservation("m1", key, RUN, "X"),
        DlqObservation("m1", key, RUN, "X"),
        DlqObservation("m9", other, "run-2", "X"),
    ]
    acc = account(
        RUN, [key], TARGET, [thumb(other, "large", run="run-2"), thumb(other, "small", run="run-2")], dlq, None
    )
    assert acc.counts == {"complete": 0, "dlq": 1, "missing": 0}
    assert acc.unexplained_duplicates == 1
    assert acc.strays == ()


def test_objects_of_the_run_for_no_accepted_upload_are_strays() -> None:
    key = f"uploads/{RUN}/000001-a.jpg"
    stray = f"uploads/{RUN}/000002-b.jpg"
    acc = account(RUN, [key], TARGET, [thumb(key, "large"), thumb(key, "small"), thumb(stray, "small")], [], None)
    assert acc.strays == (stray,)
    assert acc.invariant_holds


def test_invariant_breaks_when_an_outcome_is_duplicated() -> None:
    key = f"uploads/{RUN}/000001-a.jpg"
    acc = account(RUN, [key], TARGET, [], [], None)
    broken = type(acc)(acc.run_id, acc.expected, acc.outcomes * 2)
    assert acc.invariant_holds and not broken.invariant_holds


def test_a_handler_dlq_message_reports_the_receive_count_the_handler_saw_not_the_peeks() -> None:
    # the DLQ message itself was peeked at 5 times by observers; the source message had been received once
    body = json.dumps({"source": {"key": "uploads/r/1-x.png"}, "error": {"code": "CORRUPT_IMAGE"}, "receive_count": 1})
    [obs] = parse_dlq_message("m", body, {"ApproximateReceiveCount": "5"})
    assert (obs.kind, obs.receive_count) == ("handler", 1)
    [unknown] = parse_dlq_message("m", json.dumps({"error": {"code": "X"}}), {"ApproximateReceiveCount": "5"})
    assert unknown.receive_count is None


def test_handler_dlq_message_is_parsed_with_its_code() -> None:
    body = json.dumps(
        {
            "source": {"bucket": "in", "key": "uploads/r/1-x.png"},
            "error": {"code": "CORRUPT_IMAGE", "message": "Expected an image"},
            "run_id": "r",
            "original": {},
        }
    )
    [obs] = parse_dlq_message(
        "m",
        body,
        {"SentTimestamp": "1700000000000"},
        {"error_code": {"StringValue": "CORRUPT_IMAGE", "DataType": "String"}},
    )
    assert (obs.source_key, obs.code, obs.run_id, obs.kind, obs.sent_ms) == (
        "uploads/r/1-x.png",
        "CORRUPT_IMAGE",
        "r",
        "handler",
        1.7e12,
    )


def test_redriven_raw_s3_event_is_attributed_by_its_url_encoded_key() -> None:
    body = json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": "in"}, "object": {"key": "uploads/r/1-a%20b+c.jpg"}},
                }
            ]
        }
    )
    [obs] = parse_dlq_message("m", body, {"ApproximateReceiveCount": "4"})
    assert (obs.source_key, obs.run_id, obs.code, obs.kind, obs.receive_count) == (
        "uploads/r/1-a b c.jpg",
        "r",
        REDRIVEN,
        "redrive",
        4,
    )
    assert parse_dlq_message("t", json.dumps({"Event": "s3:TestEvent"})) == []
    assert parse_dlq_message("u", "not json")[0].code == "DLQ_UNPARSEABLE"


def test_structured_log_lines_are_parsed_and_others_ignored() -> None:
    line = (
        '{"level":"INFO","message":"record processed","run_id":"r","source":{"bucket":"in","key":"uploads/r/1.jpg"},'
        '"message_id":"m1","receive_count":2,"sent_timestamp":1700000000123}'
    )
    obs = parse_log_line(line, 5.0)
    assert obs is not None
    assert (obs.source_key, obs.run_id, obs.message_id, obs.receive_count, obs.sent_ms) == (
        "uploads/r/1.jpg",
        "r",
        "m1",
        2,
        1700000000123.0,
    )
    assert parse_log_line("START RequestId: abc Version: $LATEST", 1.0) is None
    assert parse_log_line('{"message": "cold start"}', 1.0) is None


def test_outputs_must_name_the_queues() -> None:
    with pytest.raises(LoadError) as info:
        PipelineTarget.from_outputs({"input_bucket": "in"})
    assert info.value.code == OUTPUTS_INVALID
    t = PipelineTarget.from_outputs({**OUTPUTS, "output_bucket": "", "sizes": "big:10x10,tiny:2x2"})
    assert t.output_bucket == "in" and t.sizes == ("big", "tiny")
    assert t.source_of("thumbnails/tiny/r/1-a.jpg.webp") == ("tiny", "uploads/r/1-a.jpg")
    assert t.source_of("elsewhere/x") is None


def test_settle_returns_when_every_upload_is_complete_and_times_out_otherwise() -> None:
    fake = FakePipeline()
    result = generate(RUN, [0.0, 0.0], items(b"ok", b"ok"), fake)
    assert settle(RUN, OUTPUTS, result.expected_keys, timeout=5.0, probe=fake)
    fake.pending = 3  # messages still in the queue: never settles
    assert not settle(RUN, OUTPUTS, result.expected_keys, timeout=0.3, probe=fake, interval=0.05)


def test_sampler_records_depths_and_environments_until_stopped() -> None:
    fake = FakePipeline()
    fake.pending = 2
    with Sampler(fake, interval_s=0.01, environments=lambda: 3) as sampler:
        from common.waiting import wait_until

        wait_until(lambda: len(sampler.samples) >= 3, 5.0)
    n = len(sampler.samples)
    assert n >= 3 and sampler.samples[0].visible == 2 and sampler.samples[0].environments == 3
    assert len(sampler.samples) == n  # stopped


def test_generator_records_failures_and_stops_at_its_time_bound() -> None:
    class Flaky(FakePipeline):
        def put(self, key: str, body: bytes, metadata: Mapping[str, str], content_type: str) -> str:
            if b"boom" in body:
                raise RuntimeError("connection reset")
            return super().put(key, body, metadata, content_type)

    result = generate(RUN, [0.0, 0.0, 0.0, 30.0], items(b"ok", b"boom", b"ok", b"ok"), Flaky(), max_duration_s=0.5)
    codes = sorted(str(r.error_code) for r in result.records)
    assert codes == ["LOAD_NOT_SENT", "None", "None", "UPLOAD_RuntimeError"]
    assert result.stopped_early == "time bound"
    assert len(result.expected_keys) == 2


def test_open_loop_keeps_the_schedule_when_uploads_are_slow() -> None:
    class Slow(FakePipeline):
        def put(self, key: str, body: bytes, metadata: Mapping[str, str], content_type: str) -> str:
            threading.Event().wait(0.5)  # a slow server
            return super().put(key, body, metadata, content_type)

    result = generate(RUN, [0.0, 0.05, 0.1, 0.15], items(*[b"ok"] * 4), Slow(), concurrency=4)
    first, last = result.records[0], result.records[-1]
    assert last.started_ms is not None and first.acked_ms is not None
    assert last.started_ms < first.acked_ms  # the 4th upload went out while the 1st was still in flight


def test_powertools_record_line_gives_the_done_time_of_a_complete_upload() -> None:
    key = f"uploads/{RUN}/000001-a.jpg"
    line = (
        '{"level":"INFO","location":"_log:205","message":"thumbnail record","timestamp":"2026-11-27 23:30:01,250+0000",'
        '"service":"thumbnailer","message_id":"m1","receive_count":1,"backend":"pillow","bucket":"in",'
        f'"key":"{key}","run_id":"{RUN}","outcome":"ok","ms":40.0,"resize_ms":20.0}}'
    )
    log = parse_log_line(line, 0.0)
    assert log is not None and log.event == "ok" and log.logged_ms is not None
    acc = account(RUN, [key], TARGET, [thumb(key, "large"), thumb(key, "small")], [], [log])
    outcome = acc.by_key()[key]
    assert outcome.done_ms == log.logged_ms and outcome.deliveries == 1
    assert parse_timestamp_ms("2026-11-27T23:30:01Z") == log.logged_ms - 250
