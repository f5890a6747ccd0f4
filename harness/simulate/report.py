"""Simulation reports: Markdown (with the AWS rules table and the assumptions), JSON and PNG charts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.load.report.charts import latency_cdf
from harness.simulate import rules
from harness.simulate.metrics import fmt

STAGES = (
    ("e2e", "upload start -> thumbnails written"),
    ("enqueue", "upload start -> message visible (PUT + notification, measured)"),
    ("queue_wait", "message visible -> handler start (batching window, backlog, pollers)"),
    ("to_handler", "upload start -> handler start"),
    ("in_handler", "handler (batch) start -> record done"),
)


def assumptions(summary: Mapping[str, Any]) -> list[str]:
    """What the figures rest on that was not measured in this run."""
    k = summary["knobs"]
    cal = summary["calibration"]
    out = [
        f"service times: resize CPU per input class measured on this machine with the {cal['backend']} backend, "
        f"plus {cal['handler_overhead_cpu_ms']:.1f} ms of handler CPU per record (calibration: {cal['source']})"
    ]
    if summary["mode"] == "aws":
        out += [
            f"Lambda CPU: a core as fast as this machine's x {k['cpu_speed_factor']} (unknown: a model), "
            f"share = memory / {rules.FULL_VCPU_MB} MB at {k['memory_mb']} MB",
            f"S3 latency per record (GET + thumbnail PUTs): {k['s3_io_ms']:.0f} ms; invoke overhead per batch "
            f"{k['invoke_overhead_ms']:.0f} ms; cold start {k['cold_start_ms']:.0f} ms (not billed) -- assumptions",
            "S3 -> SQS notification delay as measured on the emulator (AWS may add more)",
            f"account concurrency {k['account_concurrency']}, other functions use {k['other_concurrency']}, "
            f"reserved concurrency {k['reserved_concurrency'] or 'none'}",
            "one event source mapping, standard queue, no provisioned concurrency, no provisioned ESM mode",
        ]
    else:
        out += [
            f"{k['cores']} cores shared by every busy environment, the emulator ({cal['emulator_cpu_ms']:.1f} ms CPU "
            f"per image, half of it at upload time), the load generator ({cal['harness_cpu_ms']:.1f} ms per upload) "
            f"and the neighbours measured in the calibration run ({cal['other_cores']:.2f} cores)",
            "MaximumConcurrency lanes from the start (the executor), no throttling, no cold starts after the first",
        ]
    rate = k["retryable_rate"] or cal.get("retryable_rate") or 0
    out.append(
        f"retryable failures per attempt: {rate:.3f}; permanent failures: "
        + (f"{k['permanent_rate']:.3f} per upload" if k["permanent_rate"] >= 0 else "the corpus' bad-* inputs")
    )
    out += [f"calibration note: {n}" for n in cal.get("notes", [])]
    return out


def markdown(summary: Mapping[str, Any], lint: Sequence[str] = ()) -> str:
    sc = summary["scenario"]
    k = summary["knobs"]
    sim = summary["simulation"]
    pipe = summary["pipeline"]
    up = summary["uploads"]
    acc = summary["accounting"]
    cost = summary["cost"]
    mc = k["maximum_concurrency"] if k["maximum_concurrency"] is not None else "not set"
    lines = [
        f"# Simulation: scenario {sc.get('name')} on {summary['backend']} ({summary['mode']})",
        "",
        f"{sc.get('description', '')}".strip()
        + (
            ""
            if k["rate"] is None and k["count"] is None and k["duration_s"] is None
            else " -- simulated with "
            + ", ".join(f"{n} {k[n]:g}" for n in ("rate", "duration_s", "count") if k[n] is not None)
            + f" ({sc['profile']['kind']} profile)"
        ),
        "",
        f"Settings: batch {k['batch_size']}, window {k['batching_window_s']:g} s, MaximumConcurrency {mc}, "
        f"reserved {k['reserved_concurrency'] or 'none'}, visibility {k['visibility_timeout_s']:g} s, "
        f"maxReceiveCount {k['max_receive_count']}, retention {k['queue_retention_s']:g} s, memory "
        f"{k['memory_mb']} MB {k['arch']}, timeout {k['function_timeout_s']:g} s.",
        "",
        "## Throughput",
        "",
        "| figure | value |",
        "|---|---|",
        f"| uploads (over {up['generation_s']:.1f} s) | {fmt(up['planned'])} ({fmt(up['accepted_per_s'], 1)}/s) |",
        f"| uploads/s completed (first upload -> last thumbnail) | {fmt(pipe.get('completed_per_s'), 2)} |",
        f"| pipeline service rate (uploads/s while busy) | {fmt(pipe.get('service_rate_per_s'), 2)} |",
        f"| drain after last upload (s) | {fmt(pipe.get('drain_s'), 1)} |",
        f"| max queue depth (visible) / in flight | {fmt(sim['max_queue_depth'])} / {fmt(sim['max_in_flight'])} |",
        f"| max age of the oldest message (s) | {fmt(sim['max_oldest_age_s'], 1)} |",
        f"| max concurrency / environments / pollers | {fmt(sim['max_concurrency'])} / "
        f"{fmt(sim['max_environments'])} / {fmt(sim['max_pollers'])} |",
        f"| invocations (mean batch) | {fmt(sim['invocations'])} ({sim['mean_batch']:.2f}) |",
        f"| throttled invocations (messages) | {fmt(sim['throttled_invocations'])} "
        f"({fmt(sim['throttled_messages'])}) |",
        f"| redeliveries / duplicates / visibility expired | {fmt(sim['redeliveries'])} / {fmt(sim['duplicates'])} "
        f"/ {fmt(sim['visibility_expired'])} |",
        f"| cold starts / timeouts / S3 503s | {fmt(sim['cold_starts'])} / {fmt(sim['timeouts'])} / "
        f"{fmt(sim['s3_throttles'])} |",
        f"| **cost per million images** ({cost['arch']}, {cost['memory_mb']} MB; {cost['includes']}) | "
        f"**${fmt(cost['usd_per_million_images'], 2)}** (run: ${fmt(cost['usd_total'], 2)}, "
        f"{fmt(cost['gb_s'], 0)} GB-s, {fmt(cost['requests'])} requests) |",
        f"| simulated time / events / wall time of the simulation | {fmt(sim['simulated_s'], 0)} s / "
        f"{fmt(sim['events'])} / {sim['wall_s']:.2f} s |",
        "",
        "## Latency (ms)",
        "",
        "| stage | n | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in STAGES:
        d = summary["latency_ms"][name]
        lines.append(
            f"| {label} | {fmt(d['n'])} | {fmt(d['p50'])} | {fmt(d['p90'])} | {fmt(d['p99'])} | {fmt(d['max'])} |"
        )
    c = acc["counts"]
    lines += [
        "",
        "## Accounting",
        "",
        f"{fmt(acc['expected'])} uploads = {fmt(c['complete'])} complete + {fmt(c['dlq'])} DLQ + "
        f"{fmt(c['missing'])} missing (expired past the retention: {fmt(sim['expired'])}; unresolved at the "
        f"horizon: {fmt(sim['unresolved'])}). DLQ by code: {acc['dlq_codes']}.",
    ]
    if lint:
        lines += ["", "## What these settings cannot sustain", ""] + [f"- {s}" for s in lint]
    lines += ["", "## Assumptions", ""] + [f"- {a}" for a in assumptions(summary)]
    lines += ["", "## AWS rules applied", ""] + rules.rules_markdown()
    lines += ["", "![backlog](backlog.png)", "![concurrency](concurrency.png)", "![latency CDF](latency_cdf.png)", ""]
    return "\n".join(lines)


def plot(summary: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """backlog.png (queue depth, in flight, oldest age), concurrency.png, latency_cdf.png (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary["series"]
    title = f"{summary['scenario'].get('name')} / {summary['backend']} ({summary['mode']})"
    written: list[Path] = []

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(s["t"], s["visible"], label="queue visible")
    ax.plot(s["t"], s["in_flight"], label="in flight")
    ax.plot(s["t"], s["dlq"], label="DLQ")
    ax.set_xlabel("s since start")
    ax.set_ylabel("messages")
    ax2 = ax.twinx()
    ax2.plot(s["t"], s["oldest_age_s"], color="grey", linestyle="--", label="oldest message age (s)")
    ax2.set_ylabel("age of the oldest message (s)")
    ax.set_title(f"Backlog: {title}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    ax2.legend(loc="upper right")
    fig.tight_layout()
    written.append(out_dir / "backlog.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.step(s["t"], s["concurrency"], where="post", label="concurrent invocations")
    ax.step(s["t"], s["pollers"], where="post", label="mapping pollers")
    ax.step(s["t"], s["environments"], where="post", label="environments")
    ax2 = ax.twinx()
    ax2.plot(s["t"], s["throttles"], color="red", label="throttled invocations (cumulative)")
    ax2.set_ylabel("throttles")
    ax.set_xlabel("s since start")
    ax.set_ylabel("count")
    ax.set_title(f"Concurrency: {title}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    ax2.legend(loc="lower right")
    fig.tight_layout()
    written.append(out_dir / "concurrency.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    written.append(latency_cdf(summary["cdf_ms"], title, out_dir / "latency_cdf.png", quantiles=True))
    return written


def write(summary: Mapping[str, Any], out_dir: Path, *, lint: Sequence[str] = (), plots: bool = True) -> list[Path]:
    """report.json, report.md and the PNGs into out_dir (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md"]
    paths[0].write_text(json.dumps({**summary, "lint": list(lint)}, indent=1, default=str), encoding="utf-8")
    paths[1].write_text(markdown(summary, lint), encoding="utf-8")
    if plots:
        paths += plot(summary, out_dir)
    return paths
