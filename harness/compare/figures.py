"""The figures compared between two load reports (report.json of harness.load.report): pure functions, no I/O.

Per report: latency per stage (p50, p90, p99), throughput (accepted, completed, service rate), outcomes (complete,
DLQ by code, lost) and the estimated AWS cost per image (Lambda GB-s at the stack's memory and architecture plus the
requests each image makes, priced with infra.pricing and the request prices in harness.target).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import CodedError, expected
from harness.target import S3_GET_USD, S3_PUT_USD, SQS_USD
from infra.pricing import PRICES

STAGES = ("e2e", "put", "queue_wait", "to_handler", "handler", "resize", "overhead")
QUANTILES = ("p50", "p90", "p99")
REQUIRED = ("run_id", "backend", "scenario", "uploads", "pipeline", "latency_ms", "accounting")


class CompareError(CodedError):
    """COMPARE_REPORT_INVALID: a file that is not a load report.json."""


@dataclass(frozen=True)
class Row:
    """One compared figure: its label, the two values, and whether lower is better (None: neither)."""

    section: str
    label: str
    a: float | None
    b: float | None
    lower_is_better: bool | None = None
    digits: int = 1

    @property
    def ratio(self) -> float | None:
        """b / a (None when either is missing or a is 0)."""
        if self.a is None or self.b is None or self.a == 0:
            return None
        return self.b / self.a

    @property
    def verdict(self) -> str:
        """ "B better"/"B worse" when the figures differ by more than 10 %, "same" within, "" for unjudged rows."""
        r = self.ratio
        if r is None or self.lower_is_better is None:
            return "" if self.a == self.b or r is None else ("differs" if abs(r - 1) > 0.1 else "same")
        if abs(r - 1) <= 0.1:
            return "same"
        better = (r < 1) == self.lower_is_better
        return "B better" if better else "B worse"


def validate(doc: Any, source: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise CompareError("COMPARE_REPORT_INVALID", expected("a JSON object", source, type(doc).__name__))
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise CompareError(
            "COMPARE_REPORT_INVALID", expected(f"a load report.json with {', '.join(REQUIRED)}", source, missing)
        )
    return doc


def label(doc: Mapping[str, Any]) -> str:
    """How a run is named: stack (or target endpoint), backend, architecture and the run id."""
    stack = doc.get("stack") or {}
    outputs = stack.get("outputs") or {}
    where = stack.get("name") or "?"
    endpoint = stack.get("endpoint")
    parts = [f"{where}@{endpoint}" if endpoint else where, str(doc.get("backend"))]
    profile = stack.get("profile") or outputs.get("profile")
    if profile and profile != "default":
        parts.append(f"profile {profile}")
    if outputs.get("architecture"):
        parts.append(str(outputs["architecture"]))
    return f"{' / '.join(parts)} ({doc['run_id']})"


def _get(doc: Mapping[str, Any], *path: str) -> float | None:
    cur: Any = doc
    for key in path:
        if not isinstance(cur, Mapping) or key not in cur:
            return None
        cur = cur[key]
    return float(cur) if isinstance(cur, (int, float)) and not isinstance(cur, bool) else None


def cost_per_image(doc: Mapping[str, Any]) -> dict[str, float] | None:
    """Estimated AWS USD per completed image: Lambda duration (handler ms x memory) + requests; None without the
    stack's memory (reports written before the stack was recorded)."""
    outputs = (doc.get("stack") or {}).get("outputs") or {}
    memory = outputs.get("memory_mb")
    completed = _get(doc, "pipeline", "completed")
    handler_sum = _get(doc, "pipeline", "handler_ms_sum")
    if not memory or not completed or handler_sum is None:
        return None
    price = PRICES.get(str(outputs.get("architecture") or "x86_64"), PRICES["x86_64"])
    sizes = max(1, len(str(outputs.get("sizes") or "large,small").split(",")))
    batch = float((doc.get("overrides") or {}).get("batch_size") or doc["scenario"].get("batch_size") or 1)
    gb_s = handler_sum / completed / 1000 * float(memory) / 1024
    lambda_usd = gb_s * price.usd_per_gb_s + price.usd_per_million_requests / 1e6 / batch
    requests_usd = (1 + sizes) * S3_PUT_USD + S3_GET_USD + 3 * SQS_USD
    return {"gb_s": gb_s, "lambda_usd": lambda_usd, "requests_usd": requests_usd, "usd": lambda_usd + requests_usd}


def rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Row]:
    out: list[Row] = []
    for stage in STAGES:
        for q in QUANTILES:
            out.append(
                Row(
                    "latency (ms)",
                    f"{stage} {q}",
                    _get(a, "latency_ms", stage, q),
                    _get(b, "latency_ms", stage, q),
                    True,
                    0,
                )
            )
    throughput = (
        ("uploads/s accepted", ("uploads", "accepted_per_s")),
        ("uploads/s completed", ("pipeline", "completed_per_s")),
        ("thumbnails/s completed", ("pipeline", "thumbnails_per_s")),
        ("service rate (uploads/s while busy)", ("pipeline", "service_rate_per_s")),
        ("drain after last upload (s)", ("pipeline", "drain_s")),
    )
    for name, path in throughput:
        out.append(Row("throughput", name, _get(a, *path), _get(b, *path), name.startswith("drain"), 2))
    ca, cb = cost_per_image(a), cost_per_image(b)
    gb_a, gb_b = (ca["gb_s"] if ca else None), (cb["gb_s"] if cb else None)
    usd_a, usd_b = (ca["usd"] * 1000 if ca else None), (cb["usd"] * 1000 if cb else None)
    out.append(Row("cost per image", "Lambda GB-s", gb_a, gb_b, True, 4))
    out.append(Row("cost per image", "USD per 1000 images", usd_a, usd_b, True, 4))
    out.append(
        Row("outcomes", "accepted uploads", _get(a, "uploads", "accepted"), _get(b, "uploads", "accepted"), None, 0)
    )
    for outcome in ("complete", "dlq", "missing"):
        out.append(
            Row(
                "outcomes",
                outcome,
                _get(a, "accounting", "counts", outcome),
                _get(b, "accounting", "counts", outcome),
                None if outcome != "missing" else True,
                0,
            )
        )
    out.append(Row("outcomes", "lost", _get(a, "accounting", "lost"), _get(b, "accounting", "lost"), True, 0))
    codes = sorted(set(a["accounting"].get("dlq_codes") or {}) | set(b["accounting"].get("dlq_codes") or {}))
    for code in codes:
        out.append(
            Row(
                "outcomes",
                f"DLQ {code}",
                float((a["accounting"].get("dlq_codes") or {}).get(code, 0)),
                float((b["accounting"].get("dlq_codes") or {}).get(code, 0)),
                None,
                0,
            )
        )
    # per cause (harness.load.accounting): lost deleted without output, overwritten, wrong content type, DLQ causes
    causes_a, causes_b = a["accounting"].get("causes") or {}, b["accounting"].get("causes") or {}
    for cause in sorted(set(causes_a) | set(causes_b)):
        # a permanent failure dead-lettered with its code is the right outcome: judged are the defects only
        judged = None if cause.startswith("dlq: ") and cause != "dlq: s3:TestEvent" else True
        out.append(Row("by cause", cause, float(causes_a.get(cause, 0)), float(causes_b.get(cause, 0)), judged, 0))
    return out


def outcome_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Differences in what happened (not how fast): lost uploads, a broken invariant, DLQ codes on one side only."""
    notes = []
    for name, doc in (("A", a), ("B", b)):
        acc = doc["accounting"]
        if acc.get("lost"):
            notes.append(f"{name} lost {acc['lost']} upload(s)")
        if acc.get("invariant_holds") is False:
            notes.append(f"{name}: the accounting invariant does not hold")
    ca, cb = set(a["accounting"].get("dlq_codes") or {}), set(b["accounting"].get("dlq_codes") or {})
    if ca - cb:
        notes.append(f"DLQ codes only in A: {', '.join(sorted(ca - cb))}")
    if cb - ca:
        notes.append(f"DLQ codes only in B: {', '.join(sorted(cb - ca))}")
    causes_a, causes_b = a["accounting"].get("causes") or {}, b["accounting"].get("causes") or {}
    for cause in sorted(set(causes_a) | set(causes_b)):
        va, vb = int(causes_a.get(cause, 0)), int(causes_b.get(cause, 0))
        if va != vb and (va == 0 or vb == 0):
            notes.append(f"{cause}: A {va}, B {vb}")
    if a["scenario"].get("name") != b["scenario"].get("name"):
        notes.append(f"different scenarios: {a['scenario'].get('name')} vs {b['scenario'].get('name')}")
    return notes
