"""The chaos harness's AWS adapter: reversible levers on a deployed stack, a peer consumer, uploads, DLQ redrive."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from common.paths import HANDLERS_DIR
from common.waiting import WaitTimeout, wait_until
from harness.chaos.errors import ChaosError, PipelineUnavailable
from harness.load.observe import PipelineTarget, parse_dlq_message
from thumbnailer import contract

UPDATE_TIMEOUT_S = 60.0


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# ---- function and queue levers (each restores what it changed) -------------------------------------------------
def wait_function_updated(lam: Any, name: str, timeout: float = UPDATE_TIMEOUT_S) -> None:
    def ready() -> bool:
        cfg = lam.get_function_configuration(FunctionName=name)
        if cfg.get("LastUpdateStatus") == "Failed":
            raise ChaosError(
                "FUNCTION_UPDATE_FAILED",
                f"Expected function {name} to update but it failed: {cfg.get('LastUpdateStatusReason')}",
            )
        return cfg.get("State") == "Active" and cfg.get("LastUpdateStatus") in (None, "Successful")

    wait_until(ready, timeout, interval=0.2, what=f"function {name} to finish updating")


def function_environment(lam: Any, name: str) -> dict[str, str]:
    cfg = lam.get_function_configuration(FunctionName=name)
    return dict((cfg.get("Environment") or {}).get("Variables") or {})


@contextmanager
def function_env(lam: Any, name: str, changes: Mapping[str, str | None]) -> Iterator[dict[str, str]]:
    """Set (or with None, remove) environment variables of a function; restore the original set on exit."""
    original = function_environment(lam, name)
    updated = {k: v for k, v in {**original, **changes}.items() if v is not None}
    if updated == original:
        yield original
        return
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": updated})
    wait_function_updated(lam, name)
    try:
        yield updated
    finally:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": original})
        wait_function_updated(lam, name)


@contextmanager
def function_timeout(lam: Any, name: str, seconds: int | None) -> Iterator[int]:
    """Set the function timeout for the duration of the block."""
    original = int(lam.get_function_configuration(FunctionName=name)["Timeout"])
    if seconds is None or seconds == original:
        yield original
        return
    lam.update_function_configuration(FunctionName=name, Timeout=int(seconds))
    wait_function_updated(lam, name)
    try:
        yield int(seconds)
    finally:
        lam.update_function_configuration(FunctionName=name, Timeout=original)
        wait_function_updated(lam, name)


def queue_attributes(sqs: Any, url: str) -> dict[str, str]:
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


@contextmanager
def queue_visibility(sqs: Any, url: str, seconds: int | None) -> Iterator[int]:
    """Set the queue's visibility timeout for the duration of the block."""
    original = int(queue_attributes(sqs, url)["VisibilityTimeout"])
    if seconds is None or seconds == original:
        yield original
        return
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(int(seconds))})
    try:
        yield int(seconds)
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(original)})


