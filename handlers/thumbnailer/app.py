"""Lambda entry point: SQS batch -> every record processed -> partial batch response; permanent failures to the DLQ."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypedDict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import contract as c
from .config import Settings, lambda_memory_mb
from .errors import RetryableError, ThumbnailError
from .events import ObjectRef, parse_body
from .pipeline import (
    Attempt,
    DeadLetterSink,
    ObjectOutcome,
    ObjectStore,
    OverlappedBatch,
    OverlapStats,
    SourceObject,
    describe,
    fetch,
    make_thumbnails,
    should_skip,
)
from .resizers import get_resizer
from .resizers.base import Resizer

SERVICE = "thumbnailer"
METRICS_NAMESPACE = "ThumbnailPipeline"
METRIC_INVOCATION_CPU_MS = "InvocationCpuMs"  # process CPU per invocation (EMF; the pipeline bench reads it)


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class PartialBatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]


class Thumbnailer:
    """The handler's logic with its ports injected (S3 store, DLQ sink, resizer); one instance per execution env."""

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        dlq: DeadLetterSink | None,
        resizer: Resizer,
        *,
        logger: Logger | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        memory_mb: int | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.dlq = dlq
        self.resizer = resizer
        self.spec = settings.resize_spec()
        self.logger = logger or Logger(service=SERVICE)
        self.metrics = metrics or Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
        self.metrics.set_default_dimensions(backend=resizer.name)
        self.clock = clock
        self.memory_mb = memory_mb if memory_mb is not None else lambda_memory_mb()
        self._invocation_start_ms = 0
        self._request_id = ""
        self._batch: OverlappedBatch | None = None  # THUMB_OVERLAP=on, while a batch of 2+ objects is handled
        self._slots: dict[tuple[str, int], deque[int]] = {}  # (message id, object index) -> index in the batch
        self.last_overlap: OverlapStats | None = None  # OverlapStats of the last overlapped batch (tests, debug)

    # ---- invocation --------------------------------------------------------------------------------------------
    def handle(self, event: dict[str, Any], context: Any = None) -> PartialBatchResponse:
        self._invocation_start_ms = int(self.clock() * 1000)
        cpu0 = time.process_time()
        self._request_id = str(getattr(context, "aws_request_id", "") or "")
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        try:
            self._batch = self._overlapped_batch(event) if self.settings.overlap == "on" else None
            if self._batch is not None:
                self._batch.__enter__()
            response = process_partial_response(
                event=event, record_handler=self.process_record, processor=processor, context=context
            )
        finally:
            if self._batch is not None:
                self._batch.close()
                self.last_overlap = self._batch.stats
                self.logger.debug("overlapped batch", extra={"overlap": vars_of(self._batch.stats)})
            self._batch, self._slots = None, {}
            # the process's CPU over the invocation (every thread): with Billed Duration it says how CPU-bound it was
            cpu_ms = (time.process_time() - cpu0) * 1000.0
            self.metrics.add_metric(name=METRIC_INVOCATION_CPU_MS, unit=MetricUnit.Milliseconds, value=cpu_ms)
            self.metrics.flush_metrics()
        return {
            "batchItemFailures": [
                {"itemIdentifier": str(f["itemIdentifier"])} for f in response.get("batchItemFailures", [])
            ]
        }

    # ---- one SQS record (raises only for what must be retried) -------------------------------------------------
    def process_record(self, record: SQSRecord) -> None:
        started = time.perf_counter()
        receive_count = _receive_count(record)
        line: dict[str, Any] = {
            c.LOG_MESSAGE_ID: record.message_id,
            c.LOG_RECEIVE_COUNT: receive_count,
            c.LOG_BACKEND: self.resizer.name,
            c.LOG_SIZES: [s.name for s in self.spec.sizes],
            c.LOG_REQUEST_ID: self._request_id,
            # SQS timestamps (epoch ms) let an observer split queue wait from processing time
            c.LOG_SENT_TIMESTAMP: _int_attr(record, "SentTimestamp"),
            c.LOG_FIRST_RECEIVE_MS: _int_attr(record, "ApproximateFirstReceiveTimestamp"),
        }
        self.metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=1)
        retry: BaseException | None = None
        try:
            parsed = parse_body(record.body)
        except ThumbnailError as exc:  # InvalidEvent: permanent, nothing to fetch
            self._fail(None, exc, record, receive_count, "", line)
            self._log(line, started)
            return
        if parsed.test_event or not parsed.objects:
            line.update(
                {
                    c.LOG_OUTCOME: c.OUTCOME_SKIPPED,
                    "reason": "s3:TestEvent" if parsed.test_event else "no created objects",
                    "ignored": parsed.ignored,
                }
            )
            self.metrics.add_metric(name="RecordsSkipped", unit=MetricUnit.Count, value=1)
            self._log(line, started)
            return
        outcomes: list[dict[str, Any]] = []
        for index, ref in enumerate(parsed.objects):
            item: dict[str, Any] = {c.LOG_BUCKET: ref.bucket, c.LOG_KEY: ref.key, c.LOG_RUN_ID: ref.run_id}
            outcomes.append(item)
            reason = should_skip(ref, self.settings)
            if reason:
                item.update({c.LOG_OUTCOME: c.OUTCOME_SKIPPED, "reason": reason})
                continue
            t_obj = time.perf_counter()
            src: SourceObject | None = None
            slot = self._take_slot(record.message_id, index)
            attempt: Attempt | None = None
            try:
                if slot is not None:  # overlapped: fetched, resized and uploaded in the background, same steps
                    assert self._batch is not None
                    attempt = self._batch.result(slot)
                    src, t_obj = attempt.src, attempt.started
                    if src is not None:
                        item[c.LOG_RUN_ID] = src.run_id or ref.run_id
                    if attempt.error is not None:
                        raise attempt.error
                    assert attempt.outcome is not None and src is not None
                    done: ObjectOutcome = attempt.outcome
                else:
                    src = fetch(ref, self.store, self.settings)
                    item[c.LOG_RUN_ID] = src.run_id or ref.run_id
                    done = make_thumbnails(
                        src,
                        self.resizer,
                        self.spec,
                        self.store,
                        self.settings,
                        handler_start_ms=self._invocation_start_ms,
                        started=t_obj,
                    )
            except Exception as exc:  # noqa: BLE001 - classified below; unknown errors are retried, never dropped
                run_id = (src.run_id if src else "") or ref.run_id
                if self._fail(ref, exc, record, receive_count, run_id, item):
                    retry = exc
                ended = attempt.finished if attempt is not None and attempt.finished else time.perf_counter()
                item["ms"] = round((ended - t_obj) * 1000, 1)
                continue
            item.update(
                {
                    c.LOG_OUTCOME: c.OUTCOME_OK,
                    c.LOG_RESIZE_MS: round(done.result.timings.total_ms, 1),
                    c.LOG_RESIZE_CPU_MS: round(done.result.timings.cpu_ms, 1),
                    c.LOG_S3_CPU_MS: round(src.get_cpu_ms + done.put_cpu_ms, 2),
                },
                ms=round(done.total_ms, 1),
                outputs={t.size: f"{t.width}x{t.height}" for t in done.thumbnails},
                source_bytes=len(src.data),
                source_format=done.result.source.format,
            )
            self.metrics.add_metric(name="ObjectsProcessed", unit=MetricUnit.Count, value=1)
            self.metrics.add_metric(name="ThumbnailsWritten", unit=MetricUnit.Count, value=len(done.thumbnails))
            self.metrics.add_metric(name="ResizeMs", unit=MetricUnit.Milliseconds, value=done.result.timings.total_ms)
            self.metrics.add_metric(name="ObjectMs", unit=MetricUnit.Milliseconds, value=done.total_ms)
        if len(outcomes) == 1:
            line.update(outcomes[0])
        else:
            line[c.LOG_OBJECTS] = outcomes
            line[c.LOG_OUTCOME] = (
                c.OUTCOME_RETRY
                if retry
                else (c.OUTCOME_DLQ if any(o.get(c.LOG_OUTCOME) == c.OUTCOME_DLQ for o in outcomes) else c.OUTCOME_OK)
            )
        self._log(line, started)
        if retry is not None:
            raise retry

    # ---- overlap (THUMB_OVERLAP=on) ----------------------------------------------------------------------------
    def _overlapped_batch(self, event: dict[str, Any]) -> OverlappedBatch | None:
        """Every object process_record will fetch, in its order, as one OverlappedBatch (None below two objects).

        The bodies are parsed here and again in process_record (parsing is pure, so both agree); a record whose body
        does not parse, a test event and skipped keys get no slot and take the sequential path.
        """
        refs: list[ObjectRef] = []
        slots: dict[tuple[str, int], deque[int]] = {}
        records = event.get("Records") if isinstance(event, dict) else None
        for raw in records if isinstance(records, list) else []:
            if not isinstance(raw, dict):
                continue
            try:
                parsed = parse_body(raw.get("body", ""))
            except ThumbnailError:
                continue
            if parsed.test_event:
                continue
            for index, ref in enumerate(parsed.objects):
                if should_skip(ref, self.settings):
                    continue
                slots.setdefault((str(raw.get("messageId", "")), index), deque()).append(len(refs))
                refs.append(ref)
        if len(refs) < 2:
            return None
        self._slots = slots
        return OverlappedBatch(
            refs,
            self.store,
            self.resizer,
            self.spec,
            self.settings,
            handler_start_ms=self._invocation_start_ms,
            memory_mb=self.memory_mb,
        )

    def _take_slot(self, message_id: str, index: int) -> int | None:
        queue = self._slots.get((message_id, index)) if self._batch is not None else None
        return queue.popleft() if queue else None

    # ---- failures ----------------------------------------------------------------------------------------------
    def _fail(
        self,
        ref: ObjectRef | None,
        exc: BaseException,
        record: SQSRecord,
        receive_count: int,
        run_id: str,
        item: dict[str, Any],
    ) -> bool:
        """Dead-letter a permanent failure (or any failure on the last allowed receive); True = retry the record."""
        code, message = describe(exc)
        permanent = isinstance(exc, ThumbnailError) and not exc.retryable
        last = receive_count >= self.settings.max_receive_count
        item.update({c.LOG_CODE: code, c.LOG_ERROR: message})
        if not permanent and not last:
            item[c.LOG_OUTCOME] = c.OUTCOME_RETRY
            self.metrics.add_metric(name="RetryableFailures", unit=MetricUnit.Count, value=1)
            return True
        if self.dlq is None:
            item.update(
                {c.LOG_OUTCOME: c.OUTCOME_RETRY, "dlq": "not configured (THUMB_DLQ_URL empty): left to SQS redrive"}
            )
            self.metrics.add_metric(name="RetryableFailures", unit=MetricUnit.Count, value=1)
            return True
        if not permanent:
            message = f"gave up after {receive_count} receives: {message}"
        body = c.dead_letter_body(
            source=ref.to_dict() if ref else None,
            code=code,
            message=message,
            retryable=not permanent,
            run_id=run_id,
            backend=self.resizer.name,
            message_id=record.message_id,
            receive_count=receive_count,
            failed_at_ms=int(self.clock() * 1000),
            original=_json_or_text(record.body),
        )
        try:
            self.dlq.send(json.dumps(body, ensure_ascii=False), c.dead_letter_attributes(code, message, run_id))
        except ThumbnailError as send_exc:
            item.update({c.LOG_OUTCOME: c.OUTCOME_RETRY, "dlq_error": str(send_exc)})
            self.metrics.add_metric(name="RetryableFailures", unit=MetricUnit.Count, value=1)
            return True
        item[c.LOG_OUTCOME] = c.OUTCOME_DLQ
        self.metrics.add_metric(
            name="PermanentFailures" if permanent else "GaveUpFailures", unit=MetricUnit.Count, value=1
        )
        self.metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
        return False

    def _log(self, line: dict[str, Any], started: float) -> None:
        line[c.LOG_RECORD_MS] = round((time.perf_counter() - started) * 1000, 1)
        outcome = line.get(c.LOG_OUTCOME, c.OUTCOME_OK)
        level = self.logger.info if outcome in (c.OUTCOME_OK, c.OUTCOME_SKIPPED) else self.logger.warning
        level(c.LOG_MESSAGE, extra=line)


