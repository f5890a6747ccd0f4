"""A simulation's figures in the load report's shape: throughput, stage latencies, accounting, samples, cost."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np

from harness.load.scenario import Scenario
from harness.simulate import rules
from harness.simulate.calibration import Calibration
from harness.simulate.engine import COMPLETE, DLQ_HANDLER, EXPIRED, PENDING, REDRIVEN, SimOutput

MAX_SERIES_POINTS = 2000
CDF_POINTS = 500


def distribution(values_ms: np.ndarray) -> dict[str, float | int | None]:
    """n, p50, p90, p99, max, mean (ms); linear-interpolated percentiles like harness.load's report."""
    if len(values_ms) == 0:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    p50, p90, p99 = np.percentile(values_ms, [50, 90, 99])
    return {
        "n": int(len(values_ms)),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(values_ms.max()),
        "mean": float(values_ms.mean()),
    }


def _downsample(samples: dict[str, list[float]]) -> dict[str, list[float]]:
    n = len(samples["t"])
    if n <= MAX_SERIES_POINTS:
        return {k: list(v) for k, v in samples.items()}
    idx = np.linspace(0, n - 1, MAX_SERIES_POINTS).astype(int)
    out: dict[str, list[float]] = {}
    for key, values in samples.items():
        arr = np.asarray(values, float)
        if key in ("visible", "in_flight", "oldest_age_s", "concurrency"):  # keep the peaks between points
            edges = np.append(idx, n)
            out[key] = [float(arr[a : max(a + 1, b)].max()) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        else:
            out[key] = arr[idx].tolist()
    return out


def cost(out: SimOutput) -> dict[str, Any]:
    """Lambda cost of the run: billed duration x memory + requests (rules' price table); per million completed."""
    k = out.knobs
    gb_s = out.counters.billed_ms / 1000.0 * k.memory_mb / 1024.0
    usd = gb_s * rules.USD_PER_GB_S[k.arch] + out.counters.invocations * rules.USD_PER_MILLION_REQUESTS[k.arch] / 1e6
    done = int(np.count_nonzero(out.state == COMPLETE))
    return {
        "arch": k.arch,
        "memory_mb": k.memory_mb,
        "gb_s": gb_s,
        "requests": out.counters.invocations,
        "usd_total": usd,
        "usd_per_million_images": usd / done * 1e6 if done else None,
        "price_table": rules.PRICE_TABLE_DATE,
        "includes": "Lambda duration and requests only (S3, SQS excluded)",
    }


def summarize(out: SimOutput, cal: Calibration, scenario: Scenario, *, wall_s: float) -> dict[str, Any]:
    k = out.knobs
    c = out.counters
    ok = out.state == COMPLETE
    n = len(out.state)
    put_ack = out.enqueue_t  # (s) includes the notification: the simulator does not split PUT and notify
    e2e = (out.done_t[ok] - out.upload_t[ok]) * 1000.0
    started = ~np.isnan(out.start_t)
    latency = {
        "e2e": distribution(e2e),
        "queue_wait": distribution((out.start_t[ok] - out.enqueue_t[ok]) * 1000.0),
        "to_handler": distribution((out.start_t[ok] - out.upload_t[ok]) * 1000.0),
        "in_handler": distribution((out.done_t[ok] - out.start_t[ok]) * 1000.0),
        "enqueue": distribution((put_ack - out.upload_t) * 1000.0),
    }
    pipeline: dict[str, Any] = {"completed": int(ok.sum()), "thumbnails": int(ok.sum()) * 2}
    if ok.any():
        last_done = float(np.nanmax(out.done_t[ok]))
        span = max(1e-9, last_done - float(out.upload_t.min()))
        pipeline["completed_per_s"] = float(ok.sum()) / span
        pipeline["drain_s"] = last_done - float(out.upload_t.max())
        if started.any():
            busy = max(1e-9, last_done - float(np.nanmin(out.start_t[started])))
            pipeline["service_rate_per_s"] = float(ok.sum()) / busy
    counts = {
        "complete": int(ok.sum()),
        "dlq": int(np.count_nonzero((out.state == DLQ_HANDLER) | (out.state == REDRIVEN))),
        "missing": int(np.count_nonzero((out.state == EXPIRED) | (out.state == PENDING))),
    }
    s = out.samples
    t_end = max(s["t"]) if s["t"] else 0.0
    duration = float(out.upload_t.max() - out.upload_t.min()) if n > 1 else 0.0
    sim = {
        "max_queue_depth": max(s["visible"], default=0),
        "max_in_flight": max(s["in_flight"], default=0),
        "max_oldest_age_s": max(s["oldest_age_s"], default=0.0),
        "max_concurrency": max(s["concurrency"], default=0),
        "max_environments": max(s["environments"], default=0),
        "max_pollers": max(s["pollers"], default=0),
        "invocations": c.invocations,
        "mean_batch": c.records_processed / c.invocations if c.invocations else 0.0,
        "throttled_invocations": c.throttled_invocations,
        "throttled_messages": c.throttled_messages,
        "redeliveries": c.redeliveries,
        "duplicates": c.duplicates,
        "visibility_expired": c.visibility_expired,
        "cold_starts": c.cold_starts,
        "timeouts": c.timeouts,
        "s3_throttles": c.s3_throttles,
        "dlq_handler": int(np.count_nonzero(out.state == DLQ_HANDLER)),
        "dlq_redriven": int(np.count_nonzero(out.state == REDRIVEN)),
        "expired": int(np.count_nonzero(out.state == EXPIRED)),
        "unresolved": int(np.count_nonzero(out.state == PENDING)),
        "finished": out.finished,
        "simulated_s": t_end,
        "events": out.events,
        "wall_s": wall_s,
    }
    cdf = {}
    if len(e2e):
        q = np.linspace(0, 100, CDF_POINTS)
        cdf["e2e"] = np.percentile(e2e, q).tolist()
    return {
        "kind": "simulation",
        "scenario": {**asdict(scenario), "profile": asdict(scenario.profile)},
        "backend": k.backend,
        "mode": k.mode,
        "knobs": k.to_dict(),
        "calibration": {
            "source": cal.source,
            "backend": cal.backend,
            "notes": list(cal.notes),
            "classes": [asdict(x) for x in cal.classes],
            "handler_overhead_cpu_ms": cal.handler_overhead_cpu_ms,
            "emulator_cpu_ms": cal.emulator_cpu_ms,
            "harness_cpu_ms": cal.harness_cpu_ms,
            "other_cores": cal.other_cores,
            "retryable_rate": cal.retryable_rate,
        },
        "uploads": {
            "planned": n,
            "accepted": n,
            "generation_s": duration,
            "accepted_per_s": n / duration if duration > 0 else float(n),
        },
        "pipeline": pipeline,
        "latency_ms": latency,
        "accounting": {
            "expected": n,
            "counts": counts,
            "lost": counts["missing"],
            "invariant_holds": True,
            "dlq_codes": {
                "PERMANENT": int(np.count_nonzero((out.state == DLQ_HANDLER) & (out.receives <= 1))),
                "RETRY_EXHAUSTED": int(np.count_nonzero((out.state == DLQ_HANDLER) & (out.receives > 1))),
                "REDRIVEN": sim["dlq_redriven"],
            },
            "duplicates": c.duplicates,
        },
        "simulation": sim,
        "cost": cost(out),
        "series": _downsample(s),
        "cdf_ms": cdf,
        "rules": [r.to_dict() for r in rules.RULES],
    }


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