def handlers_zip() -> bytes:
    """The handler packages zipped at the zip root (the Lambda 'layer' interpreter carries the libraries)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(HANDLERS_DIR.rglob("*.py")):
            if "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(HANDLERS_DIR).as_posix())
    return buf.getvalue()


@contextmanager
def peer_consumer(lam: Any, name: str, queue_arn: str, *, enabled: bool = True) -> Iterator[str]:
    """A second function with the same code and configuration consuming the same queue (as Lambda scales out its
    pollers on AWS), removed on exit. Yields the peer's name. With `enabled=False` its mapping is created disabled
    (enable it with update_event_source_mapping when it should start polling)."""
    cfg = lam.get_function_configuration(FunctionName=name)
    mappings = lam.list_event_source_mappings(FunctionName=name).get("EventSourceMappings", [])
    mapping: dict[str, Any] = next((m for m in mappings if m.get("EventSourceArn") == queue_arn), {})
    peer = f"{name}-peer"[:64]
    try:
        lam.delete_function(FunctionName=peer)  # a leftover of an interrupted run
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
    lam.create_function(
        FunctionName=peer,
        Runtime=cfg["Runtime"],
        Role=cfg["Role"],
        Handler=cfg["Handler"],
        Code={"ZipFile": handlers_zip()},
        Timeout=cfg["Timeout"],
        MemorySize=cfg["MemorySize"],
        Environment={"Variables": dict((cfg.get("Environment") or {}).get("Variables") or {})},
        Architectures=cfg.get("Architectures") or ["x86_64"],
    )
    uuid = ""
    try:
        wait_until(
            lambda: lam.get_function_configuration(FunctionName=peer).get("State") == "Active",
            UPDATE_TIMEOUT_S,
            interval=0.2,
            what=f"peer function {peer} to be Active",
        )
        created = lam.create_event_source_mapping(
            FunctionName=peer,
            EventSourceArn=queue_arn,
            BatchSize=int(mapping.get("BatchSize", 10)),
            MaximumBatchingWindowInSeconds=int(mapping.get("MaximumBatchingWindowInSeconds", 0)),
            FunctionResponseTypes=list(mapping.get("FunctionResponseTypes", ["ReportBatchItemFailures"])),
            Enabled=enabled,
        )
        uuid = created["UUID"]
        state = "Enabled" if enabled else "Disabled"
        wait_until(
            lambda: lam.get_event_source_mapping(UUID=uuid).get("State") == state,
            UPDATE_TIMEOUT_S,
            interval=0.2,
            what=f"peer mapping {uuid} to be {state}",
        )
        yield peer
    finally:
        if uuid:
            try:
                lam.delete_event_source_mapping(UUID=uuid)
            except ClientError:
                pass
        try:
            lam.delete_function(FunctionName=peer)
        except ClientError:
            pass


def queue_arn(sqs: Any, url: str) -> str:
    return queue_attributes(sqs, url)["QueueArn"]


# ---- presence of the stack (detects state lost by an emulator restart) ---------------------------------------
@dataclass(frozen=True)
class StackPresence:
    input_bucket: bool
    queue: bool
    dlq: bool
    function: bool

    @property
    def intact(self) -> bool:
        return self.input_bucket and self.queue and self.dlq and self.function

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(name for name in ("input_bucket", "queue", "dlq", "function") if not getattr(self, name))


def stack_presence(s3: Any, sqs: Any, lam: Any, target: PipelineTarget) -> StackPresence:
    def exists(call: Any, *missing_codes: str) -> bool:
        try:
            call()
            return True
        except ClientError as exc:
            if _code(exc) in missing_codes:
                return False
            raise

    nx_queue = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
    return StackPresence(
        input_bucket=exists(lambda: s3.head_bucket(Bucket=target.input_bucket), "404", "NoSuchBucket", "NotFound"),
        queue=exists(
            lambda: sqs.get_queue_attributes(QueueUrl=target.queue_url, AttributeNames=["QueueArn"]), *nx_queue
        ),
        dlq=exists(lambda: sqs.get_queue_attributes(QueueUrl=target.dlq_url, AttributeNames=["QueueArn"]), *nx_queue),
        function=exists(
            lambda: lam.get_function_configuration(FunctionName=target.function_name), "ResourceNotFoundException"
        )
        if target.function_name
        else False,
    )


# ---- function logs: evidence of timeouts -------------------------------------------------------------------------
TIMED_OUT = "Task timed out"  # the line the executor writes with a Sandbox.Timedout (as Lambda does)


def count_log_lines(logs: Any, log_group: str, since_ms: int, needle: str = TIMED_OUT, max_pages: int = 50) -> int:
    """Log events of `log_group` since `since_ms` (epoch ms) that contain `needle` (0 when the group is missing)."""
    found = 0
    kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": int(since_ms)}
    for _ in range(max_pages):
        try:
            page = logs.filter_log_events(**kwargs)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return found
            raise
        found += sum(1 for e in page.get("events", []) if needle in (e.get("message") or ""))
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            break
        kwargs["nextToken"] = token
    return found


# ---- uploads ----------------------------------------------------------------------------------------------------
def upload(s3: Any, bucket: str, key: str, body: bytes, content_type: str, run_id: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata={contract.META_RUN_ID: run_id})


# ---- DLQ: drain a run's messages, redrive ------------------------------------------------------------------------
@dataclass(frozen=True)
class DlqMessage:
    message_id: str
    receipt_handle: str
    body: str
    source_key: str | None
    run_id: str | None
    code: str
    kind: str  # handler | redrive | unknown


def receive_dlq(
    sqs: Any, target: PipelineTarget, *, visibility_s: int = 60, deadline_s: float = 60.0, max_messages: int = 10_000
) -> list[DlqMessage]:
    """Receive (and hide for `visibility_s`) every visible DLQ message; bounded by a deadline and a count."""
    out: list[DlqMessage] = []
    empty = [0]

    def drained() -> bool:
        resp = sqs.receive_message(
            QueueUrl=target.dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=visibility_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        batch = resp.get("Messages", [])
        empty[0] = 0 if batch else empty[0] + 1
        for m in batch:
            parsed = parse_dlq_message(
                m["MessageId"], m.get("Body", ""), m.get("Attributes"), m.get("MessageAttributes"), target.input_prefix
            )
            first = parsed[0] if parsed else None
            out.append(
                DlqMessage(
                    m["MessageId"],
                    m["ReceiptHandle"],
                    m.get("Body", ""),
                    first.source_key if first else None,
                    first.run_id if first else None,
                    first.code if first else "",
                    first.kind if first else "unknown",
                )
            )
        return empty[0] >= 2 or len(out) >= max_messages

    try:
        wait_until(drained, deadline_s, interval=0.05, max_interval=0.2, what="the DLQ to be read")
    except WaitTimeout:
        pass  # what was read so far is returned; the caller reports the count
    return out


def release(sqs: Any, url: str, messages: list[DlqMessage]) -> None:
    """Make received messages visible again at once."""
    for i in range(0, len(messages), 10):
        entries = [
            {"Id": str(n), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
            for n, m in enumerate(messages[i : i + 10])
        ]
        if entries:
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def delete(sqs: Any, url: str, messages: list[DlqMessage]) -> int:
    deleted = 0
    for i in range(0, len(messages), 10):
        entries = [{"Id": str(n), "ReceiptHandle": m.receipt_handle} for n, m in enumerate(messages[i : i + 10])]
        if entries:
            resp = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            deleted += len(resp.get("Successful", []))
    return deleted


def original_body(message: DlqMessage, input_bucket: str) -> str:
    """What to send back to the main queue: the handler's 'original' record body, the raw redriven S3 event, or
    (when neither is there) a minimal S3 event rebuilt from the source key."""
    if message.kind == "handler":
        try:
            doc = json.loads(message.body)
        except ValueError:
            doc = {}
        original = doc.get(contract.DLQ_ORIGINAL) if isinstance(doc, dict) else None
        if isinstance(original, str) and original:
            return original
        if isinstance(original, dict) and original:
            return json.dumps(original)
        source: dict[str, Any] = (
            doc[contract.DLQ_SOURCE] if isinstance(doc, dict) and isinstance(doc.get(contract.DLQ_SOURCE), dict) else {}
        )
        bucket = source.get("bucket") or input_bucket
        key = source.get("key") or message.source_key
        if not key:
            raise ChaosError(
                "REDRIVE_UNPARSEABLE", f"Expected a source key in DLQ message {message.message_id} but received none"
            )
        return json.dumps(
            {
                "Records": [
                    {
                        "eventVersion": "2.1",
                        "eventSource": "aws:s3",
                        "awsRegion": "us-east-1",
                        "eventName": "ObjectCreated:Put",
                        "s3": {
                            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                            "object": {"key": quote(key)},
                        },
                    }
                ]
            }
        )
    return message.body


@dataclass(frozen=True)
class RedriveResult:
    """What a redrive did: messages moved back to the main queue (with dry_run: would move), by error code;
    skipped ones stay in the DLQ."""

    moved: int
    by_code: Mapping[str, int]
    skipped: int
    failed: tuple[str, ...] = ()
    moved_keys: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "moved": self.moved,
            "by_code": dict(self.by_code),
            "skipped": self.skipped,
            "failed": list(self.failed),
        }


def redrive(
    sqs: Any,
    target: PipelineTarget,
    *,
    run_id: str | None = None,
    codes: frozenset[str] = frozenset(),
    dry_run: bool = False,
    deadline_s: float = 60.0,
    max_messages: int = 10_000,
) -> RedriveResult:
    """Move DLQ messages (optionally only one run's, only some error codes) back to the main queue.

    Send first, then delete: a crash in between leaves a duplicate (harmless, the handler is idempotent), never
    a loss. Messages that do not match the filters are made visible again.
    """
    messages = receive_dlq(
        sqs, target, visibility_s=max(30, int(deadline_s)), deadline_s=deadline_s, max_messages=max_messages
    )
    chosen = [m for m in messages if (run_id is None or m.run_id == run_id) and (not codes or m.code in codes)]
    others = [m for m in messages if m not in chosen]
    by_code: dict[str, int] = {}
    moved: list[DlqMessage] = []
    failed: list[str] = []
    try:
        for m in chosen:
            if dry_run:
                moved.append(m)
                by_code[m.code] = by_code.get(m.code, 0) + 1
                continue
            try:
                body = original_body(m, target.input_bucket)
            except ChaosError:
                failed.append(m.message_id)
                continue
            sqs.send_message(
                QueueUrl=target.queue_url,
                MessageBody=body,
                MessageAttributes={
                    "redriven-from": {"DataType": "String", "StringValue": m.message_id},
                    "redriven-code": {"DataType": "String", "StringValue": m.code or "-"},
                },
            )
            moved.append(m)
            by_code[m.code] = by_code.get(m.code, 0) + 1
        if not dry_run:
            delete(sqs, target.dlq_url, moved)
    finally:
        release(sqs, target.dlq_url, others + [m for m in chosen if dry_run or m not in moved])
    return RedriveResult(
        len(moved),
        dict(sorted(by_code.items())),
        len(messages) - len(moved),
        tuple(failed),
        tuple(m.source_key or "" for m in moved),
    )


def require(target: PipelineTarget) -> PipelineTarget:
    if not target.function_name:
        raise PipelineUnavailable(
            "PIPELINE_UNAVAILABLE", "Expected deploy outputs with a function_name but received none"
        )
    return target


@contextmanager
def queue_max_receives(sqs: Any, url: str, count: int) -> Iterator[int]:
    """Set maxReceiveCount of the queue's redrive policy for the duration of the block."""
    raw = queue_attributes(sqs, url).get("RedrivePolicy")
    if not raw:
        raise ChaosError("NO_REDRIVE_POLICY", f"Expected queue {url} to have a RedrivePolicy but received none")
    policy = json.loads(raw)
    original = int(policy.get("maxReceiveCount", 0))
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"RedrivePolicy": json.dumps({**policy, "maxReceiveCount": count})}
    )
    try:
        yield count
    finally:
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"RedrivePolicy": json.dumps({**policy, "maxReceiveCount": original})}
        )


@contextmanager
def queue_delay(sqs: Any, url: str, seconds: int) -> Iterator[int]:
    """Delay delivery of messages sent during the block: they become visible together, so pollers take full
    batches (a burst)."""
    original = int(queue_attributes(sqs, url).get("DelaySeconds", "0"))
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": str(int(seconds))})
    try:
        yield int(seconds)
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": str(original)})
