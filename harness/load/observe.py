"""Observation of a run: every upload's outcome and timings, duplicates explained, queue/DLQ/environment samples.

Public API (also used by the chaos harness):

    target = PipelineTarget.from_outputs(outputs)          # deploy outputs: buckets, queue/DLQ URLs, function
    acc = collect(run_id, outputs, expected_keys)          # -> Accounting (reads S3 metadata, the DLQ, the logs)
    acc.invariant_holds, acc.counts, acc.lost, acc.unexplained_duplicates
    settle(run_id, outputs, expected_keys, timeout=...)    # wait (with a deadline) until nothing is in flight
    with Sampler(probe, interval_s=1.0, environments=environment_counter(settings)) as sampler: ...
    sampler.samples                                        # -> [Sample(t_ms, visible, in_flight, ..., environments)]

Outcomes: each expected upload is in exactly one of COMPLETE (every size's thumbnail exists with this run's
metadata), DLQ (no complete thumbnails, at least one DLQ message: handler-sent permanent failure with its
error code, or an SQS redrive of the raw S3 event: code REDRIVEN) or MISSING (neither: lost). Thumbnails or DLQ
messages that belong to the run but to no expected upload are `strays`. A key seen more than once (several
deliveries in the logs, several DLQ messages, or complete *and* in the DLQ) is a duplicate, with an explanation
when the evidence (message ids, receive counts, error codes) explains it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence
from urllib.parse import unquote_plus

from harness.load.errors import OUTPUTS_INVALID, LoadError
from common.waiting import WaitTimeout, wait_until

REDRIVEN = "REDRIVEN"
UNPARSEABLE = "DLQ_UNPARSEABLE"


class Outcome(StrEnum):
    COMPLETE = "complete"
    DLQ = "dlq"
    MISSING = "missing"


@dataclass(frozen=True)
class PipelineTarget:
    """Where a deployed pipeline lives (from the deploy outputs) and how its keys are laid out."""

    input_bucket: str
    output_bucket: str
    queue_url: str
    dlq_url: str
    function_name: str = ""
    input_prefix: str = "uploads/"
    output_prefix: str = "thumbnails/"
    sizes: tuple[str, ...] = ("large", "small")

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @classmethod
    def from_outputs(cls, outputs: "Mapping[str, Any] | PipelineTarget") -> "PipelineTarget":
        """Accepts deploy outputs (input_bucket, output_bucket, queue_url, dlq_url, function_name, optional
        input_prefix, output_prefix, sizes as 'large:1024x1024,small:256x256' or a list of names)."""
        if isinstance(outputs, PipelineTarget):
            return outputs
        missing = [k for k in ("input_bucket", "queue_url", "dlq_url") if not outputs.get(k)]
        if missing:
            raise LoadError(OUTPUTS_INVALID, f"Expected deploy outputs with {missing} but received keys "
                                             f"{sorted(outputs)}")
        sizes_raw = outputs.get("sizes") or outputs.get("thumb_sizes") or "large,small"
        if isinstance(sizes_raw, str):
            sizes = tuple(part.split(":")[0].strip() for part in sizes_raw.split(",") if part.strip())
        else:
            sizes = tuple(str(s).split(":")[0] for s in sizes_raw)
        return cls(
            input_bucket=str(outputs["input_bucket"]),
            output_bucket=str(outputs.get("output_bucket") or outputs["input_bucket"]),
            queue_url=str(outputs["queue_url"]),
            dlq_url=str(outputs["dlq_url"]),
            function_name=str(outputs.get("function_name", "")),
            input_prefix=str(outputs.get("input_prefix") or "uploads/"),
            output_prefix=str(outputs.get("output_prefix") or "thumbnails/"),
            sizes=sizes,
        )

    def run_prefix(self, run_id: str) -> str:
        return f"{self.input_prefix}{run_id}/"

    def source_of(self, thumbnail_key: str) -> tuple[str, str] | None:
        """thumbnails/<size>/<path>.<ext> -> (size, uploads/<path>); None for keys outside the layout."""
        if not thumbnail_key.startswith(self.output_prefix):
            return None
        size, _, rest = thumbnail_key[len(self.output_prefix):].partition("/")
        if not rest or "." not in rest:
            return None
        return size, self.input_prefix + rest.rsplit(".", 1)[0]


@dataclass(frozen=True)
class ThumbnailObservation:
    """One thumbnail object and the metadata the handler wrote on it."""

    key: str
    size: str
    source_key: str
    run_id: str | None = None
    handler_start_ms: float | None = None
    resize_ms: float | None = None
    total_ms: float | None = None
    backend: str | None = None
    last_modified_ms: float | None = None


@dataclass(frozen=True)
class DlqObservation:
    """One DLQ message attributed to a source key: handler-sent (kind 'handler') or SQS redrive ('redrive')."""

    message_id: str
    source_key: str | None
    run_id: str | None
    code: str
    message: str = ""
    kind: str = "handler"
    sent_ms: float | None = None
    receive_count: int | None = None


@dataclass(frozen=True)
class LogObservation:
    """A handler log line about one record (fields are None when the line does not carry them)."""

    source_key: str
    timestamp_ms: float
    run_id: str | None = None
    message_id: str | None = None
    receive_count: int | None = None
    sent_ms: float | None = None
    first_receive_ms: float | None = None
    error_code: str | None = None
    event: str | None = None  # the handler's outcome for the record: ok | dlq | retry | skipped
    logged_ms: float | None = None  # the line's own timestamp (written after the thumbnails were stored)


@dataclass(frozen=True)
class QueueDepths:
    visible: int
    in_flight: int
    delayed: int
    dlq_visible: int


@dataclass(frozen=True)
class Sample:
    """Pipeline state at one instant (epoch ms); environments is None when it cannot be observed."""

    t_ms: float
    visible: int
    in_flight: int
    delayed: int
    dlq_visible: int
    environments: int | None


@dataclass(frozen=True)
class Duplicate:
    key: str
    deliveries: int
    dlq_messages: int
    explanation: str
    explained: bool


@dataclass(frozen=True)
class UploadOutcome:
    """One expected upload's single outcome and its pipeline timings (epoch ms / ms)."""

    key: str
    outcome: Outcome
    dlq_code: str | None = None
    sizes: tuple[str, ...] = ()
    enqueued_ms: float | None = None
    handler_start_ms: float | None = None
    done_ms: float | None = None
    resize_ms: float | None = None
    total_ms: float | None = None
    backend: str | None = None
    deliveries: int | None = None


