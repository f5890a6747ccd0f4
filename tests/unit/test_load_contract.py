"""The handler/observer contract end to end: what the real handler writes, the load observer reads back the same."""

from __future__ import annotations

import json

import pytest

from harness.load.accounting import account
from harness.load.model import Outcome, PipelineTarget
from harness.load.wire import parse_dlq_message, parse_log_line, parse_thumbnail
from tests.unit.test_handler import BUCKET, FakeDlq, FakeStore, jpeg, log_lines, make_app, s3_body, sqs_record
from thumbnailer import contract

KEYS = [
    "uploads/a/x.jpg",
    "uploads/my photo.jpg",
    "uploads/c++/1+1=2.jpg",
    "uploads/café/写真.jpeg",
    "uploads/%41 literal.jpg",
    "uploads/deep/er/path/img.png",
]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("fmt", sorted(contract.EXTENSIONS))
def test_the_inverse_of_the_output_key_rule_gives_back_size_and_source(key: str, fmt: str) -> None:
    out = contract.output_key(key, "small", fmt)
    assert out.startswith("thumbnails/small/") and out.endswith("." + contract.EXTENSIONS[fmt])
    assert contract.source_of(out) == ("small", key)
    assert out.rsplit(".", 1)[0] == contract.output_stem(key, "small")


def test_keys_outside_the_layout_have_no_source() -> None:
    assert contract.source_of("elsewhere/small/x.jpg.jpg") is None
    assert contract.source_of("thumbnails/small") is None
    assert contract.source_of("thumbnails/small/no-extension") is None


def test_what_the_handler_writes_is_what_the_observer_reads() -> None:
    # GIVEN a run's uploads (one good, with characters S3 metadata cannot hold; one corrupt) through the real handler
    run = "run-contract"
    store, dlq = FakeStore(), FakeDlq()
    good, bad = "uploads/run-contract/café +1.jpg", "uploads/run-contract/broken.jpg"
    store.add(good, jpeg(300, 200), run_id=run)
    store.add(bad, jpeg(300, 200)[:200], run_id=run)
    app = make_app(store, dlq)
    assert app.handle({"Records": [sqs_record(s3_body(good), "m1"), sqs_record(s3_body(bad), "m2")]}) == {
        "batchItemFailures": []
    }

    # WHEN the observer parses the thumbnails' metadata, the DLQ message and the log lines
    target = PipelineTarget(BUCKET, BUCKET, "q", "dlq", "fn")
    thumbs = []
    for (_, key), put in store.puts.items():
        parsed = target.source_of(key)
        assert parsed is not None
        thumbs.append(parse_thumbnail(key, parsed[0], parsed[1], put["metadata"]))  # type: ignore[arg-type]
    dead = [
        obs
        for i, (body, attrs) in enumerate(dlq.sent)
        for obs in parse_dlq_message(
            f"d{i}",
            json.dumps(body),
            {"SentTimestamp": "1764284400500"},
            {k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()},
        )
    ]
    logs = [parse_log_line(json.dumps(line), 0.0) for line in log_lines(app)]

    # THEN every field the observer needs came across: source key (decoded), run id, timings, codes, deliveries
    assert {(t.size, t.source_key, t.run_id, t.backend) for t in thumbs} == {
        ("large", good, run, "pillow"),
        ("small", good, run, "pillow"),
    }
    assert all(t.handler_start_ms and t.resize_ms is not None and t.total_ms is not None for t in thumbs)
    assert [(d.source_key, d.run_id, d.code, d.kind) for d in dead] == [(bad, run, "CORRUPT_IMAGE", "handler")]
    assert sorted((ln.source_key, ln.message_id, ln.event) for ln in logs if ln) == [
        (bad, "m2", "dlq"),
        (good, "m1", "ok"),
    ]
    assert all(ln and ln.sent_ms == 1764284400000 and ln.receive_count == 1 and ln.run_id == run for ln in logs)
    acc = account(run, [good, bad], target, thumbs, dead, [ln for ln in logs if ln])
    assert acc.invariant_holds and acc.counts == {"complete": 1, "dlq": 1, "missing": 0}
    assert acc.by_key()[bad].outcome is Outcome.DLQ and acc.dlq_codes == {"CORRUPT_IMAGE": 1}
