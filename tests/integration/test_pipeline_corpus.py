"""Through the deployed pipeline: every corpus upload ends as complete thumbnails or as one coded DLQ message."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.waiting import wait_until
from infra.deploy.outputs import StackOutputs
from thumbnailer.config import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

DEADLINE_S = 75
EXTENSIONS = {"jpeg": "jpg", "webp": "webp", "png": "png", "avif": "avif"}
ODD_KEYS = ("a b+c/é ü 写真 (1).jpg", "plus+sign.jpg", "100% sure.jpg")  # tiny.jpg uploaded under these names


def _function_settings(aws: Callable[..., Any], function_name: str) -> Settings:
    cfg = aws("lambda").get_function_configuration(FunctionName=function_name)
    return Settings.from_env(cfg.get("Environment", {}).get("Variables", {}))


def test_every_upload_ends_as_thumbnails_or_a_coded_dlq_message(
    pipeline: StackOutputs, aws: Callable[..., Any], generated_fixtures: Path
) -> None:
    s3, sqs = aws("s3"), aws("sqs")
    settings = _function_settings(aws, pipeline.function_name)
    out_bucket = settings.output_bucket or pipeline.input_bucket
    run_id = f"corpus-{uuid.uuid4().hex[:10]}"
    manifest = json.loads((generated_fixtures / "manifest.json").read_text())["fixtures"]

    # GIVEN every fixture (and a tiny image under awkward key names) uploaded with this run's id
    expected: dict[str, dict[str, Any]] = {}
    for fx in manifest:
        expected[f"{fx['name']}"] = fx
    for odd in ODD_KEYS:
        expected[odd] = next(f for f in manifest if f["name"] == "tiny.jpg")
    for name, fx in expected.items():
        key = f"{settings.input_prefix}{run_id}/{name}"
        s3.put_object(
            Bucket=pipeline.input_bucket,
            Key=key,
            Body=(generated_fixtures / fx["name"]).read_bytes(),
            ContentType=fx["content_type"],
            Metadata={"run-id": run_id},
        )
    sizes = [s.name for s in settings.size_specs]

    # WHEN the pipeline has worked through them: collect outputs and this run's DLQ messages
    dead: dict[str, dict[str, str]] = {}

    def outputs() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for size in sizes:
            prefix = f"{settings.output_prefix}{size}/{run_id}/"
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=out_bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    source_name = obj["Key"][len(prefix) :].rsplit(".", 1)[0]
                    found.setdefault(source_name, set()).add(size)
        return found

    def drain_dlq() -> None:
        resp = sqs.receive_message(
            QueueUrl=pipeline.dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=2,
            MessageAttributeNames=["All"],
        )
        for msg in resp.get("Messages", []):
            attrs = {k: v.get("StringValue", "") for k, v in msg.get("MessageAttributes", {}).items()}
            body = json.loads(msg["Body"])
            source = (body.get("source") or {}).get("key", "")
            if attrs.get("run_id") == run_id or f"/{run_id}/" in source:
                dead[source.split(f"/{run_id}/", 1)[-1]] = attrs
                sqs.delete_message(QueueUrl=pipeline.dlq_url, ReceiptHandle=msg["ReceiptHandle"])

    def settled() -> bool:
        drain_dlq()
        done = {name for name, got in outputs().items() if got == set(sizes)}
        return set(expected) <= done | set(dead)

    wait_until(settled, DEADLINE_S, interval=0.5, max_interval=2.0, what=f"all {len(expected)} uploads settled")

    # THEN valid inputs have complete thumbnails and no DLQ message; invalid ones a DLQ message with their code only
    got = outputs()
    for name, fx in expected.items():
        if fx["kind"] == "valid":
            assert got.get(name) == set(sizes), f"{name}: thumbnails {got.get(name)}"
            assert name not in dead, f"{name}: unexpected DLQ message {dead.get(name)}"
        else:
            assert name not in got, f"{name}: thumbnails made for an invalid input"
            assert dead.get(name, {}).get("error_code") == fx["error_code"], f"{name}: {dead.get(name)}"
            assert dead[name].get("error_message", "").startswith("Expected ")

    # and the outputs carry the right type, cache control and links back to the source
    head_key = f"{settings.output_prefix}{sizes[-1]}/{run_id}/png-rgba-12mp.png.webp"
    head = s3.head_object(Bucket=out_bucket, Key=head_key)
    assert head["ContentType"] == "image/webp" and head["CacheControl"] == settings.cache_control
    assert head["Metadata"]["run-id"] == run_id
    assert head["Metadata"]["source-key"] == f"{settings.input_prefix}{run_id}/png-rgba-12mp.png"
