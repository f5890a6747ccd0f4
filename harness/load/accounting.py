"""Accounting: join every expected upload of a run to exactly one outcome and explain duplicates (pure).

COMPLETE (every size's thumbnail exists with this run's metadata) > DLQ (no complete thumbnails, at least one DLQ
message: handler-sent permanent failure with its error code, or an SQS redrive of the raw S3 event: code REDRIVEN) >
MISSING (neither: lost). Thumbnails or DLQ messages that belong to the run but to no expected upload are `strays`. A
key seen more than once (several deliveries in the logs, several DLQ messages, or complete *and* in the DLQ) is a
duplicate, with an explanation when the evidence (message ids, receive counts, error codes) explains it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from harness.load.model import (
    Accounting,
    DlqObservation,
    Duplicate,
    LogObservation,
    Outcome,
    PipelineTarget,
    ThumbnailObservation,
    UploadOutcome,
)
from thumbnailer import contract


def _explain(
    key: str, logs: Sequence[LogObservation], dlq: Sequence[DlqObservation], complete: bool
) -> Duplicate | None:
    deliveries = {
        (ln.message_id, ln.receive_count) for ln in logs if ln.message_id is not None or ln.receive_count is not None
    }
    message_ids = {ln.message_id for ln in logs if ln.message_id} | {d.message_id for d in dlq}
    n_deliveries = len(deliveries)
    conflict = complete and bool(dlq)
    if n_deliveries <= 1 and len(dlq) <= 1 and not conflict:
        return None
    reasons: list[str] = []
    explained = True
    if len(message_ids) > 1:
        reasons.append(f"{len(message_ids)} distinct SQS messages for one upload (duplicate S3 event notification)")
    receive_counts = sorted({ln.receive_count for ln in logs if ln.receive_count})
    if receive_counts and max(receive_counts) > 1:
        errors = sorted({ln.error_code for ln in logs if ln.error_code})
        why = f" after {', '.join(errors)}" if errors else " (visibility timeout expired or batch item failure)"
        reasons.append(f"redelivered: received {max(receive_counts)} times{why}")
    if conflict:
        kinds = {d.kind for d in dlq}
        if "redrive" in kinds and receive_counts and max(receive_counts) > 1:
            reasons.append("thumbnails written but the message was redriven after maxReceiveCount (not acked in time)")
        elif "handler" in kinds and len(message_ids) > 1:
            reasons.append("one delivery succeeded, another failed permanently")
        else:
            reasons.append("complete and in the DLQ with no delivery evidence")
            explained = False
    if not reasons:
        reasons.append(f"{max(n_deliveries, len(dlq))} deliveries with no message id or receive count to explain them")
        explained = False
    return Duplicate(key, n_deliveries, len(dlq), "; ".join(reasons), explained)


def account(
    run_id: str,
    expected_keys: Iterable[str],
    target: PipelineTarget,
    thumbnails: Iterable[ThumbnailObservation],
    dlq: Iterable[DlqObservation],
    logs: Iterable[LogObservation] | None = None,
) -> Accounting:
    """Assign every expected upload exactly one outcome (COMPLETE > DLQ > MISSING) and explain duplicates."""
    expected = tuple(dict.fromkeys(expected_keys))
    expected_set = set(expected)
    prefix = target.run_prefix(run_id)
    mine = lambda key, rid: (key or "").startswith(prefix) or rid == run_id  # noqa: E731
    thumbs_by_key: dict[str, dict[str, ThumbnailObservation]] = defaultdict(dict)
    for t in thumbnails:
        if mine(t.source_key, t.run_id):
            thumbs_by_key[t.source_key][t.size] = t
    dlq_by_key: dict[str, list[DlqObservation]] = defaultdict(list)
    notes: list[str] = []
    unattributed = 0
    for d in dlq:
        if d.source_key is None:
            if d.run_id == run_id:
                unattributed += 1
            continue
        if mine(d.source_key, d.run_id):
            dlq_by_key[d.source_key].append(d)
    if unattributed:
        notes.append(f"{unattributed} DLQ message(s) of this run name no source key")
    logs_by_key: dict[str, list[LogObservation]] = defaultdict(list)
    logs_read = logs is not None
    for line in logs or ():
        if mine(line.source_key, line.run_id):
            logs_by_key[line.source_key].append(line)

    wanted = set(target.sizes)
    outcomes, duplicates, conflicts, partial = [], [], [], []
    for key in expected:
        sizes = thumbs_by_key.get(key, {})
        complete = wanted.issubset(sizes)
        msgs = dlq_by_key.get(key, [])
        lines = logs_by_key.get(key, [])
        enqueued = min((ln.sent_ms for ln in lines if ln.sent_ms), default=None)
        deliveries = (
            len(
                {
                    (ln.message_id, ln.receive_count)
                    for ln in lines
                    if ln.message_id is not None or ln.receive_count is not None
                }
            )
            if logs_read
            else None
        )
        if complete:
            outcome, code = Outcome.COMPLETE, None
            if msgs:
                conflicts.append(key)
        elif msgs:
            outcome, code = Outcome.DLQ, msgs[-1].code
        else:
            outcome, code = Outcome.MISSING, None
        if sizes and not complete:
            partial.append(key)
        starts = [t.handler_start_ms for t in sizes.values() if t.handler_start_ms is not None]
        last = max(sizes.values(), key=lambda t: (t.handler_start_ms or 0, t.total_ms or 0)) if sizes else None
        done = None
        ok_logged = [ln.logged_ms for ln in lines if ln.logged_ms is not None and ln.event == contract.OUTCOME_OK]
        if complete and ok_logged:
            done = max(ok_logged)  # the handler logs the record after its thumbnails were stored
        elif complete and last is not None and last.handler_start_ms is not None and last.total_ms is not None:
            done = last.handler_start_ms + last.total_ms  # without logs: fetch + resize, output PUTs not included
        elif outcome is Outcome.DLQ:
            done = msgs[-1].sent_ms
        outcomes.append(
            UploadOutcome(
                key=key,
                outcome=outcome,
                dlq_code=code,
                sizes=tuple(sorted(sizes)),
                enqueued_ms=enqueued,
                handler_start_ms=max(starts) if starts else None,
                done_ms=done,
                resize_ms=last.resize_ms if last else None,
                total_ms=last.total_ms if last else None,
                backend=last.backend if last else None,
                deliveries=deliveries,
            )
        )
        dup = _explain(key, lines, msgs, complete)
        if dup is not None:
            duplicates.append(dup)
    strays = sorted((set(thumbs_by_key) | set(dlq_by_key)) - expected_set)
    return Accounting(
        run_id,
        expected,
        tuple(outcomes),
        tuple(duplicates),
        tuple(strays),
        tuple(conflicts),
        tuple(partial),
        logs_read,
        tuple(notes),
    )
