"""THUMB_OVERLAP through the emulator: the same mixed SQS batch, invoked with overlap off and on, ends the same way."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from common.waiting import wait_until
from infra.deploy.outputs import StackOutputs
from infra.package import code_zip_bytes
from tests.lambdas import LAMBDA_ROLE, unique_name
from thumbnailer.config import Settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

FIXTURES = ("tiny.jpg", "jpeg-p3-icc.jpg", "webp-photo.webp", "png-palette-trns.png", "bad-truncated.jpg")
FIXTURES += ("bad-text.jpg",)


@pytest.fixture(scope="module")
def functions(pipeline: StackOutputs, aws: Callable[..., Any]) -> Iterator[dict[str, str]]:
    """Two copies of the stack's thumbnailer (its code and environment, DLQ included): overlap off and on."""
    lam = aws("lambda")
    cfg = lam.get_function_configuration(FunctionName=pipeline.function_name)
    env = dict(cfg.get("Environment", {}).get("Variables", {}))
    # not named `<stack>-...`: the CDK parity walk counts such live resources as the stack's extras
    names = {mode: unique_name(f"overlap-{mode}") for mode in ("off", "on")}
    code = code_zip_bytes()
    try:
        for mode, name in names.items():
            lam.create_function(
                FunctionName=name,
                Runtime=cfg["Runtime"],
                Role=LAMBDA_ROLE,
                Handler=cfg["Handler"],
                Code={"ZipFile": code},
                Timeout=60,
                MemorySize=int(cfg["MemorySize"]),
                Environment={"Variables": {**env, "THUMB_OVERLAP": mode}},
            )
        for name in names.values():
            wait_until(
                lambda n=name: lam.get_function(FunctionName=n)["Configuration"]["State"] == "Active",
                60,
                what=f"function {name} Active",
            )
        yield names
    finally:
        logs = aws("logs")
        for name in names.values():
            try:
                lam.delete_function(FunctionName=name)
            except lam.exceptions.ResourceNotFoundException:
                pass
            try:
                logs.delete_log_group(logGroupName=f"/aws/lambda/{name}")
            except logs.exceptions.ResourceNotFoundException:
                pass


def _sqs_event(bucket: str, keys: list[str], sizes: dict[str, int]) -> dict[str, Any]:
    records = []
    for i, key in enumerate(keys):
        s3 = {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/"), "size": sizes.get(key, 0)}}
        body = json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": s3}]})
        records.append(
            {
                "messageId": f"m{i}",
                "receiptHandle": f"rh-{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764284400000"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:overlap",
            }
        )
    return {"Records": records}


def test_a_mixed_batch_ends_the_same_with_overlap_off_and_on(
    pipeline: StackOutputs, aws: Callable[..., Any], functions: dict[str, str], generated_fixtures: Path
) -> None:
    s3, lam, sqs = aws("s3"), aws("lambda"), aws("sqs")
    settings = Settings.from_env(
        lam.get_function_configuration(FunctionName=pipeline.function_name)["Environment"]["Variables"]
    )
    out_bucket = settings.output_bucket or pipeline.input_bucket
    results: dict[str, dict[str, Any]] = {}
    for mode, name in functions.items():
        # GIVEN good and poison uploads (plus one missing key) under a run id of this mode
        run_id = f"overlap-{mode}-{uuid.uuid4().hex[:8]}"
        keys, sizes = [], {}
        for fx in FIXTURES:
            key = f"{settings.input_prefix}{run_id}/{fx}"
            data = (generated_fixtures / fx).read_bytes()
            s3.put_object(Bucket=pipeline.input_bucket, Key=key, Body=data, Metadata={"run-id": run_id})
            keys.append(key)
            sizes[key] = len(data)
        keys.insert(2, f"{settings.input_prefix}{run_id}/missing.jpg")

        # WHEN the function is invoked with one SQS batch of them (as the event source mapping would)
        resp = lam.invoke(FunctionName=name, Payload=json.dumps(_sqs_event(pipeline.input_bucket, keys, sizes)))
        payload = json.loads(resp["Payload"].read())
        assert "FunctionError" not in resp, payload

        # THEN collect the thumbnails and the DLQ codes of this run
        made: set[str] = set()
        for size in (s.name for s in settings.size_specs):
            prefix = f"{settings.output_prefix}{size}/{run_id}/"
            for obj in s3.list_objects_v2(Bucket=out_bucket, Prefix=prefix).get("Contents", []):
                made.add(f"{size}/{obj['Key'][len(prefix) :]}")
        dead: dict[str, str] = {}

        def drained(run_id: str = run_id, dead: dict[str, str] = dead) -> bool:
            msgs = sqs.receive_message(
                QueueUrl=pipeline.dlq_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=1,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            for msg in msgs:
                attrs = {k: v.get("StringValue", "") for k, v in msg.get("MessageAttributes", {}).items()}
                body = json.loads(msg["Body"])
                source = str((body.get("source") or {}).get("key", ""))
                if f"/{run_id}/" in source:
                    dead[source.rsplit("/", 1)[-1]] = attrs.get("error_code", "")
                    sqs.delete_message(QueueUrl=pipeline.dlq_url, ReceiptHandle=msg["ReceiptHandle"])
            return len(dead) >= 3

        wait_until(drained, 30, interval=0.2, what=f"3 DLQ messages of {run_id}")
        results[mode] = {"failures": payload["batchItemFailures"], "made": made, "dead": dead}

    # the outcomes are the same either way: every good input thumbnailed, each poison one dead-lettered with its code
    assert results["on"] == results["off"]
    assert results["on"]["failures"] == []
    assert results["on"]["dead"] == {
        "missing.jpg": "SOURCE_MISSING",
        "bad-truncated.jpg": "CORRUPT_IMAGE",
        "bad-text.jpg": "UNSUPPORTED_FORMAT",
    }
    assert len(results["on"]["made"]) == 2 * 4
