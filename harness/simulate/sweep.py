"""Sweeps of memory x batch size x MaximumConcurrency, and the what-if lint: what the settings cannot sustain."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from harness.simulate import rules
from harness.simulate.calibration import Calibration
from harness.simulate.engine import cpu_share
from harness.simulate.knobs import Knobs
from harness.simulate.metrics import fmt
from harness.simulate.simulation import Simulation

DEFAULT_MEMORIES = (512, 1024, 1769)
DEFAULT_BATCHES = (1, 10, 100)
DEFAULT_MAX_CONCURRENCY = (50, 200, 1000)


def _duration(s: float) -> str:
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:,.1f} {unit}"
    return f"{s:,.0f} s"


def record_ms(cal: Calibration, knobs: Knobs) -> float:
    """Mean wall time of one record on AWS under these knobs (the same arithmetic as the AWS service)."""
    stretch = knobs.cpu_speed_factor / cpu_share(knobs.memory_mb)
    return (cal.mean_resize_cpu_ms(ok_only=False) + cal.handler_overhead_cpu_ms) * stretch + knobs.s3_io_ms


def per_environment_rate(cal: Calibration, knobs: Knobs) -> float:
    """Records per second one busy environment sustains with full batches."""
    batch_s = (knobs.invoke_overhead_ms + knobs.batch_size * record_ms(cal, knobs)) / 1000.0
    return knobs.batch_size / batch_s


def lint(summary: Mapping[str, Any], sim: Simulation) -> list[str]:
    """Plain sentences about what these settings cannot sustain for this arrival profile (AWS mode)."""
    k = sim.knobs
    cal = sim.calibration_for_scenario()
    profile = replace(sim.scenario.profile, rate=k.rate) if k.rate is not None else sim.scenario.profile
    duration = k.duration_s if k.duration_s is not None else sim.scenario.duration_s
    peak = max(r for _, _, r in profile.segments(duration))
    per_env = per_environment_rate(cal, k)
    need = math.ceil(peak / per_env)
    cap = min(k.mapping_cap, k.function_limit) if k.mode == "aws" else k.mapping_cap
    out: list[str] = []
    mc_text = f"MaximumConcurrency {k.maximum_concurrency}" if k.maximum_concurrency else "no MaximumConcurrency"
    if cap < need:
        growth = peak - cap * per_env
        frac = growth / peak
        out.append(
            f"at {fmt(peak, 0)}/s with {mc_text} (effective cap {cap}) the backlog grows by "
            f"{fmt(growth, 0)}/s; at least {need} concurrent environments are needed "
            f"({fmt(per_env, 1)} records/s each at {k.memory_mb} MB, batch {k.batch_size}); "
            f"sustained, the oldest message exceeds the {_duration(k.queue_retention_s)} retention after "
            f"{_duration(k.queue_retention_s / frac)}"
        )
    else:
        out.append(
            f"at {fmt(peak, 0)}/s {need} concurrent environments suffice ({fmt(per_env, 1)} records/s each); "
            f"the cap is {cap}"
        )
    if k.mode == "aws":
        start = min(k.esm_initial_batches, cap)
        target = min(need, cap)
        if target > start and k.esm_scale_up_per_min > 0:
            ramp = (target - start) / (k.esm_scale_up_per_min / 60.0)
            arrived = sum(max(0.0, min(e, ramp) - s) * r for s, e, r in profile.segments(duration))
            out.append(
                f"the mapping needs {_duration(ramp)} of backlog to scale from {start} to {target} pollers "
                f"(+{k.esm_scale_up_per_min:g}/min); {fmt(arrived, 0)} uploads arrive in that time"
            )
        if need > k.function_limit:
            out.append(
                f"{need} environments exceed the function's concurrency limit {k.function_limit} "
                f"(reserved or account {k.account_concurrency}): ask for a quota increase"
            )
        if k.reserved_concurrency is not None and k.mapping_cap > k.reserved_concurrency:
            out.append(
                f"the mapping may run {k.mapping_cap} batches but reserved concurrency is "
                f"{k.reserved_concurrency}: invocations beyond it are throttled and come back after "
                f"{k.visibility_timeout_s:g} s; set MaximumConcurrency <= {k.reserved_concurrency}"
            )
        prefixes = math.ceil(peak / k.s3_put_per_prefix_s)
        if prefixes > k.s3_prefixes:
            out.append(
                f"{fmt(peak, 0)} uploads/s exceed S3's {fmt(k.s3_put_per_prefix_s, 0)} PUT/s per prefix: "
                f"spread keys over at least {prefixes} prefixes"
            )
    batch_s = (k.invoke_overhead_ms + k.batch_size * record_ms(cal, k)) / 1000.0
    if batch_s > k.function_timeout_s:
        out.append(f"a full batch takes {batch_s:.1f} s > the {k.function_timeout_s:g} s timeout: every batch fails")
    guide = 6 * k.function_timeout_s + k.batching_window_s
    if k.visibility_timeout_s < guide:
        out.append(
            f"visibility timeout {k.visibility_timeout_s:g} s < 6 x timeout + window = {guide:g} s (AWS "
            f"guidance): throttled or slow batches are delivered twice"
        )
    simd = summary["simulation"]
    out.append(
        f"simulated: max backlog {fmt(simd['max_queue_depth'])}, oldest message "
        f"{fmt(simd['max_oldest_age_s'], 0)}"
        f" s, {fmt(simd['throttled_invocations'])} throttled invocations, "
        f"{fmt(summary['accounting']['counts']['dlq'])} in the DLQ, {fmt(simd['expired'])} expired"
    )
    return out


def sweep(
    sim: Simulation,
    memories: Sequence[int] = DEFAULT_MEMORIES,
    batches: Sequence[int] = DEFAULT_BATCHES,
    concurrencies: Sequence[int] = DEFAULT_MAX_CONCURRENCY,
) -> dict[str, Any]:
    """Simulate every combination; rows of figures, and the wall time of the whole sweep."""
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for mem in memories:
        for batch in batches:
            for mc in concurrencies:
                window = max(sim.knobs.batching_window_s, 1.0) if batch > 10 else sim.knobs.batching_window_s
                knobs = replace(
                    sim.knobs, memory_mb=mem, batch_size=batch, maximum_concurrency=mc, batching_window_s=window
                )
                s = Simulation(sim.scenario, sim.calibration, knobs).run()
                d = s["simulation"]
                e2e = s["latency_ms"]["e2e"]
                rows.append(
                    {
                        "memory_mb": mem,
                        "batch_size": batch,
                        "maximum_concurrency": mc,
                        "service_rate_per_s": s["pipeline"].get("service_rate_per_s"),
                        "e2e_p50_ms": e2e["p50"],
                        "e2e_p99_ms": e2e["p99"],
                        "max_queue_depth": d["max_queue_depth"],
                        "max_oldest_age_s": d["max_oldest_age_s"],
                        "drain_s": s["pipeline"].get("drain_s"),
                        "throttled": d["throttled_invocations"],
                        "dlq": s["accounting"]["counts"]["dlq"],
                        "expired": d["expired"],
                        "usd_per_million": s["cost"]["usd_per_million_images"],
                        "sustains": bool(d["max_queue_depth"] <= 10 * batch * mc and d["expired"] == 0),
                        "wall_s": d["wall_s"],
                    }
                )
    return {"rows": rows, "wall_s": time.perf_counter() - t0}


def sweep_markdown(result: Mapping[str, Any]) -> list[str]:
    lines = [
        "| memory MB | batch | MaxConc | service /s | e2e p50 ms | e2e p99 ms | max backlog | oldest s | "
        "drain s | throttled | DLQ | $/M images | keeps up |",
        "|" + "---|" * 13,
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['memory_mb']} | {r['batch_size']} | {r['maximum_concurrency']} | "
            f"{fmt(r['service_rate_per_s'], 1)} | {fmt(r['e2e_p50_ms'])} | {fmt(r['e2e_p99_ms'])} | "
            f"{fmt(r['max_queue_depth'])} | {fmt(r['max_oldest_age_s'], 0)} | {fmt(r['drain_s'], 0)} | "
            f"{fmt(r['throttled'])} | {fmt(r['dlq'])} | {fmt(r['usd_per_million'], 2)} | "
            f"{'yes' if r['sustains'] else 'no'} |"
        )
    lines.append("")
    lines.append(
        f"{len(result['rows'])} simulations in {result['wall_s']:.1f} s; 'keeps up' = the backlog stays "
        f"below 10 batches per allowed poller and nothing expires. Prices: table of {rules.PRICE_TABLE_DATE}."
    )
    return lines
