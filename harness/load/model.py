"""The observation model: frozen value types for a deployed pipeline, what was observed of a run, and its accounting.

Pure data (no I/O): `PipelineTarget` (where a pipeline lives and how its keys are laid out, rule from
`thumbnailer.contract`), the observations read from S3 metadata, the DLQ and the handler's log lines, queue samples,
the per-upload `Accounting`, and the `PipelineProbe` port the boto3 adapter (harness.load.storage) implements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from harness.load.errors import OUTPUTS_INVALID, LoadError
from infra.deploy.outputs import StackOutputs
from infra.stack import PROFILES
from thumbnailer import contract

REDRIVEN = "REDRIVEN"  # DLQ code of a raw S3 event that SQS moved to the DLQ after maxReceiveCount
UNPARSEABLE = "DLQ_UNPARSEABLE"  # DLQ code of a message that names no error code
# the cause of a MISSING upload observed while the queue still held messages: not lost (yet), the run did not drain
MISSING_QUEUED = "missing: still in the queue"


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
    input_prefix: str = contract.DEFAULT_INPUT_PREFIX
    output_prefix: str = contract.DEFAULT_OUTPUT_PREFIX
    sizes: tuple[str, ...] = ("large", "small")
    # "mirror": thumbnails/<size>/<path below the input prefix>.<ext> (ours); "flat": thumbnails/<size>/<file name>
    # (the seed replica: same-named files in different folders collide, no metadata on the outputs)
    layout: str = "mirror"

    @property
    def flat(self) -> bool:
        return self.layout == "flat"

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @classmethod
    def from_outputs(cls, outputs: StackOutputs | Mapping[str, Any] | PipelineTarget) -> PipelineTarget:
        """Accepts the typed deploy outputs (StackOutputs), or a mapping with input_bucket, output_bucket, queue_url,
        dlq_url, function_name, optional input_prefix, output_prefix, sizes as 'large:1024x1024,small:256x256' or a
        list of names (tests, hand-made targets)."""
        if isinstance(outputs, PipelineTarget):
            return outputs
        if isinstance(outputs, StackOutputs):
            return cls(
                input_bucket=outputs.input_bucket,
                output_bucket=outputs.output_bucket,
                queue_url=outputs.queue_url,
                dlq_url=outputs.dlq_url,
                function_name=outputs.function_name,
                input_prefix=outputs.input_prefix,
                output_prefix=outputs.output_prefix,
                sizes=outputs.size_names,
                layout=layout_of(outputs),
            )
        missing = [k for k in ("input_bucket", "queue_url", "dlq_url") if not outputs.get(k)]
        if missing:
            raise LoadError(
                OUTPUTS_INVALID, f"Expected deploy outputs with {missing} but received keys {sorted(outputs)}"
            )
        sizes_raw = outputs.get("sizes") or "large,small"
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
            input_prefix=str(outputs.get("input_prefix") or contract.DEFAULT_INPUT_PREFIX),
            output_prefix=str(outputs.get("output_prefix") or contract.DEFAULT_OUTPUT_PREFIX),
            sizes=sizes,
            layout=str(outputs.get("layout") or "mirror"),
        )

    def run_prefix(self, run_id: str) -> str:
        return f"{self.input_prefix}{run_id}/"

    def output_stem(self, size: str, source_key: str) -> str:
        """The thumbnail key of `source_key` at `size` without its extension (of a key prefix: the output prefix).
        Flat layout: `thumbnails/<size>/<file name>` (the seed keeps the source's file name and extension); of a key
        prefix, the size folder."""
        if self.flat:
            return f"{self.output_prefix}{size}/{source_key.rsplit('/', 1)[-1]}"
        return contract.output_stem(source_key, size, input_prefix=self.input_prefix, output_prefix=self.output_prefix)

    def upload_key(self, run_id: str, name: str) -> str:
        """The key of a run's upload named `name`. The flat layout keeps only the file name in the thumbnail's key, so
        there the name carries the run id (`<run_id>-<name>`) and a run's thumbnails stay attributable to it."""
        return f"{self.run_prefix(run_id)}{run_id}-{name}" if self.flat else f"{self.run_prefix(run_id)}{name}"

    def run_output_prefixes(self, run_id: str) -> tuple[str, ...]:
        """The key prefixes of the thumbnails of a run's uploads (named with `upload_key`), one per size."""
        if self.flat:
            return tuple(f"{self.output_prefix}{size}/{run_id}-" for size in self.sizes)
        return tuple(self.output_stem(size, self.run_prefix(run_id)) for size in self.sizes)

    def source_of(self, thumbnail_key: str) -> tuple[str, str] | None:
        """thumbnails/<size>/<path>.<ext> -> (size, uploads/<path>); None for keys outside the layout."""
        return contract.source_of(thumbnail_key, input_prefix=self.input_prefix, output_prefix=self.output_prefix)


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
    content_type: str | None = None  # the Content-Type it was stored with
    body_type: str | None = None  # the type its first bytes show (image/png, ...); None when not read


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
    raw_key: str | None = None  # a redriven S3 event's key as it arrived (URL-encoded)


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
    # what went wrong, per cause (harness.load.accounting.CAUSES): name -> uploads (or DLQ messages) affected
    causes: tuple[tuple[str, int], ...] = ()

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
    def still_queued(self) -> int:
        """MISSING uploads observed while messages were still queued or in flight: not settled, not (yet) lost."""
        return dict(self.causes).get(MISSING_QUEUED, 0)

    @property
    def lost(self) -> int:
        """MISSING uploads with nothing left to wait for (the queue drained, or not observed)."""
        return self.counts[Outcome.MISSING.value] - self.still_queued

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
            "still_queued": self.still_queued,
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
            "causes": dict(self.causes),
        }


class PipelineProbe(Protocol):
    """Port: read-only views of a deployed pipeline (the boto3 adapter is harness.load.storage.AwsProbe)."""

    target: PipelineTarget

    def thumbnails(self, run_id: str, *, with_metadata: bool = True) -> list[ThumbnailObservation]: ...

    def dlq_messages(self) -> list[DlqObservation]: ...

    def log_records(self, since_ms: float, run_id: str) -> list[LogObservation]: ...

    def depths(self) -> QueueDepths: ...


def layout_of(outputs: StackOutputs) -> str:
    """The output layout of a deployed stack: "flat" when its profile runs the seed replica, else "mirror"."""
    config = PROFILES.get(outputs.profile)
    return "flat" if config is not None and config.function_impl == "seed" else "mirror"


# what collect/settle/make_probe accept as "where the pipeline is"
TargetLike = StackOutputs | Mapping[str, Any] | PipelineTarget
