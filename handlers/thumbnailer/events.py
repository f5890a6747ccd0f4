"""SQS record bodies -> object references: S3 notifications (URL-decoded keys), SNS-wrapped, notifier messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict
from urllib.parse import unquote_plus

from .contract import META_RUN_ID
from .errors import InvalidEvent, expected

NOTIFIER_MESSAGE_TYPE = "thumbnail-request"
NOTIFIER_MESSAGE_VERSION = 1


# ---- AWS wire shapes (subset we read) ----------------------------------------------------------------------------
class S3BucketEntity(TypedDict):
    name: str


class S3ObjectEntity(TypedDict):
    key: str  # URL-encoded (form encoding: space = '+')
    size: NotRequired[int]
    eTag: NotRequired[str]
    versionId: NotRequired[str]
    sequencer: NotRequired[str]


class S3Entity(TypedDict):
    bucket: S3BucketEntity
    object: S3ObjectEntity


class S3EventRecord(TypedDict):
    eventSource: str
    eventName: str
    eventTime: NotRequired[str]
    awsRegion: NotRequired[str]
    s3: S3Entity


class S3Notification(TypedDict, total=False):
    Records: list[S3EventRecord]
    Event: str  # "s3:TestEvent" for the test message S3 sends when a notification is configured
    Service: str
    Bucket: str


class NotifierSource(TypedDict):
    bucket: str
    key: str  # NOT URL-encoded: the notifier has already decoded it
    version_id: NotRequired[str]
    etag: NotRequired[str]
    size: NotRequired[int]


class NotifierMessage(TypedDict):
    """What notifier.app sends for each created object (the second topology)."""

    type: str  # "thumbnail-request"
    version: int
    source: NotifierSource
    run_id: NotRequired[str]
    metadata: NotRequired[dict[str, str]]
    event_time: NotRequired[str]


# ---- values ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One created object to thumbnail (key already decoded)."""

    bucket: str
    key: str
    version_id: str = ""
    etag: str = ""
    size: int = -1
    event_name: str = ""
    event_time: str = ""
    run_id: str = ""  # known up front only from notifier messages; otherwise read from the object's metadata
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "version_id": self.version_id, "etag": self.etag}


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """Objects found in one SQS message body; `test_event` marks the S3 configuration probe (nothing to do)."""

    objects: tuple[ObjectRef, ...]
    test_event: bool = False
    ignored: int = 0  # records that are not object-created events (e.g. ObjectRemoved)


def parse_body(body: str) -> ParsedBody:
    """Parse one SQS message body. Raises InvalidEvent (permanent) for anything we cannot interpret."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(expected("a JSON message body", "the SQS record", _clip(body))) from exc
    if not isinstance(doc, dict):
        raise InvalidEvent(expected("a JSON object", "the SQS record body", _clip(body)))
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):  # S3 -> SNS -> SQS
        return parse_body(doc["Message"])
    if doc.get("Event") == "s3:TestEvent":
        return ParsedBody((), test_event=True)
    if doc.get("type") == NOTIFIER_MESSAGE_TYPE:
        return ParsedBody((_from_notifier(doc),))
    records = doc.get("Records")
    if isinstance(records, list):
        refs: list[ObjectRef] = []
        ignored = 0
        for rec in records:
            ref = _from_s3_record(rec)
            if ref is None:
                ignored += 1
            else:
                refs.append(ref)
        return ParsedBody(tuple(refs), ignored=ignored)
    raise InvalidEvent(
        expected("an S3 notification, an s3:TestEvent or a notifier message", "the SQS record body", _clip(body))
    )


def _from_s3_record(rec: Any) -> ObjectRef | None:
    if not isinstance(rec, dict):
        raise InvalidEvent(expected("an object", "an S3 event record", rec))
    name = str(rec.get("eventName", ""))
    if rec.get("eventSource") not in ("aws:s3", None) or not name.startswith("ObjectCreated"):
        return None
    try:
        s3 = rec["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        raw_key = obj["key"]
    except (KeyError, TypeError) as exc:
        raise InvalidEvent(
            expected("s3.bucket.name and s3.object.key", "an S3 event record", _clip(json.dumps(rec)))
        ) from exc
    if not isinstance(bucket, str) or not bucket or not isinstance(raw_key, str) or not raw_key:
        raise InvalidEvent(expected("a non-empty bucket and key", "an S3 event record", (bucket, raw_key)))
    size = obj.get("size", -1)
    return ObjectRef(
        bucket=bucket,
        key=unquote_plus(raw_key),  # S3 form-encodes keys in notifications: '+' is a space, %2B is '+'
        version_id=str(obj.get("versionId") or ""),
        etag=str(obj.get("eTag") or "").strip('"'),
        size=size if isinstance(size, int) else -1,
        event_name=name,
        event_time=str(rec.get("eventTime", "")),
    )


def _from_notifier(doc: dict[str, Any]) -> ObjectRef:
    if doc.get("version") != NOTIFIER_MESSAGE_VERSION:
        raise InvalidEvent(expected(f"version {NOTIFIER_MESSAGE_VERSION}", "the notifier message", doc.get("version")))
    src = doc.get("source")
    if (
        not isinstance(src, dict)
        or not isinstance(src.get("bucket"), str)
        or not isinstance(src.get("key"), str)
        or not src["bucket"]
        or not src["key"]
    ):
        raise InvalidEvent(expected("source.bucket and source.key", "the notifier message", src))
    meta = doc.get("metadata") or {}
    size = src.get("size", -1)
    return ObjectRef(
        bucket=src["bucket"],
        key=src["key"],
        version_id=str(src.get("version_id") or ""),
        etag=str(src.get("etag") or "").strip('"'),
        size=size if isinstance(size, int) else -1,
        event_name="ObjectCreated:notifier",
        event_time=str(doc.get("event_time", "")),
        run_id=str(doc.get("run_id") or (meta.get(META_RUN_ID, "") if isinstance(meta, dict) else "")),
        metadata={str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {},
    )


def _clip(text: Any, limit: int = 200) -> str:
    s = text if isinstance(text, str) else repr(text)
    return s if len(s) <= limit else s[:limit] + f"...(+{len(s) - limit} chars)"