def _receive_count(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count or 1)
    except (KeyError, TypeError, ValueError):
        return 1


def _int_attr(record: SQSRecord, name: str) -> int | None:
    """An SQS system attribute as int, None when absent (test events, hand-made records)."""
    try:
        return int(record.raw_event["attributes"][name])
    except (KeyError, TypeError, ValueError):
        return None


def vars_of(obj: Any) -> dict[str, Any]:
    """A slotted dataclass as a dict (for a log line)."""
    return {name: getattr(obj, name) for name in getattr(obj, "__slots__", ())}


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return body


# ---- Lambda wiring (cold start) ----------------------------------------------------------------------------------
_APP: Thumbnailer | None = None


def build_from_env() -> Thumbnailer:
    """Settings from THUMB_* env, boto3-backed ports, the configured resizer."""
    from .storage import S3Store, SqsDeadLetter  # boto3 only here

    settings = Settings.from_env()
    opts: dict[str, Any] = {}
    if settings.backend == "vips":
        opts["threads"] = settings.effective_vips_threads(lambda_memory_mb())
    else:
        opts["resample"] = settings.resample
    dlq = SqsDeadLetter(settings.dlq_url) if settings.dlq_url else None
    return Thumbnailer(settings, S3Store(), dlq, get_resizer(settings.backend, **opts), memory_mb=lambda_memory_mb())


def lambda_handler(event: dict[str, Any], context: Any) -> PartialBatchResponse:
    global _APP
    if _APP is None:
        _APP = build_from_env()
    return _APP.handle(event, context)


__all__ = ["PartialBatchResponse", "RetryableError", "Thumbnailer", "build_from_env", "lambda_handler"]
