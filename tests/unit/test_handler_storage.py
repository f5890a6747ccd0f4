"""The boto3 adapters (S3Store, SqsDeadLetter) map SDK errors to our coded errors; exercised with botocore's Stubber."""

from __future__ import annotations

import io
import json
import threading
import time

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from thumbnailer.app import Thumbnailer
from thumbnailer.config import Settings
from thumbnailer.errors import AccessDenied, ErrorCode, SourceMissing, Throttled, TooManyBytes, UpstreamError
from thumbnailer.resizers import get_resizer
from thumbnailer.storage import S3Store, SqsDeadLetter


def offline_client(service: str = "s3", **kwargs: object):  # type: ignore[no-untyped-def]
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        endpoint_url="http://127.0.0.1:9",
        **kwargs,
    )  # never contacted: the Stubber answers


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("SlowDown", 503, Throttled),
        ("ThrottlingException", 400, Throttled),
        ("NoSuchKey", 404, SourceMissing),
        ("AccessDenied", 403, AccessDenied),
        ("InternalError", 500, UpstreamError),
    ],
)
def test_get_errors_are_mapped_to_coded_errors(code: str, status: int, expected: type) -> None:
    client = offline_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        with pytest.raises(expected) as info:
            S3Store(client).get("b", "uploads/x.jpg")
    assert info.value.code == expected.code
    assert info.value.message.startswith("Expected ") and code in info.value.message
    assert info.value.retryable is (expected in (Throttled, UpstreamError))


def test_oversized_object_is_rejected_before_download() -> None:
    client = offline_client()
    body = StreamingBody(io.BytesIO(b"x" * 10), 10)
    with Stubber(client) as stub:
        stub.add_response(
            "get_object", {"Body": body, "ContentLength": 10_000_000, "ETag": '"e"'}, {"Bucket": "b", "Key": "k"}
        )
        with pytest.raises(TooManyBytes):
            S3Store(client).get("b", "k", max_bytes=1000)


def test_throttled_s3_through_the_real_adapter_gives_a_batch_item_failure() -> None:
    client = offline_client()
    record = {
        "messageId": "m1",
        "receiptHandle": "r",
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "body": json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "b"}, "object": {"key": "uploads/a+b.jpg"}},
                    }
                ]
            }
        ),
    }
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_object",
            service_error_code="SlowDown",
            http_status_code=503,
            expected_params={"Bucket": "b", "Key": "uploads/a b.jpg"},
        )
        app = Thumbnailer(Settings(dlq_url="http://dlq"), S3Store(client), None, get_resizer("pillow"))
        assert app.handle({"Records": [record]}) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}


def test_dlq_message_attributes_are_strings_and_empty_ones_are_omitted() -> None:
    sqs = offline_client("sqs")
    with Stubber(sqs) as stub:
        stub.add_response(
            "send_message",
            {"MessageId": "1", "MD5OfMessageBody": "x"},
            {
                "QueueUrl": "http://q",
                "MessageBody": ANY,
                "MessageAttributes": {
                    "error_code": {"DataType": "String", "StringValue": "CORRUPT_IMAGE"},
                    "error_message": {"DataType": "String", "StringValue": "bad"},
                },
            },
        )
        SqsDeadLetter("http://q", sqs).send("{}", {"error_code": "CORRUPT_IMAGE", "error_message": "bad", "run_id": ""})
        stub.assert_no_pending_responses()


def test_dlq_send_failure_is_retryable() -> None:
    sqs = offline_client("sqs")
    with Stubber(sqs) as stub:
        stub.add_client_error(
            "send_message", service_error_code="AWS.SimpleQueueService.NonExistentQueue", http_status_code=400
        )
        with pytest.raises(UpstreamError) as info:
            SqsDeadLetter("http://q", sqs).send("{}", {"error_code": "X"})
    assert info.value.retryable and info.value.code in (ErrorCode.UPSTREAM_ERROR, ErrorCode.STORAGE_ERROR)


def test_sdk_clients_skip_client_side_parameter_validation_but_keep_checksums(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the adapters' own clients (no endpoint is contacted to build them)
    from botocore.validate import ParamValidationDecorator

    from thumbnailer.storage import SDK_CONFIG

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for client in (S3Store().client, SqsDeadLetter("https://sqs.example/q").client):
        # THEN botocore's per-call walk of the input shape is off (the services validate) ...
        assert not isinstance(client._serializer, ParamValidationDecorator)
        # ... and the integrity checks and retries are botocore's defaults / ours
        assert client.meta.config.request_checksum_calculation == "when_supported"
        assert client.meta.config.response_checksum_validation == "when_supported"
        assert client.meta.config.retries["mode"] == "standard"
    assert SDK_CONFIG.parameter_validation is False


def test_an_invalid_parameter_is_still_a_coded_error_without_client_side_validation() -> None:
    # GIVEN a store whose client, like the adapter's, does not validate parameters
    from thumbnailer.storage import SDK_CONFIG

    client = offline_client(config=SDK_CONFIG)
    with Stubber(client) as stub:
        stub.add_client_error("put_object", service_error_code="InvalidArgument", http_status_code=400)
        # WHEN S3 rejects the request
        with pytest.raises(UpstreamError) as info:
            S3Store(client).put("b", "k", b"x", content_type="image/jpeg", cache_control="c", metadata={"a": "1"})
    # THEN it is the write's coded, retryable error, as before
    assert info.value.code == UpstreamError.code and info.value.retryable


def test_threads_that_first_use_a_store_at_once_build_one_client_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN boto3.client (its default session is not thread-safe) slow enough for builds to overlap, if allowed to
    inside, peak, built = [0], [0], []
    guard = threading.Lock()

    def slow_client(service: str, **_kwargs: object) -> object:
        with guard:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.02)  # a build in progress while the other threads arrive (not a wait for a result)
        with guard:
            inside[0] -= 1
        built.append(service)
        return object()

    monkeypatch.setattr(boto3, "client", slow_client)
    store, dlq = S3Store(), SqsDeadLetter("http://q")
    start = threading.Barrier(8)
    got: list[object] = []

    def first_use(adapter: object) -> None:
        start.wait(timeout=10)
        got.append(adapter.client)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=first_use, args=(store if i % 2 else dlq,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # THEN each adapter built its client once, never two builds at the same time, and every thread got that client
    assert sorted(built) == ["s3", "sqs"]
    assert peak[0] == 1
    assert len(got) == 8 and len({id(c) for c in got}) == 2
