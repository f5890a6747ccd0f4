"""Event parsing: URL-decoded keys, TestEvent, notifier and SNS shapes, invalid bodies."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest

from notifier.message import build_message
from thumbnailer.errors import ErrorCode, InvalidEvent
from thumbnailer.events import parse_body


def s3(key_as_sent: str, event: str = "ObjectCreated:Put", **obj: object) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": event,
                    "eventTime": "t",
                    "s3": {"bucket": {"name": "bkt"}, "object": {"key": key_as_sent, **obj}},
                }
            ]
        }
    )


@pytest.mark.parametrize(
    ("sent", "decoded"),
    [
        ("uploads/my+photo.jpg", "uploads/my photo.jpg"),
        ("uploads/my%20photo.jpg", "uploads/my photo.jpg"),
        ("uploads/1%2B1%3D2.jpg", "uploads/1+1=2.jpg"),
        ("uploads/caf%C3%A9/%E5%86%99%E7%9C%9F.jpg", "uploads/café/写真.jpg"),
        ("uploads/100%25.jpg", "uploads/100%.jpg"),
    ],
)
def test_keys_are_url_decoded(sent: str, decoded: str) -> None:
    (ref,) = parse_body(s3(sent)).objects
    assert ref.key == decoded and ref.bucket == "bkt"


@pytest.mark.parametrize("key", ["uploads/a b+c/é ü 写真 (1).jpg", "uploads/%20.jpg", "uploads/+.jpg"])
def test_round_trip_of_s3_style_encoding(key: str) -> None:
    (ref,) = parse_body(s3(quote_plus(key, safe="/"))).objects
    assert ref.key == key


def test_object_fields_are_read() -> None:
    (ref,) = parse_body(s3("k.jpg", size=12, eTag='"abc"', versionId="v1")).objects
    assert (ref.size, ref.etag, ref.version_id, ref.event_name) == (12, "abc", "v1", "ObjectCreated:Put")


def test_test_event_is_recognised() -> None:
    parsed = parse_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}))
    assert parsed.test_event and parsed.objects == ()


def test_non_create_events_are_ignored() -> None:
    parsed = parse_body(s3("k.jpg", event="ObjectRemoved:Delete"))
    assert parsed.objects == () and parsed.ignored == 1


def test_notifier_message_round_trip() -> None:
    msg = build_message(
        "bkt",
        "uploads/a b+c.jpg",
        etag='"e"',
        version_id="v",
        size=5,
        metadata={"run-id": "r1", "x": "y"},
        event_time="t",
    )
    (ref,) = parse_body(json.dumps(msg)).objects
    assert (ref.bucket, ref.key, ref.etag, ref.version_id, ref.size, ref.run_id) == (
        "bkt",
        "uploads/a b+c.jpg",
        "e",
        "v",
        5,
        "r1",
    )  # notifier keys are already decoded


def test_sns_wrapped_notification() -> None:
    (ref,) = parse_body(json.dumps({"Type": "Notification", "Message": s3("uploads/a+b.jpg")})).objects
    assert ref.key == "uploads/a b.jpg"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1,2]",
        json.dumps({"hello": "world"}),
        json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}),
        json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "b"}, "object": {"key": ""}},
                    }
                ]
            }
        ),
        json.dumps({"type": "thumbnail-request", "version": 99, "source": {"bucket": "b", "key": "k"}}),
        json.dumps({"type": "thumbnail-request", "version": 1, "source": {"bucket": "b"}}),
    ],
)
def test_invalid_bodies_raise_invalid_event(body: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_body(body)
    assert info.value.code == ErrorCode.INVALID_EVENT and not info.value.retryable
    assert info.value.message.startswith("Expected ")