@dataclass(frozen=True)
class Accounting:
    """Every expected upload in exactly one outcome, plus what did not fit (strays, duplicates, conflicts)."""

    run_id: str
    expected: tuple[str, ...]
    outcomes: tuple[UploadOutcome, ...]
    duplicates: tuple[Duplicate, ...] = ()
    strays: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()  # complete AND in the DLQ (also listed as duplicates)
    partial: tuple[str, ...] = ()  # some but not all sizes written (outcome DLQ or MISSING)
    logs_read: bool = False
    notes: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for item in self.outcomes:
            out[item.outcome.value] += 1
        return out

    @property
    def dlq_codes(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for item in self.outcomes:
            if item.outcome is Outcome.DLQ:
                out[item.dlq_code or UNPARSEABLE] += 1
        return dict(sorted(out.items()))

    @property
    def lost(self) -> int:
        return self.counts[Outcome.MISSING.value]

    @property
    def unexplained_duplicates(self) -> int:
        return sum(1 for d in self.duplicates if not d.explained)

    @property
    def invariant_holds(self) -> bool:
        """Each expected key has exactly one outcome and the outcome counts add up to the expected uploads."""
        keys = [o.key for o in self.outcomes]
        return (
            len(keys) == len(set(keys)) == len(self.expected)
            and set(keys) == set(self.expected)
            and sum(self.counts.values()) == len(self.expected)
        )

    def by_key(self) -> dict[str, UploadOutcome]:
        return {o.key: o for o in self.outcomes}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "expected": len(self.expected),
            "counts": self.counts,
            "invariant_holds": self.invariant_holds,
            "lost": self.lost,
            "dlq_codes": self.dlq_codes,
            "duplicates": len(self.duplicates),
            "unexplained_duplicates": self.unexplained_duplicates,
            "duplicate_details": [d.__dict__ for d in self.duplicates[:200]],
            "strays": list(self.strays[:200]),
            "stray_count": len(self.strays),
            "conflicts": list(self.conflicts[:200]),
            "partial": list(self.partial[:200]),
            "logs_read": self.logs_read,
            "notes": list(self.notes),
        }


