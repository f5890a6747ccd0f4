"""Load reports: figures from uploads + accounting + samples, written as JSON, Markdown and PNG plots."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.load.cpu import CpuReading, summarize_cpu
from harness.load.generator import GenerationResult, UploadRecord
from harness.load.observe import Accounting, Outcome, Sample, UploadOutcome

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


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of a sequence; None when empty."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


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


def _rate_series(times_ms: Sequence[float], t0_ms: float, bin_s: float = 1.0) -> list[tuple[float, float]]:
    if not times_ms:
        return []
    bins = Counter(int((t - t0_ms) / 1000 / bin_s) for t in times_ms)
    last = max(bins)
    return [(i * bin_s, bins.get(i, 0) / bin_s) for i in range(0, last + 1)]


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
    cpu = summarize_cpu(cpu_readings, min(starts) if starts else None, max(done_times) if done_times else None,
                        len(complete), resize_cpu_ms, cores or int((baseline or {}).get("processes") or 1))
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
            "accepted_per_s": _rate_series(acked, t0),
            "completed_per_s": _rate_series(done_times, t0),
        },
        "cdf_ms": {name: sorted(vals) for name, vals in stages.items() if name in ("e2e", "to_handler", "handler",
                                                                                   "resize", "overhead")},
        **dict(extra or {}),
    }


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(summary: Mapping[str, Any]) -> str:
    """One run as Markdown (figures only; the PNGs sit next to it)."""
    up, pipe, acc = summary["uploads"], summary["pipeline"], summary["accounting"]
    sc = summary["scenario"]
    lines = [
        f"# Load run `{summary['run_id']}`: scenario {sc.get('name')} on {summary['backend']}",
        "",
        f"{sc.get('description', '')}".strip(),
        "",
        "## Throughput",
        "",
        "| figure | value |",
        "|---|---|",
        f"| uploads planned / accepted | {up['planned']} / {up['accepted']} |",
        f"| failed or not sent | {up['failed'] or 0} |",
        f"| uploads/s accepted (over {up['generation_s']:.1f} s of generation) | {up['accepted_per_s']:.2f} |",
        f"| uploads/s completed (first upload -> last thumbnail) | {_fmt(pipe.get('completed_per_s'), 2)} |",
        f"| thumbnails/s completed | {_fmt(pipe.get('thumbnails_per_s'), 2)} |",
        f"| pipeline service rate (uploads/s while busy) | {_fmt(pipe.get('service_rate_per_s'), 2)} |",
        f"| drain after last upload (s) | {_fmt(pipe.get('drain_s'), 1)} |",
        f"| open-loop start lag p50 / p99 (ms) | {_fmt(up['start_lag_ms']['p50'], 1)} / "
        f"{_fmt(up['start_lag_ms']['p99'], 1)} |",
    ]
    eff = summary.get("efficiency") or {}
    base = summary.get("baseline") or {}
    if base:
        runs = ", ".join(f"{r['when']} {r['images_per_s']:.2f}" for r in base.get("runs", []))
        lines.append(f"| raw resize throughput, {base.get('processes')} process(es), same inputs (images/s) | "
                     f"{_fmt(base.get('images_per_s'), 2)} ({runs}) |")
    load = summary.get("loadavg_1m")
    if load:
        lines.append(f"| machine load average (1 min) at start / end | {load['start']:.1f} / {load['end']:.1f} |")
    if eff and eff.get("saturated", True):
        lines.append(f"| **pipeline efficiency** (service rate / raw resize, pipeline saturated) | **{eff['ratio']:.2f}** |")
    elif eff:
        lines.append(f"| pipeline efficiency | not measured: the queue was empty in {1 - eff['backlog_fraction']:.0%} "
                     f"of the samples (offered load below capacity; see scenario `saturate`) |")
    lines += cpu_markdown(summary.get("cpu") or {})
    lines += ["", "## Latency (ms)", "", "| stage | n | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|"]
    for name, label in STAGES:
        d = summary["latency_ms"][name]
        lines.append(f"| {label} | {d['n']} | {_fmt(d['p50'])} | {_fmt(d['p90'])} | {_fmt(d['p99'])} | "
                     f"{_fmt(d['max'])} |")
    c = acc["counts"]
    lines += [
        "",
        "## Accounting",
        "",
        f"Every accepted upload in exactly one outcome: **{'yes' if acc['invariant_holds'] else 'NO'}** "
        f"({acc['expected']} expected = {c['complete']} complete + {c['dlq']} DLQ + {c['missing']} missing).",
        "",
        f"- lost (missing): **{acc['lost']}**",
        f"- DLQ by code: {acc['dlq_codes'] or 'none'}",
        f"- duplicates: {acc['duplicates']} ({acc['unexplained_duplicates']} unexplained)",
        f"- strays (thumbnails/DLQ of this run for no accepted upload): {acc['stray_count']}",
        f"- conflicts (complete and in the DLQ): {len(acc['conflicts'])}; partial thumbnail sets: {len(acc['partial'])}",
        f"- handler logs read: {acc['logs_read']}; settled before the deadline: {summary.get('settled')}",
    ]
    for note in acc["notes"]:
        lines.append(f"- note: {note}")
    for d in acc["duplicate_details"][:10]:
        lines.append(f"- duplicate `{d['key']}`: {d['explanation']}")
    samples = summary.get("samples") or []
    if samples:
        envs = [s["environments"] for s in samples if s["environments"] is not None]
        lines += [
            "",
            "## Pipeline state (sampled)",
            "",
            f"- samples: {len(samples)}; max queue depth {max(s['visible'] for s in samples)}, max in flight "
            f"{max(s['in_flight'] for s in samples)}, max DLQ depth {max(s['dlq_visible'] for s in samples)}, "
            f"max running environments {max(envs) if envs else 'n/a'}",
        ]
    lines += ["", "![latency CDF](latency_cdf.png)", "![throughput](throughput.png)", "![queue](queue_depth.png)", ""]
    return "\n".join(lines)


def cpu_markdown(cpu: Mapping[str, Any]) -> list[str]:
    """The 'where the CPU goes' section: CPU ms per completed upload by process, and the ceiling it implies."""
    if not cpu:
        return []
    per = cpu["per_image_ms"]
    lines = [
        "",
        "## Where the CPU goes (measured)",
        "",
        f"CPU time (utime+stime from /proc, children excluded) over the busy window of {cpu['window_s']:.1f} s "
        f"(first handler start -> last thumbnail), divided by the {cpu['completed']} completed uploads.",
        "",
        "| consumer | CPU ms per completed upload |",
        "|---|---|",
        f"| raw resize (baseline process CPU, same inputs) | {_fmt(per['resize_raw'], 1)} |",
        f"| Lambda runtimes ({cpu['runtime_processes']} process(es): resize + handler overhead) | "
        f"{_fmt(per['runtimes'], 1)} |",
        f"| of which handler overhead (runtimes minus raw resize) | {_fmt(per['handler_overhead'], 1)} |",
        f"| emulator (LocalStack: S3, SQS, notifications, event source polling, Lambda service) | "
        f"{_fmt(per['emulator'], 1)} |",
        f"| this harness (load generator uploads, sampler) | {_fmt(per['harness'], 1)} |",
        f"| everything else on the machine (neighbours, kernel) | {_fmt(per['other'], 1)} |",
        f"| machine busy, all processes | {_fmt(per['machine_busy'], 1)} |",
        "",
    ]
    if cpu.get("utilisation") is not None:
        lines.append(f"- machine utilisation in the window: {cpu['utilisation']:.0%} of {cpu['cores']} cores")
    if cpu.get("ceiling") is not None:
        lines.append(f"- **efficiency ceiling on {cpu['cores']} cores** = resize / (resize + emulator + handler "
                     f"overhead) = {_fmt(per['resize_raw'], 1)} / ({_fmt(per['emulator'], 1)} + "
                     f"{_fmt(per['runtimes'], 1)}) = **{cpu['ceiling']:.2f}**; charging this harness's CPU too: "
                     f"{cpu['ceiling_with_harness']:.2f}")
    if cpu.get("predicted_efficiency") is not None:
        lines.append(f"- the pipeline and this harness kept {cpu['our_utilisation']:.0%} of the {cpu['cores']} cores "
                     f"busy: expected wall-clock efficiency = ceiling with harness x that share = "
                     f"{cpu['ceiling_with_harness']:.2f} x {cpu['our_utilisation']:.2f} = "
                     f"**{cpu['predicted_efficiency']:.2f}**")
    if cpu.get("measured_efficiency") is not None:
        predicted = cpu.get("predicted_efficiency")
        lines.append(f"- measured (wall-clock) efficiency {cpu['measured_efficiency']:.2f}"
                     + (f" vs {predicted:.2f} predicted from CPU: far apart means the baseline and the run met "
                        f"different neighbours" if predicted is not None else ""))
    share = cpu.get("other_share")
    if share is not None and share > 0.1 and cpu.get("measured_efficiency") is not None:
        lines.append(f"- other processes used {share:.0%} of the machine's busy CPU in the window: the wall-clock "
                     f"efficiency depends on what they did during the baseline vs the run; the CPU figures much less")
    return lines


def comparison_markdown(summaries: Sequence[Mapping[str, Any]]) -> str:
    """Runs of the same scenario on several backends, side by side."""
    head = "| figure | " + " | ".join(f"{s['backend']} (`{s['run_id']}`)" for s in summaries) + " |"
    rows = [head, "|---|" + "---|" * len(summaries)]

    def row(label: str, getter: Any, digits: int = 1) -> None:
        vals = []
        for s in summaries:
            try:
                vals.append(_fmt(getter(s), digits))
            except (KeyError, TypeError):
                vals.append("n/a")
        rows.append(f"| {label} | " + " | ".join(vals) + " |")

    row("accepted uploads", lambda s: s["uploads"]["accepted"])
    row("uploads/s accepted", lambda s: s["uploads"]["accepted_per_s"], 2)
    row("uploads/s completed", lambda s: s["pipeline"].get("completed_per_s"), 2)
    row("thumbnails/s completed", lambda s: s["pipeline"].get("thumbnails_per_s"), 2)
    row("service rate (uploads/s busy)", lambda s: s["pipeline"].get("service_rate_per_s"), 2)
    row("raw resize images/s", lambda s: s["baseline"].get("images_per_s"), 2)
    row("pipeline efficiency", lambda s: s["efficiency"].get("ratio") if s["efficiency"].get("saturated", True)
        else None, 2)
    row("CPU ms/upload: raw resize", lambda s: s["cpu"]["per_image_ms"]["resize_raw"], 1)
    row("CPU ms/upload: Lambda runtimes", lambda s: s["cpu"]["per_image_ms"]["runtimes"], 1)
    row("CPU ms/upload: emulator", lambda s: s["cpu"]["per_image_ms"]["emulator"], 1)
    row("CPU ms/upload: harness", lambda s: s["cpu"]["per_image_ms"]["harness"], 1)
    row("CPU ms/upload: other", lambda s: s["cpu"]["per_image_ms"]["other"], 1)
    row("machine utilisation", lambda s: s["cpu"]["utilisation"], 2)
    row("efficiency ceiling (CPU)", lambda s: s["cpu"]["ceiling"], 2)
    row("cores used by pipeline + harness", lambda s: s["cpu"]["our_utilisation"], 2)
    row("efficiency predicted from CPU", lambda s: s["cpu"]["predicted_efficiency"], 2)
    for stage in ("e2e", "to_handler", "handler", "resize", "overhead", "overhead_after_put"):
        for q in ("p50", "p99"):
            row(f"{stage} {q} (ms)", lambda s, st=stage, qq=q: s["latency_ms"][st][qq], 0)
    row("complete", lambda s: s["accounting"]["counts"]["complete"])
    row("DLQ", lambda s: s["accounting"]["counts"]["dlq"])
    row("lost", lambda s: s["accounting"]["lost"])
    row("unexplained duplicates", lambda s: s["accounting"]["unexplained_duplicates"])
    return "# Side by side\n\n" + "\n".join(rows) + "\n"


def plot(summary: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """latency_cdf.png, throughput.png, queue_depth.png (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    title = f"{summary['scenario'].get('name')} / {summary['backend']}"
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, vals in summary["cdf_ms"].items():
        if vals:
            ax.plot(vals, [(i + 1) / len(vals) for i in range(len(vals))], label=name)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("ms")
    ax.set_ylabel("fraction of uploads")
    ax.set_title(f"Latency CDF: {title}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    written.append(out_dir / "latency_cdf.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, series in summary["series"].items():
        if series:
            ax.plot([t for t, _ in series], [v for _, v in series], label=name.replace("_", " "))
    ax.set_xlabel("s since start")
    ax.set_ylabel("uploads/s (1 s bins)")
    ax.set_title(f"Throughput: {title}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    written.append(out_dir / "throughput.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    samples = summary.get("samples") or []
    t0 = summary["started_ms"]
    if samples:
        ts = [(s["t_ms"] - t0) / 1000 for s in samples]
        ax.plot(ts, [s["visible"] for s in samples], label="queue visible")
        ax.plot(ts, [s["in_flight"] for s in samples], label="in flight")
        ax.plot(ts, [s["dlq_visible"] for s in samples], label="DLQ")
        envs = [s["environments"] for s in samples]
        if any(e is not None for e in envs):
            ax2 = ax.twinx()
            ax2.step(ts, [e if e is not None else float("nan") for e in envs], color="grey", where="post",
                     label="environments")
            ax2.set_ylabel("running environments")
            ax2.legend(loc="upper right")
    ax.set_xlabel("s since start")
    ax.set_ylabel("messages")
    ax.set_title(f"Queue depth: {title}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    written.append(out_dir / "queue_depth.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written


def write(summary: Mapping[str, Any], out_dir: Path, *, plots: bool = True) -> list[Path]:
    """report.json, report.md and the PNGs into out_dir (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md"]
    paths[0].write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    paths[1].write_text(markdown(summary), encoding="utf-8")
    if plots:
        paths += plot(summary, out_dir)
    return paths
