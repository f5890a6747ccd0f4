"""The seed replica's flat output layout as the chaos harness sees it: a run's thumbnails stay its own, and the
stack's one s3:TestEvent is not counted again in every scenario run after the deploy."""

from __future__ import annotations

from harness.chaos.verdict import proxy_evidence
from harness.load.accounting import S3_TEST_EVENT
from harness.load.model import DlqObservation, PipelineTarget
from harness.load.storage import AwsProbe

FLAT = PipelineTarget("b", "b", "q", "d", "f", sizes=("50", "150", "300"), layout="flat")
MIRROR = PipelineTarget("in", "out", "q", "d", "f", sizes=("large", "small"))


def test_a_flat_runs_upload_names_carry_the_run_id_and_its_thumbnails_are_found_by_it() -> None:
    key = FLAT.upload_key("chaos-crash-1", "000-image.png")
    assert key == "uploads/chaos-crash-1/chaos-crash-1-000-image.png"
    assert FLAT.output_stem("50", key) == "thumbnails/50/chaos-crash-1-000-image.png"  # what the seed writes
    prefixes = FLAT.run_output_prefixes("chaos-crash-1")
    assert prefixes == (
        "thumbnails/50/chaos-crash-1-",
        "thumbnails/150/chaos-crash-1-",
        "thumbnails/300/chaos-crash-1-",
    )
    assert FLAT.output_stem("50", key).startswith(prefixes)
    assert not "thumbnails/50/chaos-crash-2-000-image.png".startswith(prefixes)  # another run's, same file name


def test_the_mirror_layout_is_unchanged() -> None:
    assert MIRROR.upload_key("r", "000-image.png") == "uploads/r/000-image.png"
    assert MIRROR.run_output_prefixes("r") == ("thumbnails/large/r/", "thumbnails/small/r/")


def test_proxy_evidence_of_a_flat_run_counts_its_own_thumbnail_writes_only() -> None:
    from harness.chaos.proxy import Exchange

    def put(key: str, injected: str = "") -> Exchange:
        return Exchange(
            at=1.0,
            method="PUT",
            bucket="b",
            key=key,
            status=500 if injected else 200,
            injected=injected or None,
            delayed_s=0.0,
            invocation_id=key + injected,
            attempt=1,
            body_sha256=None if injected else "h",
            body_bytes=1,
        )

    mine = FLAT.output_stem("50", FLAT.upload_key("r1", "000-image.png"))
    other = FLAT.output_stem("50", FLAT.upload_key("r2", "000-image.png"))
    seen = proxy_evidence([put(mine, "InternalError"), put(other, "InternalError"), put(mine)], FLAT, "r1")
    assert seen.injected == {"InternalError": 1}


def test_a_test_event_sent_before_the_run_is_not_the_runs() -> None:
    probe = AwsProbe.__new__(AwsProbe)  # only the filter: no clients
    probe.test_events_since_ms = 2_000.0
    old = DlqObservation("m1", None, None, S3_TEST_EVENT, sent_ms=1_000.0)
    new = DlqObservation("m2", None, None, S3_TEST_EVENT, sent_ms=3_000.0)
    coded = DlqObservation("m3", "uploads/r/x.png", "r", "CORRUPT_IMAGE", sent_ms=1_000.0)
    assert [o.message_id for o in (old, new, coded) if probe._this_runs(o)] == ["m2", "m3"]
    probe.test_events_since_ms = None  # a load run: its own stack's test event counts
    assert probe._this_runs(old)
