"""Hostile inputs through the deployed pipeline: thumbnails or a permanent DLQ message, on the first receive."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from common.waiting import wait_until
from fixtures.fuzz import CONTENT_TYPES, generate, sample
from thumbnailer.config import Settings

pytestmark = [pytest.mark.emulator]

SETTLE_DEADLINE_S = 50.0  # "well under a minute"; far below the queue's visibility timeout (checked below)


@dataclass
class Settled:
    """Where each upload of one run ended: its complete thumbnail sets and its DLQ messages (bodies)."""

    thumbnails: dict[str, set[str]] = field(default_factory=dict)
    dead: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0


def _out(pipeline: Any, name: str) -> str:
    """A stack output from the session's `pipeline` fixture (StackOutputs; a dict in older trees)."""
    return str(pipeline[name] if isinstance(pipeline, dict) else getattr(pipeline, name))


def _function_settings(aws: Callable[..., Any], function_name: str) -> Settings:
    cfg = aws("lambda").get_function_configuration(FunctionName=function_name)
    return Settings.from_env(cfg.get("Environment", {}).get("Variables", {}))


def _upload_and_settle(
    pipeline: Any, aws: Callable[..., Any], files: dict[str, tuple[bytes, str]], run_id: str
) -> tuple[Settled, Settings]:
    """Upload `files` (name -> (bytes, content type)) under uploads/<run_id>/ and wait until each has ended."""
    s3, sqs = aws("s3"), aws("sqs")
    settings = _function_settings(aws, _out(pipeline, "function_name"))
    attributes = sqs.get_queue_attributes(QueueUrl=_out(pipeline, "queue_url"), AttributeNames=["VisibilityTimeout"])
    visibility = int(attributes["Attributes"]["VisibilityTimeout"])
    # a retried record would come back only after the visibility timeout: settling before it proves first receives
    assert visibility > SETTLE_DEADLINE_S, f"visibility timeout {visibility} s is too short for this proof"
    out_bucket = settings.output_bucket or _out(pipeline, "input_bucket")
    sizes = {s.name for s in settings.size_specs}
    result = Settled()
    t0 = time.monotonic()
    for name, (data, content_type) in files.items():
        s3.put_object(
            Bucket=_out(pipeline, "input_bucket"),
            Key=f"{settings.input_prefix}{run_id}/{name}",
            Body=data,
            ContentType=content_type,
            Metadata={"run-id": run_id},
        )

    def scan_outputs() -> None:
        found: dict[str, set[str]] = {}
        for size in sizes:
            prefix = f"{settings.output_prefix}{size}/{run_id}/"
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=out_bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    found.setdefault(obj["Key"][len(prefix) :].rsplit(".", 1)[0], set()).add(size)
        result.thumbnails = {name: got for name, got in found.items() if got == sizes}

    def drain_dlq() -> None:
        resp = sqs.receive_message(
            QueueUrl=_out(pipeline, "dlq_url"),
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=5,
            MessageAttributeNames=["All"],
        )
        for msg in resp.get("Messages", []):
            body = json.loads(msg["Body"])
            key = (body.get("source") or {}).get("key", "")
            if body.get("run_id") == run_id or f"/{run_id}/" in key:
                result.dead.setdefault(key.split(f"/{run_id}/", 1)[-1], []).append(body)
                sqs.delete_message(QueueUrl=_out(pipeline, "dlq_url"), ReceiptHandle=msg["ReceiptHandle"])

    def settled() -> bool:
        drain_dlq()
        if set(files) - set(result.dead) - set(result.thumbnails):
            scan_outputs()
        return set(files) <= set(result.dead) | set(result.thumbnails)

    wait_until(
        settled,
        SETTLE_DEADLINE_S,
        interval=0.5,
        max_interval=1.0,
        what=f"all {len(files)} hostile uploads settled as thumbnails or DLQ messages",
    )
    result.seconds = time.monotonic() - t0
    scan_outputs()  # a late partial set would show here
    return result, settings


def _assert_first_receive_outcomes(result: Settled, files: dict[str, Any]) -> None:
    for name in files:
        dead = result.dead.get(name, [])
        if name in result.thumbnails:
            assert not dead, f"{name}: thumbnails and a DLQ message {dead}"
            continue
        assert len(dead) == 1, f"{name}: {len(dead)} DLQ messages"
        (body,) = dead
        error = body["error"]
        assert body["receive_count"] == 1, f"{name}: dead-lettered on receive {body['receive_count']}: {error}"
        assert error["retryable"] is False and error["code"] not in ("UNEXPECTED", ""), f"{name}: {error}"
        assert error["message"], f"{name}: DLQ message without a reason"


def test_a_fuzz_sample_settles_on_the_first_receive(
    pipeline: Any, aws: Callable[..., Any], record_property: pytest.RecordProperty
) -> None:
    # GIVEN 30 mutants (5 per format, the 60000 x 60000 headers included) uploaded at once
    mutants = sample(generate(), 5)
    files = {m.file_name: (m.data, CONTENT_TYPES[m.format]) for m in mutants}
    assert len(files) == 30

    # WHEN the pipeline works through them
    result, settings = _upload_and_settle(pipeline, aws, files, f"fuzz-{uuid.uuid4().hex[:10]}")

    # THEN each is complete thumbnails or one permanent DLQ message sent on its first receive
    _assert_first_receive_outcomes(result, files)
    summary = (
        f"{settings.backend}: {len(files)} mutants settled in {result.seconds:.1f} s; "
        f"{len(result.thumbnails)} thumbnails, {len(result.dead)} DLQ "
        f"{sorted({b['error']['code'] for d in result.dead.values() for b in d})}"
    )
    record_property("fuzz_pipeline", summary)
    print(summary)  # noqa: T201 - the figure, shown with -s


@pytest.mark.corpora
def test_the_corrupt_pngsuite_files_settle_on_the_first_receive(
    pipeline: Any, aws: Callable[..., Any], shared_corpora: Path, record_property: pytest.RecordProperty
) -> None:
    # GIVEN every deliberately corrupt PngSuite file (x*) and a few valid ones
    folder = shared_corpora / "pngsuite" / "png"
    corrupt = sorted(folder.glob("x*.png"))
    valid = [folder / n for n in ("basn0g01.png", "basn6a16.png", "basi3p08.png", "tbrn2c08.png")]
    assert len(corrupt) == 14 and all(p.is_file() for p in valid)
    files = {p.name: (p.read_bytes(), "image/png") for p in corrupt + valid}

    # WHEN they are uploaded together
    result, settings = _upload_and_settle(pipeline, aws, files, f"pngsuite-{uuid.uuid4().hex[:10]}")

    # THEN the corrupt ones are dead-lettered with a permanent code on the first receive, the valid ones thumbnailed
    _assert_first_receive_outcomes(result, files)
    assert {p.name for p in corrupt} <= set(result.dead), f"thumbnails made for {set(result.thumbnails)}"
    assert {p.name for p in valid} <= set(result.thumbnails)
    summary = f"{settings.backend}: PngSuite {len(files)} files settled in {result.seconds:.1f} s"
    record_property("pngsuite_pipeline", summary)
    print(summary)  # noqa: T201 - the figure, shown with -s
