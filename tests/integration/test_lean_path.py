"""The lean request path answers clients exactly as LocalStack's defaults do: the session's (lean) emulator beside a
HARNESS_LEAN=0 one, the same calls on both, the responses compared field by field and header by header.

Covers what the lean path changes on the way out: gathered socket writes (bodies of 64 KiB and more), a whole-body
response written with its finish in one reactor call (and a ranged or small one), the memoised Last-Modified parse
and the memoised response Content-Type; and SQS's MD5s on the way in and out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from PIL import Image

from benchmarks.emulator import sides
from common.waiting import wait_until
from harness import emulator as emu
from harness.aws import client
from harness.executor.local_executor import lean, lean_clients
from harness.settings import HarnessSettings
from infra.deploy.outputs import StackOutputs
from tests.ports import free_port_block

BUCKET = "lean-parity"
QUEUE = "lean-parity"
BIG = bytes(range(256)) * (2 * 1024 * 1024 // 256 + 7)  # just over 2 MB, above lean_transport.GATHER_MIN
SMALL = b"thumbnail pipeline " * 50  # below GATHER_MIN: twisted's own doWrite
# headers whose values differ between any two responses (request ids, clocks)
VOLATILE = {"date", "x-amz-request-id", "x-amz-id-2", "last-modified", "x-amzn-requestid", "x-amz-crc32"}


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HarnessSettings]:
    """A second emulator with HARNESS_LEAN=0 (LocalStack's defaults) on ports of its own."""
    # its own port (LEAN_PARITY_PORT to pick one, e.g. inside a range you were given): never the session's
    port = int(os.environ.get("LEAN_PARITY_PORT") or free_port_block(1))
    home = Path(os.environ.get("HARNESS_HOME", str(tmp_path_factory.mktemp("lean")))) / "lean-parity-defaults"
    side = sides.start(sides.Side("before", port, home))
    try:
        yield dataclasses.replace(HarnessSettings.from_env(), port=port, home=home, endpoint_override=None)
    finally:
        sides.stop(side)


@pytest.fixture(scope="module")
def both(emulator: Any, harness_settings: HarnessSettings, defaults: HarnessSettings) -> dict[str, Callable[..., Any]]:
    if not lean.enabled():
        pytest.skip("the session's emulator runs with HARNESS_LEAN=0: nothing to compare")
    return {
        "lean": lambda service: client(service, harness_settings),
        "defaults": lambda service: client(service, defaults),
    }


def _headers(response: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in response["ResponseMetadata"]["HTTPHeaders"].items() if k not in VOLATILE}


def _fields(response: dict[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k not in ("ResponseMetadata", "Body", *drop)}


def _s3_calls(s3: Any) -> dict[str, Any]:
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.ClientError:
        pass  # there from an earlier run
    out: dict[str, Any] = {}
    out["put"] = s3.put_object(Bucket=BUCKET, Key="big", Body=BIG, ChecksumAlgorithm="CRC32")
    s3.put_object(Bucket=BUCKET, Key="small", Body=SMALL, ContentType="text/plain")
    for name, kwargs in {
        "get_big": {"Key": "big", "ChecksumMode": "ENABLED"},
        "get_big_again": {"Key": "big"},
        "get_range": {"Key": "big", "Range": "bytes=100-1048675"},
        "get_small": {"Key": "small"},
    }.items():
        response = s3.get_object(Bucket=BUCKET, **kwargs)
        response["Body"] = response["Body"].read()
        out[name] = response
    out["head"] = s3.head_object(Bucket=BUCKET, Key="big")
    return out


def test_s3_get_put_head_answer_the_same_on_the_lean_path(both: dict[str, Callable[..., Any]]) -> None:
    # GIVEN the same objects put on both emulators WHEN they are read back in several ways
    got = {side: _s3_calls(make("s3")) for side, make in both.items()}
    lean_, plain = got["lean"], got["defaults"]
    # THEN the bodies are the bytes put, with the same ETag, checksum, lengths, ranges and headers on both sides
    assert lean_["get_big"]["Body"] == BIG and lean_["get_big_again"]["Body"] == BIG
    assert lean_["get_big"]["ETag"] == f'"{hashlib.md5(BIG).hexdigest()}"'
    assert lean_["get_range"]["Body"] == BIG[100:1048676]
    assert lean_["get_small"]["Body"] == SMALL
    for name in lean_:
        assert _fields(lean_[name], "LastModified") == _fields(plain[name], "LastModified"), name
        assert _headers(lean_[name]) == _headers(plain[name]), name
        assert lean_[name].get("Body") == plain[name].get("Body"), name
    # Last-Modified (memoised parse on the lean side) still says when the object was written
    assert lean_["get_big"]["LastModified"] == lean_["head"]["LastModified"]
    raw = lean_["get_big"]["ResponseMetadata"]["HTTPHeaders"]["last-modified"]
    assert raw.endswith(" GMT") and lean_["get_big"]["LastModified"].strftime("%d %b %Y %H:%M:%S") in raw


def _sqs_calls(sqs: Any) -> dict[str, Any]:
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    out: dict[str, Any] = {}
    out["send"] = sqs.send_message(
        QueueUrl=url,
        MessageBody='{"Records": [{"s3": {"object": {"key": "uploads/caf\u00e9.jpg"}}}]}',
        MessageAttributes={"run": {"DataType": "String", "StringValue": "r-1"}},
        MessageSystemAttributes={
            "AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793"}
        },
    )
    out["send_plain"] = sqs.send_message(QueueUrl=url, MessageBody="x" * 300)
    out["batch"] = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)]
    )
    received = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )
    out["receive"] = sorted(
        ({k: v for k, v in m.items() if k not in ("MessageId", "ReceiptHandle")} for m in received["Messages"]),
        key=lambda m: m["Body"],
    )
    for m in received["Messages"]:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def test_sqs_send_receive_md5s_are_the_same_on_the_lean_path(both: dict[str, Callable[..., Any]]) -> None:
    got = {side: _sqs_calls(make("sqs")) for side, make in both.items()}
    lean_, plain = got["lean"], got["defaults"]
    body = '{"Records": [{"s3": {"object": {"key": "uploads/caf\u00e9.jpg"}}}]}'
    assert lean_["send"]["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert lean_["send_plain"]["MD5OfMessageBody"] == hashlib.md5(b"x" * 300).hexdigest()
    for name in ("send", "send_plain"):
        assert _fields(lean_[name], "MessageId") == _fields(plain[name], "MessageId"), name
        assert _headers(lean_[name]) == _headers(plain[name]), name
    strip = [{k: v for k, v in e.items() if k != "MessageId"} for e in lean_["batch"]["Successful"]]
    assert strip == [{k: v for k, v in e.items() if k != "MessageId"} for e in plain["batch"]["Successful"]]
    assert len(lean_["receive"]) == 5
    assert lean_["receive"] == plain["receive"]


NOTIFIED = "lean-parity-notified"


def _notification(s3: Any, sqs: Any) -> dict[str, Any]:
    """S3 -> SQS: S3's notifier sends with LocalStack's own SQS client (answered directly on the lean side)."""
    url = sqs.create_queue(QueueName=NOTIFIED)["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    try:
        s3.create_bucket(Bucket=NOTIFIED)
    except s3.exceptions.ClientError:
        pass  # there from an earlier run
    s3.put_bucket_notification_configuration(
        Bucket=NOTIFIED,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Id": "to-sqs"}]
        },
    )
    s3.put_object(Bucket=NOTIFIED, Key="uploads/caf\u00e9 1.jpg", Body=SMALL)
    messages: list[dict[str, Any]] = []

    def created() -> bool:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
        )
        messages.extend(m for m in got.get("Messages", []) if "ObjectCreated" in m["Body"])
        return bool(messages)

    wait_until(created, 30.0, interval=0.1, what="the S3 notification on the queue")
    record = json.loads(messages[0]["Body"])["Records"][0]
    volatile = {"eventTime", "responseElements", "requestParameters"}
    attributes = messages[0]["Attributes"]
    return {
        "record": {k: v for k, v in record.items() if k not in volatile},
        "object": {k: v for k, v in record["s3"]["object"].items() if k != "sequencer"},
        "sender": attributes.get("SenderId"),
        "receive_count": attributes.get("ApproximateReceiveCount"),
        "md5_matches": messages[0]["MD5OfBody"] == hashlib.md5(messages[0]["Body"].encode()).hexdigest(),
    }


