"""Observing a run through a probe: `collect` accounts for every upload now, `settle` waits (with a deadline) for the
pipeline to finish; both take deploy outputs or a PipelineTarget and default to the boto3 probe.

Usage (also by the chaos harness):

    acc = collect(run_id, outputs, expected_keys)          # -> Accounting (reads S3 metadata, the DLQ, the logs)
    acc.invariant_holds, acc.counts, acc.lost, acc.unexplained_duplicates
    settle(run_id, outputs, expected_keys, timeout=...)    # wait until nothing is in flight (False on timeout)

The observation API is importable from here in one line: the model (harness.load.model), the wire parsers
(harness.load.wire), `account` (harness.load.accounting) and the `Sampler` (harness.load.sampler) are re-exported.
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from common.waiting import WaitTimeout, wait_until
from harness.load.accounting import account, attribute_flat
from harness.load.model import (
    REDRIVEN,
    UNPARSEABLE,
    Accounting,
    DlqObservation,
    Duplicate,
    LogObservation,
    Outcome,
    PipelineProbe,
    PipelineTarget,
    QueueDepths,
    Sample,
    TargetLike,
    ThumbnailObservation,
    UploadOutcome,
)
from harness.load.sampler import Sampler, environment_counter
from harness.load.storage import AwsProbe
from harness.load.wire import parse_dlq_message, parse_log_line, parse_timestamp_ms, run_id_of_key

__all__ = [
    "REDRIVEN",
    "UNPARSEABLE",
    "Accounting",
    "DlqObservation",
    "Duplicate",
    "LogObservation",
    "Outcome",
    "PipelineProbe",
    "PipelineTarget",
    "QueueDepths",
    "Sample",
    "Sampler",
    "TargetLike",
    "ThumbnailObservation",
    "UploadOutcome",
    "account",
    "collect",
    "environment_counter",
    "make_probe",
    "parse_dlq_message",
    "parse_log_line",
    "parse_timestamp_ms",
    "run_id_of_key",
    "settle",
]


def make_probe(outputs: TargetLike, settings: Any = None) -> PipelineProbe:
    """The boto3-backed probe for a deployed pipeline (settings: HarnessSettings; default from the environment)."""
    return AwsProbe.for_target(PipelineTarget.from_outputs(outputs), settings)


def collect(
    run_id: str,
    outputs: TargetLike,
    expected_keys: Iterable[str],
    *,
    probe: PipelineProbe | None = None,
    since_ms: float | None = None,
    read_logs: bool = True,
) -> Accounting:
    """Observe the pipeline now and account for every expected upload of `run_id` (does not consume the DLQ).

    `since_ms` bounds the log scan (default: 1 hour ago). Log reading is best effort: when it fails the
    accounting is still complete (outcomes come from S3 metadata and the DLQ) and a note says why.
    """
    probe = probe or make_probe(outputs)
    # read first: a queue empty now stays empty for this run's uploads, so what has no outcome yet never will
    depths = probe.depths()
    queue_drained = depths.visible + depths.in_flight + depths.delayed == 0
    thumbs = probe.thumbnails(run_id)
    dlq = probe.dlq_messages()
    logs: list[LogObservation] | None = None
    note = None
    if read_logs:
        try:
            logs = probe.log_records(since_ms if since_ms is not None else time.time() * 1000 - 3_600_000, run_id)
        except Exception as exc:  # noqa: BLE001 - logs only add timings and duplicate evidence
            note = f"logs not read: {type(exc).__name__}: {exc}"[:300]
    acc = account(run_id, expected_keys, probe.target, thumbs, dlq, logs, queue_drained=queue_drained)
    if note:
        acc = dataclasses.replace(acc, notes=acc.notes + (note,))
    return acc


def settle(
    run_id: str,
    outputs: TargetLike,
    expected_keys: Sequence[str],
    *,
    timeout: float,
    probe: PipelineProbe | None = None,
    dlq_baseline: int | None = None,
    quiet_s: float = 5.0,
    interval: float = 0.5,
) -> bool:
    """Wait until the queue is empty and every expected upload is complete or dead-lettered (DLQ depth above
    `dlq_baseline`, the depth before the run), or the queue stayed empty for `quiet_s`.

    Returns True when settled, False when `timeout` passed first (the caller still collects: leftovers are MISSING).
    Cheap per poll: lists thumbnail keys (no metadata) and reads queue depths. A drained queue is decided at once
    (after `quiet_s`, not the whole timeout): what then has neither output nor DLQ entry was deleted without output.
    """
    probe = probe or make_probe(outputs)
    target = probe.target
    wanted, expected = set(target.sizes), set(expected_keys)
    quiet_since: list[float | None] = [None]

    def done() -> bool:
        depths = probe.depths()
        busy = depths.visible + depths.in_flight + depths.delayed
        if busy == 0:
            by_key: dict[str, set[str]] = defaultdict(set)
            thumbs = probe.thumbnails(run_id, with_metadata=False)
            if target.flat:  # thumbnails/<size>/<file name>: attributed by file name
                thumbs = attribute_flat(run_id, list(expected_keys), thumbs)[0]
            for t in thumbs:
                by_key[t.source_key].add(t.size)
            complete = sum(1 for k in expected if wanted.issubset(by_key.get(k, ())))
            dead = max(0, depths.dlq_visible - dlq_baseline) if dlq_baseline is not None else 0
            if complete + dead >= len(expected):
                return True
            now = time.monotonic()
            since = quiet_since[0] if quiet_since[0] is not None else now
            quiet_since[0] = since
            return now - since >= quiet_s
        quiet_since[0] = None
        return False

    try:
        wait_until(done, timeout, interval=interval, max_interval=max(interval, 2.0), what=f"run {run_id} to settle")
    except WaitTimeout:
        return False
    return True
