"""The boto3 adapters of the load harness: S3 uploader and the read-only pipeline probe (S3, SQS, CloudWatch Logs)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from botocore.config import Config
from botocore.exceptions import ClientError

from common.credentials import LOOPBACK_HOSTS
from harness.aws import client as aws_client
from harness.load.accounting import S3_TEST_EVENT
from harness.load.errors import ENDPOINT_NOT_LOOPBACK, LoadError
from harness.load.model import DlqObservation, LogObservation, PipelineTarget, QueueDepths, ThumbnailObservation
from harness.load.wire import parse_dlq_message, parse_log_line, parse_thumbnail
from harness.settings import HarnessSettings


def require_loopback(endpoint: str) -> str:
    """Load and fault traffic goes to 127.0.0.1 only."""
    host = urlparse(endpoint).hostname or ""
    if host not in LOOPBACK_HOSTS and not host.startswith("127."):
        raise LoadError(
            ENDPOINT_NOT_LOOPBACK,
            f"Expected a loopback endpoint (127.0.0.1) for load traffic but received {endpoint!r}",
        )
    return endpoint


def client(service: str, settings: HarnessSettings, *, pool: int = 10, retries: int = 2) -> Any:
    """A boto3 client bound to the emulator endpoint (loopback only), with a connection pool of `pool`."""
    require_loopback(settings.endpoint)
    return aws_client(
        service,
        settings,
        config=Config(
            max_pool_connections=pool,
            retries={"max_attempts": retries, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            s3={"addressing_style": "path"},
        ),
    )


class S3Uploader:
    """Uploader port over S3 PutObject (metadata becomes x-amz-meta-*)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    @classmethod
    def for_target(cls, target: PipelineTarget, settings: HarnessSettings, concurrency: int) -> S3Uploader:
        # retries=1: a throttled or failed PUT is recorded as such, not hidden by retries
        return cls(client("s3", settings, pool=concurrency + 4, retries=1), target.input_bucket)

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], content_type: str) -> str:
        resp = self._s3.put_object(
            Bucket=self._bucket, Key=key, Body=body, Metadata=dict(metadata), ContentType=content_type
        )
        return str(resp.get("ETag", "")).strip('"')


_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF8", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"ftypavif", 4, "image/avif"),
    (b"ftypheic", 4, "image/heic"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
)


def sniff_type(head: bytes) -> str | None:
    """The image type the first bytes of an object show (None when unknown)."""
    for magic, at, mime in _MAGIC:
        if head[at : at + len(magic)] == magic:
            return mime
    return None


def with_raw_keys(message: Mapping[str, Any], input_prefix: str) -> list[DlqObservation]:
    """One DLQ message -> observations (harness.load.wire.parse_dlq_message), plus: an s3:TestEvent becomes an
    observation of its own (code S3_TEST_EVENT, no source key), and a redriven S3 event keeps each record's key as it
    arrived (`raw_key`, URL-encoded) so a handler that does not decode keys can be told apart."""
    body = message.get("Body", "")
    attributes = message.get("Attributes") or {}
    parsed = parse_dlq_message(message["MessageId"], body, attributes, message.get("MessageAttributes"), input_prefix)
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return parsed
    if isinstance(doc, dict) and doc.get("Event") == "s3:TestEvent" and not parsed:
        sent = attributes.get("SentTimestamp")
        receives = attributes.get("ApproximateReceiveCount")
        return [
            DlqObservation(
                message["MessageId"],
                None,
                None,
                S3_TEST_EVENT,
                f"s3:TestEvent of bucket {doc.get('Bucket')}",
                "test-event",
                float(sent) if sent else None,
                int(receives) if receives else None,
            )
        ]
    records = doc.get("Records") if isinstance(doc, dict) else None
    if isinstance(records, list) and len(records) == len(parsed) and all(d.kind == "redrive" for d in parsed):
        raws = [(((r or {}).get("s3") or {}).get("object") or {}).get("key") for r in records]
        return [
            dataclasses.replace(d, raw_key=raw if isinstance(raw, str) else None)
            for d, raw in zip(parsed, raws, strict=True)
        ]
    return parsed


