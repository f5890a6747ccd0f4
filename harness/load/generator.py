"""Open-loop upload generator: each upload is sent at its due time, whatever the pipeline does; bounded count, time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from harness.load.corpus import CorpusItem
from thumbnailer.contract import META_RUN_ID


class Uploader(Protocol):
    """Port: put one object (the S3 adapter lives in harness.load.storage); returns the ETag."""

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], content_type: str) -> str: ...


@dataclass(frozen=True)
class UploadRecord:
    """What happened to one planned upload (times are epoch milliseconds)."""

    seq: int
    key: str
    source: str
    bytes: int
    due_ms: float
    started_ms: float | None = None
    acked_ms: float | None = None
    etag: str | None = None
    error_code: str | None = None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.acked_ms is not None and self.error_code is None

    @property
    def lag_ms(self) -> float | None:
        """How late the upload started against its due time (open-loop fidelity)."""
        return None if self.started_ms is None else self.started_ms - self.due_ms


@dataclass(frozen=True)
class Progress:
    planned: int
    started: int
    accepted: int
    failed: int
    elapsed_s: float


@dataclass(frozen=True)
class GenerationResult:
    run_id: str
    records: tuple[UploadRecord, ...]
    started_ms: float
    finished_ms: float
    stopped_early: str | None  # None, "time bound" or "cancelled"

    @property
    def accepted(self) -> list[UploadRecord]:
        return [r for r in self.records if r.accepted]

    @property
    def expected_keys(self) -> list[str]:
        return [r.key for r in self.accepted]


def upload_key(input_prefix: str, run_id: str, seq: int, item: CorpusItem) -> str:
    """uploads/<run_id>/<seq>-<file name>: the run id in every key lets observation find a run's objects."""
    return f"{input_prefix}{run_id}/{seq:06d}-{item.name.rsplit('/', 1)[-1]}"


def _error_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        aws = response.get("Error", {}).get("Code")
        if aws:
            return f"S3_{aws}"
    return f"UPLOAD_{type(exc).__name__}"


def generate(
    run_id: str,
    offsets: Sequence[float],
    items: Sequence[CorpusItem],
    uploader: Uploader,
    *,
    input_prefix: str = "uploads/",
    concurrency: int = 16,
    max_duration_s: float = 600.0,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
) -> GenerationResult:
    """Send upload i at start + offsets[i] (open loop) with up to `concurrency` PUTs in flight.

    Nothing is dispatched after `max_duration_s`; uploads not dispatched by then are recorded with
    error_code LOAD_NOT_SENT. Every upload carries metadata run-id and seq. Never raises for a failed PUT:
    the failure is recorded on its UploadRecord.
    """
    if len(items) < len(offsets):
        raise ValueError(f"Expected at least {len(offsets)} corpus items for the schedule but received {len(items)}")
    cancel = cancel or threading.Event()
    start = clock()
    records: list[UploadRecord | None] = [None] * len(offsets)
    lock = threading.Lock()
    counts = {"started": 0, "accepted": 0, "failed": 0}

    def report() -> None:
        if on_progress is not None:
            with lock:
                snapshot = Progress(
                    len(offsets), counts["started"], counts["accepted"], counts["failed"], clock() - start
                )
            on_progress(snapshot)

    def send(seq: int, due: float) -> None:
        item = items[seq]
        key = upload_key(input_prefix, run_id, seq, item)
        begun = clock()
        with lock:
            counts["started"] += 1
        metadata = {META_RUN_ID: run_id, "seq": str(seq)}  # the handler copies run-id onto the thumbnails
        try:
            etag = uploader.put(key, item.body, metadata, item.content_type)
        except Exception as exc:  # noqa: BLE001 - a failed upload is data, not a crash
            rec = UploadRecord(
                seq, key, item.name, item.size, due * 1000, begun * 1000, None, None, _error_code(exc), str(exc)[:300]
            )
            with lock:
                counts["failed"] += 1
        else:
            rec = UploadRecord(seq, key, item.name, item.size, due * 1000, begun * 1000, clock() * 1000, etag)
            with lock:
                counts["accepted"] += 1
        records[seq] = rec
        report()

    stopped: str | None = None
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="load-put") as pool:
        for seq, offset in enumerate(offsets):
            if offset > max_duration_s:
                stopped = "time bound"
                break
            due = start + offset
            # Event.wait is the scheduler's clock here (a due time, not polling); cancel wakes it at once.
            if cancel.wait(max(0.0, due - clock())):
                stopped = "cancelled"
                break
            if clock() - start > max_duration_s:
                stopped = "time bound"
                break
            pool.submit(send, seq, due)
    for seq, rec in enumerate(records):
        if rec is None:
            item = items[seq]
            records[seq] = UploadRecord(
                seq,
                upload_key(input_prefix, run_id, seq, item),
                item.name,
                item.size,
                (start + offsets[seq]) * 1000,
                error_code="LOAD_NOT_SENT",
                error=stopped or "not dispatched",
            )
    report()
    return GenerationResult(run_id, tuple(r for r in records if r is not None), start * 1000, clock() * 1000, stopped)
