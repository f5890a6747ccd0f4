"""Accounting per cause: lost deleted without output, overwritten (flat layout), wrong content type, DLQ causes."""

from __future__ import annotations

import dataclasses
import json

from harness.load.accounting import (
    DLQ_ENCODED_KEY,
    DLQ_TEST_EVENT,
    LOST_DELETED,
    LOST_UNKNOWN,
    MISSING_QUEUED,
    OVERWRITTEN,
    WRONG_CONTENT_TYPE,
    account,
)
from harness.load.model import DlqObservation, Outcome, PipelineTarget, ThumbnailObservation
from harness.load.storage import sniff_type, with_raw_keys
from infra.deploy.outputs import StackOutputs

RUN = "spike-pillow-x"
FLAT = PipelineTarget("b", "b", "q", "d", "f", sizes=("50", "150", "300"), layout="flat")
OURS = PipelineTarget("in", "out", "q", "d", "f", sizes=("large", "small"))


def flat(name: str, size: str, content_type: str = "image/jpeg", body: str = "image/jpeg") -> ThumbnailObservation:
    return ThumbnailObservation(f"thumbnails/{size}/{name}", size, name, content_type=content_type, body_type=body)


def ours(key: str, size: str, content_type: str = "image/png", body: str = "image/png") -> ThumbnailObservation:
    return ThumbnailObservation(f"thumbnails/{size}/{key}", size, key, RUN, content_type=content_type, body_type=body)


def test_a_seed_deploy_is_read_as_the_flat_layout_from_its_outputs() -> None:
    required = [f.name for f in dataclasses.fields(StackOutputs) if f.default is dataclasses.MISSING]
    doc = dict.fromkeys(required, "x") | {
        "memory_mb": 128,
        "timeout_s": 60,
        "sizes": "50:50x50,150:150x150,300:300x300",
    }
    seed = PipelineTarget.from_outputs(StackOutputs(**doc, profile="seed"))
    default = PipelineTarget.from_outputs(StackOutputs(**doc, profile="default"))
    assert seed.flat and seed.sizes == ("50", "150", "300") and not default.flat


def test_flat_outputs_go_to_the_last_upload_of_a_name_and_the_others_are_overwritten() -> None:
    keys = [f"uploads/{RUN}/a/same.png", f"uploads/{RUN}/b/same.png", f"uploads/{RUN}/000001-x.jpg"]
    thumbs = [flat("same.png", s, body="image/png") for s in FLAT.sizes] + [flat("000001-x.jpg", s) for s in FLAT.sizes]
    thumbs.append(flat("other-run.jpg", "50"))  # not this run's file name: ignored, not a stray
    acc = account(RUN, keys, FLAT, thumbs, [], queue_drained=True)
    causes = dict(acc.causes)
    assert acc.invariant_holds and acc.strays == ()
    assert [o.outcome for o in acc.outcomes] == [Outcome.MISSING, Outcome.COMPLETE, Outcome.COMPLETE]
    assert causes[OVERWRITTEN] == 1 and causes[LOST_DELETED] == 0
    # png bytes stored as image/jpeg: the surviving same.png; the jpeg is right
    assert causes[WRONG_CONTENT_TYPE] == 1


def test_missing_is_deleted_without_output_once_the_queue_is_drained_and_still_queued_otherwise() -> None:
    keys = [f"uploads/{RUN}/{n:06d}-x.jpg" for n in range(10)]
    thumbs = [flat("000000-x.jpg", s) for s in FLAT.sizes]
    drained = account(RUN, keys, FLAT, thumbs, [], queue_drained=True)
    assert drained.lost == 9 and dict(drained.causes)[LOST_DELETED] == 9
    busy = account(RUN, keys, FLAT, thumbs, [], queue_drained=False)
    assert dict(busy.causes)[MISSING_QUEUED] == 9 and dict(busy.causes)[LOST_DELETED] == 0
    # still queued is not lost: the report and the gate tell the two apart
    assert (busy.lost, busy.still_queued, busy.counts["missing"]) == (0, 9, 9)
    assert (busy.to_dict()["lost"], busy.to_dict()["still_queued"]) == (0, 9)
    unknown = account(RUN, keys, FLAT, thumbs, [])
    assert dict(unknown.causes)[LOST_UNKNOWN] == 9
    assert (drained.still_queued, unknown.lost, unknown.still_queued) == (0, 9, 0)


def test_our_layout_with_right_content_types_names_no_cause() -> None:
    keys = [f"uploads/{RUN}/a/same.png", f"uploads/{RUN}/b/same.png"]
    thumbs = [ours(k, s) for k in keys for s in OURS.sizes]
    acc = account(RUN, keys, OURS, thumbs, [], queue_drained=True)
    assert acc.lost == 0 and not any(dict(acc.causes).values())


def test_a_redriven_encoded_key_and_a_test_event_are_dlq_causes_of_their_own() -> None:
    encoded = {
        "MessageId": "m1",
        "Body": json.dumps({"Records": [{"s3": {"object": {"key": f"uploads/{RUN}/a+b.jpg"}}}]}),
        "Attributes": {"ApproximateReceiveCount": "3"},
    }
    test_event = {"MessageId": "m2", "Body": json.dumps({"Event": "s3:TestEvent", "Bucket": "b"}), "Attributes": {}}
    dlq = with_raw_keys(encoded, "uploads/") + with_raw_keys(test_event, "uploads/")
    assert dlq[0].source_key == f"uploads/{RUN}/a b.jpg" and dlq[0].raw_key == f"uploads/{RUN}/a+b.jpg"
    assert dlq[1].source_key is None and dlq[1].code == "S3_TEST_EVENT"
    acc = account(RUN, [f"uploads/{RUN}/a b.jpg"], FLAT, [], dlq, queue_drained=True)
    causes = dict(acc.causes)
    assert acc.counts["dlq"] == 1 and causes[DLQ_ENCODED_KEY] == 1 and causes[DLQ_TEST_EVENT] == 1
    plain = DlqObservation(
        "m3", f"uploads/{RUN}/ab.jpg", RUN, "REDRIVEN", kind="redrive", raw_key=f"uploads/{RUN}/ab.jpg"
    )
    acc = account(RUN, [f"uploads/{RUN}/ab.jpg"], FLAT, [], [plain], queue_drained=True)
    assert dict(acc.causes).get(DLQ_ENCODED_KEY, 0) == 0 and dict(acc.causes)["dlq: REDRIVEN"] == 1


def test_content_is_sniffed_from_the_first_bytes() -> None:
    assert sniff_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_type(b"hello") is None


def test_a_flat_outputs_done_time_is_the_end_of_its_last_modified_second() -> None:
    # S3 keeps LastModified to the second: an upload at 5.4 s whose thumbnails are stamped 5 s finished by 5.999 s at
    # the latest, and never before it was sent (the seed replica writes no metadata and logs nothing of ours)
    thumbs = [
        dataclasses.replace(flat("000001-x.jpg", s), last_modified_ms=5000.0 - 1000 * (s == "50")) for s in FLAT.sizes
    ]
    acc = account(RUN, [f"uploads/{RUN}/000001-x.jpg"], FLAT, thumbs, [], queue_drained=True)
    assert acc.outcomes[0].outcome is Outcome.COMPLETE
    assert acc.outcomes[0].done_ms == 5999.0