@dataclass
class AwsProbe:
    """PipelineProbe over boto3: thumbnails (list + HeadObject metadata), DLQ (peek), logs, queue depths."""

    target: PipelineTarget
    s3: Any
    sqs: Any
    logs: Any
    head_threads: int = 16
    dlq_visibility_s: int = 60
    read_deadline_s: float = 180.0
    # flat layout (the seed: thumbnails/<size>/<file name>, no run in the key): outputs modified before this epoch ms
    # belong to earlier runs (set by the runner at the start of a run)
    not_before_ms: float | None = None
    # an s3:TestEvent in the DLQ sent before this epoch ms is not this run's (chaos runs many scenarios on one stack,
    # whose bucket sent its test event once, at deploy); None: every one counts (a load run deploys its own stack)
    test_events_since_ms: float | None = None
    sniff: bool = True  # read each thumbnail's first bytes to check its Content-Type against its content

    @classmethod
    def for_target(cls, target: PipelineTarget, settings: HarnessSettings | None = None) -> AwsProbe:
        settings = settings or HarnessSettings.from_env()
        return cls(target, client("s3", settings, pool=24), client("sqs", settings), client("logs", settings))

    # -- S3 ---------------------------------------------------------------------------------------------------
    def _list(self, prefix: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.target.output_bucket, Prefix=prefix):
            out.extend(page.get("Contents", []))
        return out

    def _head(self, key: str) -> tuple[dict[str, str], str | None, str | None] | None:
        """(metadata, stored Content-Type, the type the first bytes show) of one thumbnail; None when it is gone."""
        try:
            if self.sniff:
                resp = self.s3.get_object(Bucket=self.target.output_bucket, Key=key, Range="bytes=0-31")
                head = resp["Body"].read()
                return dict(resp.get("Metadata", {})), resp.get("ContentType"), sniff_type(head)
            resp = self.s3.head_object(Bucket=self.target.output_bucket, Key=key)
            return dict(resp.get("Metadata", {})), resp.get("ContentType"), None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "InvalidRange"):
                return None  # deleted between list and head
            raise

    def _listed(self, run_id: str) -> list[tuple[dict[str, Any], str, str]]:
        """(listed object, size, source) of the run's thumbnails. Mirror layout: the source key its key mirrors.
        Flat layout: every output of the size folder written since `not_before_ms`, source = its file name (the
        accounting attributes file names to uploads)."""
        out = []
        for size in self.target.sizes:
            if self.target.flat:
                for obj in self._list(f"{self.target.output_prefix}{size}/"):
                    modified = obj.get("LastModified")
                    if self.not_before_ms is not None and (
                        modified is None or modified.timestamp() * 1000 < self.not_before_ms
                    ):
                        continue
                    out.append((obj, size, obj["Key"].rsplit("/", 1)[-1]))
                continue
            # thumbnails/<size>/<run_id>/... mirrors uploads/<run_id>/...
            for obj in self._list(self.target.output_stem(size, self.target.run_prefix(run_id))):
                parsed = self.target.source_of(obj["Key"])
                if parsed is not None:
                    out.append((obj, parsed[0], parsed[1]))
        return out

    def _this_runs(self, o: DlqObservation) -> bool:
        since = self.test_events_since_ms
        return not (o.code == S3_TEST_EVENT and since is not None and o.sent_ms is not None and o.sent_ms < since)

    def thumbnails(self, run_id: str, *, with_metadata: bool = True) -> list[ThumbnailObservation]:
        listed = self._listed(run_id)
        heads: list[tuple[dict[str, str], str | None, str | None] | None] = [None] * len(listed)
        if with_metadata and listed:
            with ThreadPoolExecutor(max_workers=self.head_threads, thread_name_prefix="load-head") as pool:
                heads = list(pool.map(self._head, [o["Key"] for o, _, _ in listed]))
        out = []
        for (obj, size, derived_source), head in zip(listed, heads, strict=True):
            if with_metadata and head is None:
                continue  # deleted (or overwritten away) between list and read
            modified = obj.get("LastModified")
            meta, content_type, body_type = head if head is not None else (None, None, None)
            t = parse_thumbnail(
                obj["Key"], size, derived_source, meta, modified.timestamp() * 1000 if modified is not None else None
            )
            out.append(dataclasses.replace(t, content_type=content_type, body_type=body_type))
        return out

    # -- SQS --------------------------------------------------------------------------------------------------
    def dlq_messages(self) -> list[DlqObservation]:
        """Peek at every DLQ message: receive with a visibility timeout, then make them visible again."""
        out: list[DlqObservation] = []
        handles: list[tuple[str, str]] = []
        deadline = time.monotonic() + self.read_deadline_s
        empty = 0
        try:
            while empty < 2 and time.monotonic() < deadline:
                resp = self.sqs.receive_message(
                    QueueUrl=self.target.dlq_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=0,
                    VisibilityTimeout=self.dlq_visibility_s,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                messages = resp.get("Messages", [])
                empty = 0 if messages else empty + 1
                for m in messages:
                    handles.append((m["MessageId"], m["ReceiptHandle"]))
                    out.extend(o for o in with_raw_keys(m, self.target.input_prefix) if self._this_runs(o))
        finally:
            for i in range(0, len(handles), 10):
                entries = [
                    {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for n, (_, h) in enumerate(handles[i : i + 10])
                ]
                try:
                    self.sqs.change_message_visibility_batch(QueueUrl=self.target.dlq_url, Entries=entries)
                except ClientError:
                    pass  # they become visible again after dlq_visibility_s anyway
        return out

    def depths(self) -> QueueDepths:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        q = self.sqs.get_queue_attributes(QueueUrl=self.target.queue_url, AttributeNames=names)["Attributes"]
        d = self.sqs.get_queue_attributes(QueueUrl=self.target.dlq_url, AttributeNames=names[:1])["Attributes"]
        return QueueDepths(
            int(q.get(names[0], 0)), int(q.get(names[1], 0)), int(q.get(names[2], 0)), int(d.get(names[0], 0))
        )

    # -- CloudWatch Logs --------------------------------------------------------------------------------------
    def log_records(self, since_ms: float, run_id: str) -> list[LogObservation]:
        out: list[LogObservation] = []
        if not self.target.function_name:
            return out
        deadline = time.monotonic() + self.read_deadline_s
        kwargs: dict[str, Any] = {"logGroupName": self.target.log_group, "startTime": int(since_ms)}
        try:
            while time.monotonic() < deadline:
                resp = self.logs.filter_log_events(**kwargs)
                for event in resp.get("events", []):
                    message = event.get("message", "")
                    if run_id not in message:
                        continue
                    parsed = parse_log_line(message, float(event.get("timestamp", 0)))
                    if parsed is not None:
                        out.append(parsed)
                token = resp.get("nextToken")
                if not token or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return out
            raise
        return out
