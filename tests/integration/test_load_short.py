"""The load harness against the emulator: its S3/SQS probe on hand-made outcomes, and a ~100-upload accounting run."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from common.paths import ROOT
from harness.load.corpus import CorpusItem
from harness.load.generator import generate
from harness.load.observe import REDRIVEN, Outcome, PipelineTarget, collect
from harness.load.runner import LoadRun
from harness.load.scenario import load_scenario
from harness.load.storage import AwsProbe, S3Uploader
from harness.settings import HarnessSettings


@pytest.fixture()
def bare_target(aws: Callable[..., Any]) -> Iterator[PipelineTarget]:
    """Two buckets and two queues with unique names, no function: the test plays the handler."""
    name = f"lp-{secrets.token_hex(3)}"
    s3, sqs = aws("s3"), aws("sqs")
    buckets = (f"{name}-in", f"{name}-out")
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
    queue = sqs.create_queue(QueueName=f"{name}-jobs")["QueueUrl"]
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    yield PipelineTarget(buckets[0], buckets[1], queue, dlq, "")
    for url in (queue, dlq):
        sqs.delete_queue(QueueUrl=url)
    for bucket in buckets:
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)


def test_probe_reads_outcomes_from_s3_metadata_and_the_dlq(
    bare_target: PipelineTarget, aws: Callable[..., Any], harness_settings: HarnessSettings
) -> None:
    # GIVEN four uploads: one fully thumbnailed, one sent to the DLQ by the handler, one redriven, one lost
    run = f"it-{secrets.token_hex(3)}"
    items = [CorpusItem(f"{n}.jpg", b"\xff\xd8" + n.encode(), "image/jpeg") for n in ("ok", "bad", "slow", "lost")]
    gen = generate(run, [0, 0, 0, 0], items, S3Uploader.for_target(bare_target, harness_settings, 4))
    ok, bad, slow, lost = gen.expected_keys
    s3, sqs = aws("s3"), aws("sqs")
    assert s3.head_object(Bucket=bare_target.input_bucket, Key=ok)["Metadata"]["run-id"] == run
    for size in ("large", "small"):
        s3.put_object(
            Bucket=bare_target.output_bucket,
            Key=f"thumbnails/{size}/{ok[len('uploads/') :]}.jpg",
            Body=b"x",
            Metadata={
                "run-id": run,
                "source-key": ok,
                "handler-start-ms": "1000",
                "resize-ms": "12.5",
                "total-ms": "40.0",
                "backend": "pillow",
            },
        )
    sqs.send_message(
        QueueUrl=bare_target.dlq_url,
        MessageBody=json.dumps(
            {
                "source": {"bucket": bare_target.input_bucket, "key": bad},
                "error": {"code": "CORRUPT_IMAGE", "message": "m"},
                "run_id": run,
                "original": {},
            }
        ),
        MessageAttributes={
            "error_code": {"DataType": "String", "StringValue": "CORRUPT_IMAGE"},
            "run_id": {"DataType": "String", "StringValue": run},
        },
    )
    sqs.send_message(
        QueueUrl=bare_target.dlq_url,
        MessageBody=json.dumps(
            {"Records": [{"s3": {"bucket": {"name": bare_target.input_bucket}, "object": {"key": slow}}}]}
        ),
    )

    # WHEN the run is collected twice (the DLQ is peeked, not consumed)
    probe = AwsProbe.for_target(bare_target, harness_settings)
    first = collect(run, bare_target, gen.expected_keys, probe=probe, read_logs=False)
    second = collect(run, bare_target, gen.expected_keys, probe=probe, read_logs=False)

    # THEN each upload has exactly one outcome, with the DLQ codes
    for acc in (first, second):
        assert acc.invariant_holds
        outcomes = acc.by_key()
        assert outcomes[ok].outcome is Outcome.COMPLETE and outcomes[ok].resize_ms == 12.5
        assert (outcomes[bad].outcome, outcomes[bad].dlq_code) == (Outcome.DLQ, "CORRUPT_IMAGE")
        assert (outcomes[slow].outcome, outcomes[slow].dlq_code) == (Outcome.DLQ, REDRIVEN)
        assert outcomes[lost].outcome is Outcome.MISSING
    assert probe.depths().dlq_visible == 2


def test_short_load_run_accounts_for_every_upload(
    harness_settings: HarnessSettings, emulator: Any, tmp_path: Path
) -> None:
    # GIVEN the smoke scenario (~100 uploads, 10 % invalid inputs) against a stack of its own
    corpus = ROOT / "fixtures" / "generated"
    if not (corpus / "manifest.json").is_file():
        pytest.skip(f"fixture corpus missing at {corpus}: run `make fixtures`")
    manifest = {f["name"]: f for f in json.loads((corpus / "manifest.json").read_text())["fixtures"]}
    scenario = load_scenario("smoke")
    assert 90 <= len(scenario.arrival_offsets()) <= 110

    # WHEN it runs end to end (deploy, upload, settle, collect, report)
    [result] = LoadRun(scenario, harness_settings, tmp_path, stack_name="load-short").run()

    # THEN every accepted upload is in exactly one outcome, none is lost, and each outcome is the right one
    summary = result.summary
    acc = summary["accounting"]
    assert summary["uploads"]["accepted"] == summary["uploads"]["planned"] == len(scenario.arrival_offsets())
    assert acc["invariant_holds"], acc
    assert acc["lost"] == 0, acc
    assert acc["unexplained_duplicates"] == 0, acc["duplicate_details"]
    assert acc["stray_count"] == 0
    sources = {
        json.loads(line)["key"]: json.loads(line)["source"]
        for line in (result.out_dir / "uploads.jsonl").read_text().splitlines()
    }
    expected_codes: dict[str, int] = {}
    for source in sources.values():
        if manifest[source]["kind"] == "invalid":
            code = str(manifest[source]["error_code"])
            expected_codes[code] = expected_codes.get(code, 0) + 1
    assert acc["dlq_codes"] == dict(sorted(expected_codes.items()))
    assert acc["counts"]["complete"] == len(sources) - sum(expected_codes.values())
    assert summary["latency_ms"]["e2e"]["n"] == acc["counts"]["complete"]
    assert {p.name for p in result.files} >= {"report.md", "report.json", "latency_cdf.png"}