class PipelineProbe(Protocol):
    """Port: read-only views of a deployed pipeline (the boto3 adapter is harness.load.storage.AwsProbe)."""

    target: PipelineTarget

    def thumbnails(self, run_id: str, *, with_metadata: bool = True) -> list[ThumbnailObservation]: ...

    def dlq_messages(self) -> list[DlqObservation]: ...

    def log_records(self, since_ms: float, run_id: str) -> list[LogObservation]: ...

    def depths(self) -> QueueDepths: ...


# ---------------------------------------------------------------------------------------------------------------
# Parsing of wire shapes (pure functions)
# ---------------------------------------------------------------------------------------------------------------

def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_id_of_key(key: str | None, input_prefix: str = "uploads/") -> str | None:
    if not key or not key.startswith(input_prefix):
        return None
    head, sep, _ = key[len(input_prefix):].partition("/")
    return head if sep else None


def parse_dlq_message(
    message_id: str, body: str, attributes: Mapping[str, str] | None = None,
    message_attributes: Mapping[str, Any] | None = None, input_prefix: str = "uploads/",
) -> list[DlqObservation]:
    """A DLQ message -> observations: the handler's JSON document, or a redriven raw S3 event (one per record)."""
    attributes = attributes or {}
    mattrs = {k: (v.get("StringValue") if isinstance(v, Mapping) else v) for k, v in (message_attributes or {}).items()}
    sent = _float(attributes.get("SentTimestamp"))
    receives = _int(attributes.get("ApproximateReceiveCount"))
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        doc = None
    if isinstance(doc, dict) and ("error" in doc or "error_code" in mattrs):
        source: dict[str, Any] = doc["source"] if isinstance(doc.get("source"), dict) else {}
        error: dict[str, Any] = doc["error"] if isinstance(doc.get("error"), dict) else {}
        key = source.get("key")
        return [DlqObservation(
            message_id, key, mattrs.get("run_id") or doc.get("run_id") or run_id_of_key(key, input_prefix),
            str(error.get("code") or mattrs.get("error_code") or UNPARSEABLE),
            str(error.get("message") or mattrs.get("error_message") or ""), "handler", sent, receives,
        )]
    if isinstance(doc, dict) and doc.get("Event") == "s3:TestEvent":
        return []
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        out = []
        for record in doc["Records"]:
            key_raw = (((record or {}).get("s3") or {}).get("object") or {}).get("key")
            key = unquote_plus(key_raw) if isinstance(key_raw, str) else None
            out.append(DlqObservation(message_id, key, run_id_of_key(key, input_prefix), REDRIVEN,
                                      f"redriven after {receives} receives" if receives else "redriven",
                                      "redrive", sent, receives))
        return out
    return [DlqObservation(message_id, None, mattrs.get("run_id"), mattrs.get("error_code") or UNPARSEABLE,
                           str(body)[:200], "unknown", sent, receives)]


_KEY_FIELDS = ("source_key", "key", "object_key", "s3_key")
_LOG_FIELDS = {
    "run_id": ("run_id", "run-id", "runId"),
    "message_id": ("message_id", "messageId", "sqs_message_id"),
    "receive_count": ("receive_count", "approximate_receive_count", "ApproximateReceiveCount"),
    "sent_ms": ("sent_timestamp", "SentTimestamp", "sent_ms", "enqueued_ms"),
    "first_receive_ms": ("first_receive_ms", "ApproximateFirstReceiveTimestamp", "first_receive_timestamp"),
    "error_code": ("error_code", "code"),
    "event": ("event", "action", "outcome", "message", "msg"),
}


