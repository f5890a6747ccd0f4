"""Accounting: join every expected upload of a run to exactly one outcome and explain duplicates (pure).

COMPLETE (every size's thumbnail exists with this run's metadata) > DLQ (no complete thumbnails, at least one DLQ
message: handler-sent permanent failure with its error code, or an SQS redrive of the raw S3 event: code REDRIVEN) >
MISSING (neither: lost, or still queued when the queue was not drained). Thumbnails or DLQ messages that belong to the
run but to no expected upload are `strays`. A key seen more than once (several deliveries in the logs, several DLQ
messages, or complete *and* in the DLQ) is a duplicate, with an explanation when the evidence (message ids, receive
counts, error codes) explains it.

What went wrong is also counted per cause (`Accounting.causes`): a MISSING upload is "deleted without output" when the
queue was drained when observed (the message is gone: no output, no DLQ entry, nothing left to wait for), "still in
the queue" otherwise, or "overwritten" in the flat layout (the seed's `thumbnails/<size>/<file name>`) when another
upload of the same file name holds the output; complete uploads whose thumbnails' Content-Type differs from their
content count as "wrong content type"; DLQ entries count per code, a redriven URL-encoded key and an s3:TestEvent on
their own.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from urllib.parse import unquote_plus

from harness.load.model import (
    MISSING_QUEUED,
    REDRIVEN,
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

LOST_DELETED = "lost: deleted without output"  # no output, no DLQ entry, and the queue holds nothing any more
LOST_UNKNOWN = "lost: no output, no DLQ entry"  # the same, when the queue was not observed
OVERWRITTEN = "lost: output overwritten by a same-named upload"  # flat layout only
WRONG_CONTENT_TYPE = "wrong content type"  # complete, but a thumbnail's Content-Type is not what its bytes are
DLQ_PREFIX = "dlq: "
DLQ_ENCODED_KEY = DLQ_PREFIX + "redriven, URL-encoded key"  # a handler that does not decode keys cannot find them
DLQ_TEST_EVENT = DLQ_PREFIX + "s3:TestEvent"
SECOND_MS = 1000  # S3's LastModified granularity
S3_TEST_EVENT = "S3_TEST_EVENT"  # harness.load.storage's code for an s3:TestEvent in the DLQ
# always reported (0 included), so a side-by-side report shows the zero of the design that does not lose
STANDARD_CAUSES = (LOST_DELETED, OVERWRITTEN, MISSING_QUEUED, WRONG_CONTENT_TYPE, DLQ_TEST_EVENT)
_JPEG_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}


def file_name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def attribute_flat(
    run_id: str, expected: Sequence[str], thumbnails: Iterable[ThumbnailObservation]
) -> tuple[list[ThumbnailObservation], set[str]]:
    """Flat layout (`thumbnails/<size>/<file name>`, no metadata): give each output of an expected file name to the
    last upload of that name (the one written last overwrote the others); the other uploads of a name that has an
    output are `overwritten`. Outputs of file names this run did not upload are left out (earlier runs')."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for key in expected:
        by_name[file_name(key)].append(key)
    out: list[ThumbnailObservation] = []
    named: set[str] = set()
    for t in thumbnails:
        keys = by_name.get(file_name(t.source_key))
        if not keys:
            continue
        named.add(file_name(t.source_key))
        out.append(dataclasses.replace(t, source_key=keys[-1], run_id=t.run_id or run_id))
    overwritten = {k for name in named for k in by_name[name][:-1]}
    return out, overwritten


def _wrong_type(thumbs: Iterable[ThumbnailObservation]) -> bool:
    norm = lambda v: _JPEG_ALIASES.get((v or "").split(";")[0].strip().lower(), (v or "").lower())  # noqa: E731
    return any(t.content_type and t.body_type and norm(t.content_type) != norm(t.body_type) for t in thumbs)


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
    *,
    queue_drained: bool | None = None,
) -> Accounting:
    """Assign every expected upload exactly one outcome (COMPLETE > DLQ > MISSING), explain duplicates and count
    causes. `queue_drained`: whether the queue (visible, in flight, delayed) was empty when observed (None: unknown).
    """
    expected = tuple(dict.fromkeys(expected_keys))
    expected_set = set(expected)
    dlq = list(dlq)
    overwritten: set[str] = set()
    if target.flat:
        thumbnails, overwritten = attribute_flat(run_id, expected, thumbnails)
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
            if d.run_id == run_id and d.code != S3_TEST_EVENT:
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
        elif complete and any(t.last_modified_ms is not None for t in sizes.values()):
            # no logs or metadata of ours (the seed replica): the last thumbnail's LastModified, which S3 keeps to
            # the second; the end of that second is an upper bound (its start could precede the upload itself)
            done = max(t.last_modified_ms for t in sizes.values() if t.last_modified_ms is not None) + SECOND_MS - 1
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
    causes: dict[str, int] = dict.fromkeys(STANDARD_CAUSES, 0)
    for item in outcomes:
        if item.outcome is Outcome.MISSING:
            if item.key in overwritten:
                cause = OVERWRITTEN
            elif queue_drained is None:
                cause = LOST_UNKNOWN
            else:
                cause = LOST_DELETED if queue_drained else MISSING_QUEUED
        elif item.outcome is Outcome.DLQ:
            raws = [d.raw_key for d in dlq_by_key.get(item.key, []) if d.raw_key is not None]
            encoded = item.dlq_code == REDRIVEN and any(unquote_plus(r) != r for r in raws)
            cause = DLQ_ENCODED_KEY if encoded else DLQ_PREFIX + (item.dlq_code or "DLQ_UNPARSEABLE")
        elif _wrong_type(thumbs_by_key.get(item.key, {}).values()):
            cause = WRONG_CONTENT_TYPE
        else:
            continue
        causes[cause] = causes.get(cause, 0) + 1
    causes[DLQ_TEST_EVENT] = sum(1 for d in dlq if d.code == S3_TEST_EVENT)
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
        tuple(causes.items()),
    )
