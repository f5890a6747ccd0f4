"""Notifier Lambda: S3 ObjectCreated event -> one SQS message per object with its metadata (second topology)."""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from .config import NotifierSettings
from .message import build_message

logger = Logger(service="notifier")


class Ports(Protocol):
    def head(self, bucket: str, key: str) -> dict[str, Any]: ...

    def send(self, queue_url: str, message: dict[str, Any]) -> None: ...


def notify(event: dict[str, Any], settings: NotifierSettings, ports: Ports) -> dict[str, int]:
    """Send one message per created object; deleted-in-between objects are skipped; other errors raise (retry)."""
    from .storage import ObjectGone

    sent = skipped = 0
    for rec in event.get("Records", []):
        if rec.get("Event") == "s3:TestEvent" or not str(rec.get("eventName", "")).startswith("ObjectCreated"):
            skipped += 1
            continue
        bucket = rec["s3"]["bucket"]["name"]
        key = unquote_plus(rec["s3"]["object"]["key"])
        try:
            head = ports.head(bucket, key)
        except ObjectGone as exc:
            logger.warning("object gone", extra={"bucket": bucket, "key": key, "code": exc.code})
            skipped += 1
            continue
        message = build_message(
            bucket,
            key,
            etag=head["etag"],
            version_id=head["version_id"],
            size=head["size"],
            metadata=head["metadata"],
            event_time=str(rec.get("eventTime", "")),
        )
        ports.send(settings.queue_url, message)
        logger.info("notified", extra={"bucket": bucket, "key": key, "run_id": message["run_id"]})
        sent += 1
    return {"sent": sent, "skipped": skipped}


_SETTINGS: NotifierSettings | None = None
_PORTS: Ports | None = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    global _SETTINGS, _PORTS
    if _SETTINGS is None or _PORTS is None:
        from .storage import AwsPorts

        _SETTINGS, _PORTS = NotifierSettings.from_env(), AwsPorts()
    if event.get("Event") == "s3:TestEvent":
        return {"sent": 0, "skipped": 1}
    return notify(event, _SETTINGS, _PORTS)
