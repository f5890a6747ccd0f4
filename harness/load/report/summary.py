"""The figures of one load run: uploads + accounting + samples + baseline + CPU -> one JSON-serialisable dict."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from harness.load.cpu import CpuReading, summarize_cpu
from harness.load.generator import GenerationResult, UploadRecord
from harness.load.model import Accounting, Outcome, Sample, UploadOutcome
from harness.load.report.stats import distribution, rate_series

STAGES = (
    ("e2e", "upload start -> thumbnails written"),
    ("put", "upload start -> PUT acknowledged"),
    ("enqueue", "PUT acknowledged -> message enqueued (SQS SentTimestamp, from logs)"),
    ("queue_wait", "enqueued -> handler start"),
    ("to_handler", "PUT acknowledged -> handler start (notification + queue)"),
    ("in_handler", "handler (batch) start -> record done (log timestamp)"),
    ("handler", "per object: fetch + resize (handler total-ms)"),
    ("resize", "resize time (handler resize-ms)"),
    ("overhead", "end to end minus resize time"),
    ("overhead_after_put", "PUT acknowledged -> thumbnails written, minus resize time"),
)


def stage_values(records: Sequence[UploadRecord], outcomes: Mapping[str, UploadOutcome]) -> dict[str, list[float]]:
    """Per-stage latency samples (ms) over accepted uploads that completed."""
    out: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    for r in records:
        if not r.accepted or r.started_ms is None or r.acked_ms is None:
            continue
        out["put"].append(r.acked_ms - r.started_ms)
        o = outcomes.get(r.key)
        if o is None or o.outcome is not Outcome.COMPLETE:
            continue
        if o.enqueued_ms is not None:
            out["enqueue"].append(o.enqueued_ms - r.acked_ms)
            if o.handler_start_ms is not None:
                out["queue_wait"].append(o.handler_start_ms - o.enqueued_ms)
        if o.handler_start_ms is not None:
            out["to_handler"].append(o.handler_start_ms - r.acked_ms)
        if o.total_ms is not None:
            out["handler"].append(o.total_ms)
        if o.done_ms is not None and o.handler_start_ms is not None:
            out["in_handler"].append(o.done_ms - o.handler_start_ms)
        if o.resize_ms is not None:
            out["resize"].append(o.resize_ms)
        if o.done_ms is not None:
            e2e = o.done_ms - r.started_ms
            out["e2e"].append(e2e)
            if o.resize_ms is not None:
                out["overhead"].append(e2e - o.resize_ms)
                out["overhead_after_put"].append(o.done_ms - r.acked_ms - o.resize_ms)
    return out


def summarize(
    *,
    scenario: Mapping[str, Any],
    backend: str,
    generation: GenerationResult,
    accounting: Accounting,
    samples: Sequence[Sample] = (),
    baseline: Mapping[str, Any] | None = None,
    settled: bool | None = None,
    sizes: Sequence[str] = ("large", "small"),
    extra: Mapping[str, Any] | None = None,
    cpu_readings: Sequence[CpuReading] = (),
    cores: int | None = None,
) -> dict[str, Any]:
    """All figures of one run as a JSON-serialisable dict (the report's single source)."""
    records = generation.records
    outcomes = accounting.by_key()
    accepted = [r for r in records if r.accepted]
    failures = Counter(r.error_code for r in records if not r.accepted)
    t0 = generation.started_ms
    gen_s = max(1e-9, (generation.finished_ms - t0) / 1000)
    acked = [r.acked_ms for r in accepted if r.acked_ms is not None]
    complete = [o for o in accounting.outcomes if o.outcome is Outcome.COMPLETE]
    done_times = [o.done_ms for o in complete if o.done_ms is not None]
    starts = [o.handler_start_ms for o in complete if o.handler_start_ms is not None]
    stages = stage_values(records, outcomes)
    lags = [r.lag_ms for r in records if r.lag_ms is not None]

    pipeline: dict[str, Any] = {"completed": len(complete), "thumbnails": len(complete) * len(sizes)}
    if done_times and acked:
        span_s = max(1e-9, (max(done_times) - min(r.started_ms for r in accepted if r.started_ms)) / 1000)
        pipeline["completed_per_s"] = len(complete) / span_s
        pipeline["thumbnails_per_s"] = len(complete) * len(sizes) / span_s
        pipeline["drain_s"] = (max(done_times) - max(acked)) / 1000
    if len(starts) >= 2 and done_times:
        busy_s = max(1e-9, (max(done_times) - min(starts)) / 1000)
        pipeline["service_rate_per_s"] = len(complete) / busy_s  # uploads/s while the pipeline had work
    handler_ms = [o.total_ms for o in complete if o.total_ms is not None]
    resize_ms = [o.resize_ms for o in complete if o.resize_ms is not None]
    if handler_ms:
        pipeline["handler_ms_sum"] = sum(handler_ms)
        pipeline["resize_ms_sum"] = sum(resize_ms)

    efficiency: dict[str, Any] = {}
    if baseline and baseline.get("images_per_s") and pipeline.get("service_rate_per_s"):
        # the service rate is the pipeline's capacity only if work was waiting: messages queued in most samples
        # taken while there were completions still to come
        last_done = max(done_times) if done_times else t0
        busy = [s for s in samples if t0 <= s.t_ms <= last_done]
        backlog = sum(1 for s in busy if s.visible > 0) / len(busy) if busy else 0.0
        efficiency = {
            "pipeline_per_s": pipeline["service_rate_per_s"],
            "raw_resize_per_s": baseline["images_per_s"],
            "ratio": pipeline["service_rate_per_s"] / baseline["images_per_s"],
            "backlog_fraction": backlog,
            "saturated": backlog >= 0.5,
        }

    # CPU by consumer over the same busy window as the service rate (first handler start -> last thumbnail)
    resize_cpu_ms = (baseline or {}).get("cpu_ms_per_image")
    cpu = summarize_cpu(
        cpu_readings,
        min(starts) if starts else None,
        max(done_times) if done_times else None,
        len(complete),
        resize_cpu_ms,
        cores or int((baseline or {}).get("processes") or 1),
    )
    if cpu and efficiency:
        cpu = {**cpu, "measured_efficiency": efficiency["ratio"]}

    return {
        "scenario": dict(scenario),
        "backend": backend,
        "run_id": generation.run_id,
        "started_ms": t0,
        "uploads": {
            "planned": len(records),
            "accepted": len(accepted),
            "failed": dict(failures),
            "stopped_early": generation.stopped_early,
            "generation_s": gen_s,
            "accepted_per_s": len(accepted) / gen_s,
            "bytes": sum(r.bytes for r in accepted),
            "start_lag_ms": distribution(lags),
        },
        "pipeline": pipeline,
        "latency_ms": {name: distribution(vals) for name, vals in stages.items()},
        "accounting": accounting.to_dict(),
        "settled": settled,
        "efficiency": efficiency,
        "cpu": dict(cpu),
        "baseline": dict(baseline or {}),
        "samples": [asdict(s) for s in samples],
        "series": {
            "accepted_per_s": rate_series(acked, t0),
            "completed_per_s": rate_series(done_times, t0),
        },
        "cdf_ms": {
            name: sorted(vals)
            for name, vals in stages.items()
            if name in ("e2e", "to_handler", "handler", "resize", "overhead")
        },
        **dict(extra or {}),
    }
