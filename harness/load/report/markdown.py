"""Load reports as Markdown: one run (throughput, CPU, latency, accounting, samples) and runs side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.load.report.summary import STAGES


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _stack_lines(stack: Mapping[str, Any] | None) -> list[str]:
    """Which deployed stack the run measured: "Stack X at Y" (older reports have no "stack")."""
    if not stack:
        return []
    how = "found by --target, not deployed by the run" if stack.get("outputs", {}).get("profile") == "deployed" else ""
    return [f"Stack `{stack.get('name')}` at {stack.get('endpoint')}" + (f" ({how})" if how else "") + ".", ""]


def markdown(summary: Mapping[str, Any]) -> str:
    """One run as Markdown (figures only; the PNGs sit next to it)."""
    up, pipe, acc = summary["uploads"], summary["pipeline"], summary["accounting"]
    sc = summary["scenario"]
    lines = [
        f"# Load run `{summary['run_id']}`: scenario {sc.get('name')} on {summary['backend']}",
        "",
        f"{sc.get('description', '')}".strip(),
        "",
        *_stack_lines(summary.get("stack")),
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
        lines.append(
            f"| raw resize throughput, {base.get('processes')} process(es), same inputs (images/s) | "
            f"{_fmt(base.get('images_per_s'), 2)} ({runs}) |"
        )
    load = summary.get("loadavg_1m")
    if load:
        lines.append(f"| machine load average (1 min) at start / end | {load['start']:.1f} / {load['end']:.1f} |")
    if eff and eff.get("saturated", True):
        lines.append(
            f"| **pipeline efficiency** (service rate / raw resize, pipeline saturated) | **{eff['ratio']:.2f}** |"
        )
    elif eff:
        lines.append(
            f"| pipeline efficiency | not measured: the queue was empty in {1 - eff['backlog_fraction']:.0%} "
            f"of the samples (offered load below capacity; see scenario `saturate`) |"
        )
    lines += cpu_markdown(summary.get("cpu") or {})
    lines += ["", "## Latency (ms)", "", "| stage | n | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|"]
    for name, label in STAGES:
        d = summary["latency_ms"][name]
        lines.append(
            f"| {label} | {d['n']} | {_fmt(d['p50'])} | {_fmt(d['p90'])} | {_fmt(d['p99'])} | {_fmt(d['max'])} |"
        )
    c = acc["counts"]
    lines += [
        "",
        "## Accounting",
        "",
        f"Every accepted upload in exactly one outcome: **{'yes' if acc['invariant_holds'] else 'NO'}** "
        f"({acc['expected']} expected = {c['complete']} complete + {c['dlq']} DLQ + {c['missing']} missing).",
        "",
        f"- lost (missing, nothing left to wait for): **{acc['lost']}**",
        f"- still queued or in flight when observed (not lost; the run did not drain): "
        f"**{acc.get('still_queued', 0)}**",
        f"- DLQ by code: {acc['dlq_codes'] or 'none'}",
        f"- by cause: {'; '.join(f'{k} **{v}**' for k, v in (acc.get('causes') or {}).items()) or 'none'}",
        f"- duplicates: {acc['duplicates']} ({acc['unexplained_duplicates']} unexplained)",
        f"- strays (thumbnails/DLQ of this run for no accepted upload): {acc['stray_count']}",
        f"- conflicts (complete and in the DLQ): {len(acc['conflicts'])}; "
        f"partial thumbnail sets: {len(acc['partial'])}",
        f"- handler logs read: {acc['logs_read']}; settled before the deadline: {summary.get('settled')}",
    ]
    for note in acc["notes"]:
        lines.append(f"- note: {note}")
    lines += fault_lines(summary.get("faults"))
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
    lines.append(
        f"- **emulator CPU {_fmt(per['emulator'], 1)} ms/upload beside resize CPU {_fmt(per['resize_raw'], 1)} "
        f"ms/upload** (emulator / resize = {_fmt(cpu.get('emulator_over_resize'), 2)})"
    )
    if cpu.get("utilisation") is not None:
        lines.append(f"- machine utilisation in the window: {cpu['utilisation']:.0%} of {cpu['cores']} cores")
    if cpu.get("ceiling") is not None:
        lines.append(
            f"- **efficiency ceiling on {cpu['cores']} cores** = resize / (resize + emulator + handler "
            f"overhead) = {_fmt(per['resize_raw'], 1)} / ({_fmt(per['emulator'], 1)} + "
            f"{_fmt(per['runtimes'], 1)}) = **{cpu['ceiling']:.2f}**; charging this harness's CPU too: "
            f"{cpu['ceiling_with_harness']:.2f}"
        )
    if cpu.get("predicted_efficiency") is not None:
        lines.append(
            f"- the pipeline and this harness kept {cpu['our_utilisation']:.0%} of the {cpu['cores']} cores "
            f"busy: expected wall-clock efficiency = ceiling with harness x that share = "
            f"{cpu['ceiling_with_harness']:.2f} x {cpu['our_utilisation']:.2f} = "
            f"**{cpu['predicted_efficiency']:.2f}**"
        )
    if cpu.get("measured_efficiency") is not None:
        predicted = cpu.get("predicted_efficiency")
        lines.append(
            f"- measured (wall-clock) efficiency {cpu['measured_efficiency']:.2f}"
            + (
                f" vs {predicted:.2f} predicted from CPU: far apart means the baseline and the run met "
                f"different neighbours"
                if predicted is not None
                else ""
            )
        )
    share = cpu.get("other_share")
    if share is not None and share > 0.1 and cpu.get("measured_efficiency") is not None:
        lines.append(
            f"- other processes used {share:.0%} of the machine's busy CPU in the window: the wall-clock "
            f"efficiency depends on what they did during the baseline vs the run; the CPU figures much less"
        )
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
    row(
        "pipeline efficiency",
        lambda s: s["efficiency"].get("ratio") if s["efficiency"].get("saturated", True) else None,
        2,
    )
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
    for cause in sorted({c for s in summaries for c in (s["accounting"].get("causes") or {})}):
        row(cause, lambda s, c=cause: (s["accounting"].get("causes") or {}).get(c, 0))
    row("unexplained duplicates", lambda s: s["accounting"]["unexplained_duplicates"])
    return "# Side by side\n\n" + "\n".join(rows) + "\n"


def fault_lines(faults: Mapping[str, Any] | None) -> list[str]:
    """The [faults] figures of a run (harness.load.faults): what fired, kills, and the duplicate writes' bytes."""
    if not faults:
        return []
    return [
        f"- faults: {faults['injected'] or 'none'} injected in {faults['proxy_requests']} S3 requests of the function "
        f"({faults['injected_rate'] * 100:.2f} %), {faults['client_retries']} client retries; "
        f"{faults['runtimes_killed']} runtime(s) SIGKILLed in {faults['kills']} kill(s)",
        f"- duplicate thumbnail writes: {faults['duplicate_writes']}, all byte-identical: "
        f"**{'yes' if faults['duplicates_identical'] else 'NO'}**",
    ]
