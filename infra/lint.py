"""Stack lint: checks a stack definition against AWS guidance and says what is wrong and why (stable rule codes)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from infra.stack import Stack

# Memory model for the decode estimate: a decoded image costs 4 bytes per pixel (Pillow and libvips keep RGB(A)
# in 4-byte pixels when converting), and a resize holds the decoded source plus one converted/working copy.
BYTES_PER_PIXEL = 4
DECODED_COPIES = 2
# Python 3.13 + boto3 + Pillow/pyvips imported, before any image: measured ~100-130 MB; rounded up.
RUNTIME_BASELINE_MB = 160


class Severity(StrEnum):
    ERROR = "error"  # blocks deploy
    WARNING = "warning"  # printed before deploy


@dataclass(frozen=True)
class Finding:
    """One lint result: stable `code`, the resource it concerns, what is wrong and why it matters."""

    code: str
    severity: Severity
    resource: str
    message: str

    @property
    def problem(self) -> str:
        """What is wrong (every message reads "<what is wrong>: <why it matters>")."""
        return self.message.partition(": ")[0]

    @property
    def why(self) -> str:
        return self.message.partition(": ")[2]

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.code} [{self.resource}] {self.message}"


def estimated_peak_memory_mb(max_pixels: int) -> int:
    """Memory the function needs for the largest image the handler accepts (THUMB_MAX_PIXELS)."""
    return RUNTIME_BASELINE_MB + math.ceil(max_pixels * BYTES_PER_PIXEL * DECODED_COPIES / 2**20)


def min_visibility_timeout_s(stack: Stack) -> int:
    """AWS guidance for an SQS event source: at least 6 x the function timeout + the batching window."""
    return 6 * stack.function.timeout_s + stack.mapping.batching_window_s


# ---- rules ----------------------------------------------------------------------------------------------------------
def _visibility(stack: Stack) -> Iterable[Finding]:
    vis, timeout = stack.queue.visibility_timeout_s, stack.function.timeout_s
    if vis < timeout:
        yield Finding(
            "STK001",
            Severity.ERROR,
            stack.queue.name,
            f"visibility timeout {vis} s is shorter than the function timeout {timeout} s: a message still "
            "being processed becomes visible again and is processed twice (AWS rejects this mapping)",
        )
    elif vis < min_visibility_timeout_s(stack):
        yield Finding(
            "STK002",
            Severity.WARNING,
            stack.queue.name,
            f"visibility timeout {vis} s is below 6 x function timeout ({timeout} s) + batching window "
            f"({stack.mapping.batching_window_s} s) = {min_visibility_timeout_s(stack)} s (AWS guidance): "
            "when invocations are throttled or retried, messages reappear while a batch is in flight and "
            "burn their receive count, reaching the DLQ without a real failure",
        )


def _report_batch_item_failures(stack: Stack) -> Iterable[Finding]:
    if "ReportBatchItemFailures" not in stack.mapping.function_response_types and stack.function.impl == "seed":
        # a warning: the seed replica deploys as designed, and what it loses is what the harness measures
        yield Finding(
            "STK003",
            Severity.WARNING,
            stack.function.name,
            "the event source mapping does not enable ReportBatchItemFailures and the seed's handler processes only "
            "Records[0] of a batch and returns normally: the mapping deletes the other records of the batch "
            "without output",
        )
    elif "ReportBatchItemFailures" not in stack.mapping.function_response_types:
        yield Finding(
            "STK003",
            Severity.ERROR,
            stack.function.name,
            "the event source mapping does not enable ReportBatchItemFailures: the handler's "
            "batchItemFailures response is ignored, so a batch with one failed record is either retried "
            "whole or, when the handler returns normally, failed records are deleted silently",
        )


def _redrive(stack: Stack) -> Iterable[Finding]:
    count = stack.queue.max_receive_count
    if stack.queue.dead_letter_queue is None or count is None:
        yield Finding(
            "STK004",
            Severity.ERROR,
            stack.queue.name,
            "the main queue has no redrive policy: a message that always fails is retried until it expires and is lost",
        )
        return
    if count < 2:
        yield Finding(
            "STK005",
            Severity.WARNING,
            stack.queue.name,
            f"maxReceiveCount {count} sends a message to the DLQ after its first failure: a transient "
            "error (throttling, timeout) is never retried",
        )
    if stack.function.settings.max_receive_count != count:
        yield Finding(
            "STK006",
            Severity.ERROR,
            stack.function.name,
            f"THUMB_MAX_RECEIVE_COUNT {stack.function.settings.max_receive_count} differs from the queue's "
            f"maxReceiveCount {count}: the handler cannot tell the last attempt from an earlier one",
        )


def _dlq_retention(stack: Stack) -> Iterable[Finding]:
    if stack.dlq.retention_s <= stack.queue.retention_s:
        yield Finding(
            "STK007",
            Severity.WARNING,
            stack.dlq.name,
            f"DLQ retention {stack.dlq.retention_s} s is not longer than the main queue's "
            f"{stack.queue.retention_s} s: a redriven message keeps its original enqueue time, so it can "
            "expire from the DLQ before anyone looks at it (AWS: make the DLQ retention longer)",
        )


def _separate_output(stack: Stack) -> Iterable[Finding]:
    prefix_in, prefix_out = stack.notification.prefix, stack.config.output_prefix
    if stack.output_bucket is not None and stack.output_bucket.name != stack.input_bucket.name:
        return
    if not prefix_in or prefix_out.startswith(prefix_in) or prefix_in.startswith(prefix_out):
        yield Finding(
            "STK008",
            Severity.ERROR,
            stack.input_bucket.name,
            f"thumbnails are written to the input bucket under {prefix_out!r} and the notification filter "
            f"{prefix_in!r} matches them: every thumbnail triggers the pipeline again (recursive loop)",
        )
    else:
        yield Finding(
            "STK009",
            Severity.WARNING,
            stack.input_bucket.name,
            f"thumbnails go to the input bucket under {prefix_out!r}: only the notification prefix filter "
            f"{prefix_in!r} prevents a recursive loop; a separate output bucket makes one impossible",
        )


def _memory(stack: Stack) -> Iterable[Finding]:
    need = estimated_peak_memory_mb(stack.function.settings.max_pixels)
    have = stack.function.memory_mb
    if have < need:
        yield Finding(
            "STK010",
            Severity.WARNING,
            stack.function.name,
            f"memory {have} MB is below the estimated {need} MB for the largest image the handler accepts "
            f"(THUMB_MAX_PIXELS {stack.function.settings.max_pixels:,} px x {BYTES_PER_PIXEL} B x "
            f"{DECODED_COPIES} copies + {RUNTIME_BASELINE_MB} MB runtime): large uploads will be killed "
            "out of memory and retried until they reach the DLQ. Raise memory or lower THUMB_MAX_PIXELS",
        )


def _batching(stack: Stack) -> Iterable[Finding]:
    if stack.mapping.batch_size > 10 and stack.mapping.batching_window_s < 1:
        yield Finding(
            "STK011",
            Severity.ERROR,
            stack.function.name,
            f"batch size {stack.mapping.batch_size} with no batching window: AWS rejects batch sizes above "
            "10 unless MaximumBatchingWindowInSeconds is at least 1",
        )


def _is_wildcard_resource(arn: str) -> bool:
    """'*', or an ARN whose resource part starts with '*' (every bucket, queue, log group ...)."""
    parts = arn.split(":", 5)
    return arn == "*" or len(parts) < 6 or parts[5] == "" or parts[5].startswith("*")


def _iam(stack: Stack) -> Iterable[Finding]:
    input_objects = stack.bucket_arn(stack.input_bucket.name) + "/"
    for role, statements in stack.all_statements():
        for st in statements:
            for res in st.resources:
                if _is_wildcard_resource(res):
                    yield Finding(
                        "STK012",
                        Severity.ERROR,
                        role,
                        f"statement {st.sid} grants {', '.join(st.actions)} on every resource ({res!r}): "
                        "least privilege requires the stack's own ARNs",
                    )
            for action in st.actions:
                if action.endswith("*"):
                    yield Finding(
                        "STK013",
                        Severity.ERROR,
                        role,
                        f"statement {st.sid} uses the wildcard action {action!r}: list the actions "
                        "needed, a wildcard also grants every action AWS adds later",
                    )
                if action in ("s3:DeleteObject", "s3:DeleteObjectVersion") and any(
                    r.startswith(input_objects) for r in st.resources
                ):
                    yield Finding(
                        "STK014",
                        Severity.ERROR,
                        role,
                        f"statement {st.sid} allows {action} on the input bucket: the pipeline never "
                        "deletes uploads, a bug or a compromised function could",
                    )


def _log_retention(stack: Stack) -> Iterable[Finding]:
    if stack.function.log_retention_days > 365:
        yield Finding(
            "STK015",
            Severity.WARNING,
            stack.function.log_group,
            f"log retention {stack.function.log_retention_days} days: per-record logs of a busy pipeline "
            "cost more to store than to produce; keep them for weeks, not years",
        )


RULES: tuple[Callable[[Stack], Iterable[Finding]], ...] = (
    _visibility,
    _report_batch_item_failures,
    _redrive,
    _dlq_retention,
    _separate_output,
    _memory,
    _batching,
    _iam,
    _log_retention,
)


def lint(stack: Stack) -> list[Finding]:
    """Every finding for `stack`, errors first, in rule order."""
    found = [f for rule in RULES for f in rule(stack)]
    return sorted(found, key=lambda f: (f.severity != Severity.ERROR, f.code))


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == Severity.ERROR]
