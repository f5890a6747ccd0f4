"""The lean request path answers clients exactly as LocalStack's defaults do: the session's (lean) emulator beside a
HARNESS_LEAN=0 one, the same calls on both, the responses compared field by field and header by header.

Covers what the lean path changes on the way out: gathered socket writes (bodies of 64 KiB and more), a whole-body
response written with its finish in one reactor call (and a ranged or small one), the memoised Last-Modified parse
and the memoised response Content-Type; and SQS's MD5s on the way in and out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.emulator import sides
from harness.aws import client
from harness.executor.local_executor import lean
from harness.settings import HarnessSettings
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
