"""The bench's arithmetic: CPU ms per call from /proc readings, paired ratios across interleaved rounds, targets."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Must show (issue 16): emulator CPU per image at least halved by the lean path, and SQS calls and the S3 GET within
# 2x of MiniStack per call.
TARGET_PER_IMAGE_REDUCTION = 0.5  # after / before <= 0.5
TARGET_PEER_RATIO = 2.0  # LocalStack (lean) / MiniStack <= 2.0
PEER_TARGET_OPS = ("s3_get", "sqs_send", "sqs_receive_delete")


@dataclass(frozen=True)
class Sample:
    """One sample: `calls` operations (or completed uploads) on one side, and the emulator CPU seconds they cost."""

    side: str
    op: str
    round: int
    calls: int
    cpu_s: float
    wall_s: float

    @property
    def ms_per_call(self) -> float:
        return 1000 * self.cpu_s / self.calls if self.calls else float("nan")


def per_call_ms(cpu_before_s: float, cpu_after_s: float, calls: int) -> float:
    """CPU milliseconds per call between two cumulative readings."""
    if calls <= 0:
        raise ValueError(f"Expected a positive call count for a sample but received {calls}")
    return 1000 * max(0.0, cpu_after_s - cpu_before_s) / calls


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def paired_ratios(samples: Sequence[Sample], op: str, num: str, den: str) -> list[float]:
    """ms/call of side `num` over side `den`, one ratio per round where both have a sample of `op`."""
    by_round: dict[int, dict[str, float]] = {}
    for s in samples:
        if s.op == op and s.calls > 0:
            by_round.setdefault(s.round, {})[s.side] = s.ms_per_call
    return [r[num] / r[den] for r in by_round.values() if num in r and den in r and r[den] > 0]


def summarize(samples: Sequence[Sample], sides: Sequence[str], ops: Sequence[str]) -> dict[str, Any]:
    """Per op: median ms/call per side (and min/max over rounds), and the median paired ratios after/before and
    after/ministack (a ratio per round, so a neighbour's load that hits one round hits both sides of it)."""
    table: dict[str, Any] = {}
    for op in ops:
        row: dict[str, Any] = {"ms": {}, "range": {}, "rounds": {}}
        for side in sides:
            values = [s.ms_per_call for s in samples if s.op == op and s.side == side and s.calls > 0]
            row["ms"][side] = _median(values)
            row["range"][side] = [min(values), max(values)] if values else None
            row["rounds"][side] = len(values)
        row["after_over_before"] = _median(paired_ratios(samples, op, "after", "before"))
        row["after_over_ministack"] = _median(paired_ratios(samples, op, "after", "ministack"))
        row["before_over_ministack"] = _median(paired_ratios(samples, op, "before", "ministack"))
        table[op] = row
    return table


def _verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "not measured"
    return "met" if value <= limit else "missed"


def targets(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Must-show targets with the measured value and a verdict (met / missed / not measured)."""
    out: list[dict[str, Any]] = []
    per_image = (table.get("per_image") or {}).get("after_over_before")
    out.append(
        {
            "name": "emulator CPU per image, lean / defaults",
            "limit": f"<= {TARGET_PER_IMAGE_REDUCTION}",
            "value": per_image,
            "verdict": _verdict(per_image, TARGET_PER_IMAGE_REDUCTION),
        }
    )
    for op in PEER_TARGET_OPS:
        ratio = (table.get(op) or {}).get("after_over_ministack")
        out.append(
            {
                "name": f"{op} CPU per call, LocalStack lean / MiniStack",
                "limit": f"<= {TARGET_PEER_RATIO}",
                "value": ratio,
                "verdict": _verdict(ratio, TARGET_PEER_RATIO),
            }
        )
    return out
