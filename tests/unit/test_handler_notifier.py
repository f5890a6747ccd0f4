"""Notifier: one SQS message per created object, decoded key, metadata and run id copied; settings validated."""

from __future__ import annotations

from typing import Any

import pytest

from notifier.app import notify
from notifier.config import NotifierConfigError, NotifierSettings
from notifier.storage import ObjectGone


class Ports:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        if key.endswith("gone.jpg"):
            raise ObjectGone("404")
        return {"etag": "e", "version_id": "", "size": 3, "metadata": {"run-id": "r9"}}

    def send(self, queue_url: str, message: dict[str, Any]) -> None:
        self.sent.append(message)


def rec(key: str, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "eventSource": "aws:s3",
        "eventName": name,
        "eventTime": "t",
        "s3": {"bucket": {"name": "b"}, "object": {"key": key}},
    }


def test_notifier_sends_one_message_per_created_object() -> None:
    ports = Ports()
    event = {
        "Records": [rec("uploads/a+b%C3%A9.jpg"), rec("uploads/x.jpg", "ObjectRemoved:Delete"), rec("uploads/gone.jpg")]
    }
    assert notify(event, NotifierSettings("http://q"), ports) == {"sent": 1, "skipped": 2}
    (msg,) = ports.sent
    assert msg["source"]["key"] == "uploads/a bé.jpg" and msg["run_id"] == "r9" and msg["type"] == "thumbnail-request"


def test_notifier_settings_round_trip_and_validation() -> None:
    s = NotifierSettings("https://sqs.us-east-1.amazonaws.com/1/q")
    assert NotifierSettings.from_env(s.to_env()) == s
    with pytest.raises(NotifierConfigError, match="Expected an SQS queue URL"):
        NotifierSettings.from_env({})