def test_s3_notifications_reach_sqs_the_same_on_the_lean_path(both: dict[str, Callable[..., Any]]) -> None:
    # GIVEN a bucket notifying a queue on both emulators WHEN an object is put
    got = {side: _notification(make("s3"), make("sqs")) for side, make in both.items()}
    # THEN the message S3 sent (through LocalStack's own SQS client) says the same on both sides
    assert got["lean"]["md5_matches"] and got["defaults"]["md5_matches"]
    assert unquote_plus(got["lean"]["object"]["key"]) == "uploads/caf\u00e9 1.jpg"
    assert got["lean"] == got["defaults"]


def test_the_pipelines_own_internal_calls_are_answered_by_the_provider(
    emulator: Any, pipeline: StackOutputs, harness_settings: HarnessSettings, aws: Callable[..., Any]
) -> None:
    if not lean.enabled():
        pytest.skip("the session's emulator runs with HARNESS_LEAN=0: no direct answers")
    # GIVEN the deployed stack WHEN one image goes through it
    s3 = aws("s3")
    key = f"{pipeline.input_prefix}lean-direct/{uuid.uuid4().hex[:8]}.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(buffer, "JPEG")
    s3.put_object(Bucket=pipeline.input_bucket, Key=key, Body=buffer.getvalue(), ContentType="image/jpeg")
    out = f"{pipeline.output_prefix}small/{key[len(pipeline.input_prefix) :]}.jpg"

    def thumbnail() -> bool:
        return bool(s3.list_objects_v2(Bucket=pipeline.output_bucket, Prefix=out).get("KeyCount"))

    wait_until(thumbnail, 90.0, interval=0.2, what=f"the small thumbnail of {key}")

    # THEN the notification, the poller's receive and delete, its invoke and the function's log lines were each
    # answered directly (logged once per operation by lean_clients), and the upload still became its thumbnails
    def all_logged() -> bool:
        text = emu.log_text(harness_settings).rpartition(emu.START_MARKER)[2]  # this emulator's run only
        return all(lean_clients.DIRECT_LOG % op in text for op in WANTED_DIRECT)

    wait_until(all_logged, 30.0, interval=0.2, what="the direct answers in the emulator's log")


WANTED_DIRECT = [
    ("sqs", "SendMessage"),
    ("sqs", "ReceiveMessage"),
    ("sqs", "DeleteMessageBatch"),
    ("lambda", "Invoke"),
    ("logs", "PutLogEvents"),
]