_TS = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[,.](\d{1,6}))?\s*(Z|[+-]\d{2}:?\d{2})?$")


def parse_timestamp_ms(text: Any) -> float | None:
    """'2026-11-27 23:30:01,123+0000' (Powertools), ISO 8601 or epoch ms -> epoch ms; None if unreadable."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text) if text > 1e11 else float(text) * 1000
    if not isinstance(text, str):
        return None
    m = _TS.match(text.strip())
    if not m:
        return None
    date, clock, frac, zone = m.groups()
    zone = "+0000" if zone in (None, "Z") else zone.replace(":", "")
    try:
        dt = datetime.strptime(f"{date} {clock} {zone}", "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        return None
    return dt.timestamp() * 1000 + (int(frac.ljust(6, "0")) / 1000 if frac else 0.0)


def _flatten(doc: Mapping[str, Any], into: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    for k, v in doc.items():
        if isinstance(v, Mapping) and depth < 3:
            _flatten(v, into, depth + 1)
            if k == "source" and "key" in v:
                into.setdefault("source_key", v["key"])
        else:
            into.setdefault(k, v)
    return into


def parse_log_line(message: str, timestamp_ms: float) -> LogObservation | None:
    """A structured (JSON) handler log line about a record -> observation; anything else -> None."""
    start = message.find("{")
    if start < 0:
        return None
    try:
        doc = json.loads(message[start:])
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    flat = _flatten(doc, {})
    key = next((flat[f] for f in _KEY_FIELDS if isinstance(flat.get(f), str) and flat.get(f)), None)
    if key is None:
        return None
    found = {name: next((flat[f] for f in fields if flat.get(f) is not None), None) for name, fields in _LOG_FIELDS.items()}
    return LogObservation(
        source_key=unquote_plus(key) if "%" in key or "+" in key else key,
        timestamp_ms=timestamp_ms,
        run_id=found["run_id"],
        message_id=found["message_id"],
        receive_count=_int(found["receive_count"]),
        sent_ms=_float(found["sent_ms"]),
        first_receive_ms=_float(found["first_receive_ms"]),
        error_code=found["error_code"] if isinstance(found["error_code"], str) else None,
        event=str(found["event"]) if found["event"] is not None else None,
        logged_ms=parse_timestamp_ms(flat.get("timestamp")),
    )


def environment_counter(settings: Any) -> Callable[[], int | None]:
    """Counts live execution environments (the executor's runtime records whose process is alive)."""
    from harness import emulator

    def count() -> int | None:
        try:
            return len(emulator.runtime_pids(settings))
        except OSError:
            return None

    return count


# ---------------------------------------------------------------------------------------------------------------
# Accounting (pure)
# ---------------------------------------------------------------------------------------------------------------

def _explain(key: str, logs: Sequence[LogObservation], dlq: Sequence[DlqObservation], complete: bool) -> Duplicate | None:
    deliveries = {(l.message_id, l.receive_count) for l in logs if l.message_id is not None or l.receive_count is not None}
    message_ids = {l.message_id for l in logs if l.message_id} | {d.message_id for d in dlq}
    n_deliveries = len(deliveries)
    conflict = complete and bool(dlq)
    if n_deliveries <= 1 and len(dlq) <= 1 and not conflict:
        return None
    reasons: list[str] = []
    explained = True
    if len(message_ids) > 1:
        reasons.append(f"{len(message_ids)} distinct SQS messages for one upload (duplicate S3 event notification)")
    receive_counts = sorted({l.receive_count for l in logs if l.receive_count})
    if receive_counts and max(receive_counts) > 1:
        errors = sorted({l.error_code for l in logs if l.error_code})
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
        enqueued = min((l.sent_ms for l in lines if l.sent_ms), default=None)
        deliveries = len({(l.message_id, l.receive_count) for l in lines
                          if l.message_id is not None or l.receive_count is not None}) if logs_read else None
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
        ok_logged = [l.logged_ms for l in lines if l.logged_ms is not None and l.event == "ok"]
        if complete and ok_logged:
            done = max(ok_logged)  # the handler logs the record after its thumbnails were stored
        elif complete and last is not None and last.handler_start_ms is not None and last.total_ms is not None:
            done = last.handler_start_ms + last.total_ms  # without logs: fetch + resize, output PUTs not included
        elif outcome is Outcome.DLQ:
            done = msgs[-1].sent_ms
        outcomes.append(UploadOutcome(
            key=key, outcome=outcome, dlq_code=code, sizes=tuple(sorted(sizes)), enqueued_ms=enqueued,
            handler_start_ms=max(starts) if starts else None, done_ms=done,
            resize_ms=last.resize_ms if last else None, total_ms=last.total_ms if last else None,
            backend=last.backend if last else None, deliveries=deliveries,
        ))
        dup = _explain(key, lines, msgs, complete)
        if dup is not None:
            duplicates.append(dup)
    strays = sorted((set(thumbs_by_key) | set(dlq_by_key)) - expected_set)
    return Accounting(run_id, expected, tuple(outcomes), tuple(duplicates), tuple(strays), tuple(conflicts),
                      tuple(partial), logs_read, tuple(notes))


# ---------------------------------------------------------------------------------------------------------------
# Live observation (through a probe)
# ---------------------------------------------------------------------------------------------------------------

def make_probe(outputs: Mapping[str, Any] | PipelineTarget, settings: Any = None) -> PipelineProbe:
    """The boto3-backed probe for a deployed pipeline (settings: HarnessSettings; default from the environment)."""
    from harness.load.storage import AwsProbe  # the only boto3 user of this package

    return AwsProbe.for_target(PipelineTarget.from_outputs(outputs), settings)


def collect(
    run_id: str,
    outputs: Mapping[str, Any] | PipelineTarget,
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
    thumbs = probe.thumbnails(run_id)
    dlq = probe.dlq_messages()
    logs: list[LogObservation] | None = None
    note = None
    if read_logs:
        try:
            logs = probe.log_records(since_ms if since_ms is not None else time.time() * 1000 - 3_600_000, run_id)
        except Exception as exc:  # noqa: BLE001 - logs only add timings and duplicate evidence
            note = f"logs not read: {type(exc).__name__}: {exc}"[:300]
    acc = account(run_id, expected_keys, probe.target, thumbs, dlq, logs)
    if note:
        acc = Accounting(acc.run_id, acc.expected, acc.outcomes, acc.duplicates, acc.strays, acc.conflicts,
                         acc.partial, acc.logs_read, acc.notes + (note,))
    return acc


def settle(
    run_id: str,
    outputs: Mapping[str, Any] | PipelineTarget,
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
    Cheap per poll: lists thumbnail keys (no metadata) and reads queue depths.
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
            for t in probe.thumbnails(run_id, with_metadata=False):
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


@dataclass
class Sampler:
    """Samples queue depth, in-flight, DLQ depth and running environments every `interval_s` on a thread.

    Bounded: stops by itself after `max_duration_s`. Use as a context manager or call start()/stop().
    """

    probe: PipelineProbe
    interval_s: float = 1.0
    environments: Callable[[], int | None] | None = None
    max_duration_s: float = 3600.0
    clock: Callable[[], float] = time.time
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample_once(self) -> Sample | None:
        try:
            d = self.probe.depths()
        except Exception:  # noqa: BLE001 - a failed sample is a gap, counted, not a crash
            self.errors += 1
            return None
        envs = self.environments() if self.environments is not None else None
        s = Sample(self.clock() * 1000, d.visible, d.in_flight, d.delayed, d.dlq_visible, envs)
        self.samples.append(s)
        return s

    def _run(self) -> None:
        end = time.monotonic() + self.max_duration_s
        while time.monotonic() < end:
            self.sample_once()
            if self._stop.wait(self.interval_s):  # the sampling period; stop() wakes it at once
                break

    def start(self) -> "Sampler":
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.interval_s * 2))
        return self.samples

    def __enter__(self) -> "Sampler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
