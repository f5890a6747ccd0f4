"""The pipeline bench's results dict -> Markdown (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.pipeline.model import cpu_floor_ms, resize_threads
from thumbnailer.pipeline import resize_workers_for


def _f(v: Any, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _verdict(t: Mapping[str, Any]) -> str:
    return "n/a" if t.get("met") is None else ("met" if t["met"] else "MISSED")


def _vs_cpu(point: Mapping[str, Any], billed: Any, name: str, threads: int) -> float | None:
    """Overlapped billed ms/image over `name` (CPU ms/image of `point`) at its CPU share on `threads` threads."""
    mem = point.get("memory_mb")
    if not billed or not mem:
        return None
    floor = cpu_floor_ms(point.get(name), int(mem), threads)
    return None if floor is None else float(billed) / floor


def summary(results: Mapping[str, Any]) -> str:
    """A few lines for the terminal: the recommendations and the target verdicts."""
    lines = []
    for b, r in results.get("recommendations", {}).items():
        lines.append(
            f"{b}: recommended {r['memory_mb']} MB at ${_f(r['usd_per_million'], 2)} per million images ({r['arch']});"
            f" knee {r['knee_mb'] or 'none'}"
            + (
                f"; cheapest below the {r['floor_mb']} MB floor: {r['cheapest_any_mb']} MB "
                f"(${_f(r.get('cheapest_any_usd'), 2)})"
                if r.get("floor_mb") and r.get("cheapest_any_mb") and r["cheapest_any_mb"] < r["floor_mb"]
                else ""
            )
        )
    for t in results.get("targets", []):
        lines.append(f"  [{_verdict(t)}] {t['backend']}: {t['target']}: {_f(t['measured'], 3)} (limit {t['limit']})")
    return "\n".join(lines)


def markdown(results: Mapping[str, Any], *, chart_name: str = "power-tuning.png") -> str:
    out = [f"# Pipeline bench ({results.get('started', '')})", ""]
    out.append(f"Mode: **{results.get('mode')}**. {results.get('note', '')}")
    t = results.get("target") or {}
    out.append(
        f"Stack `{t.get('name')}` at {t.get('endpoint')}. Input `{results.get('input')}` "
        f"({results.get('input_bytes')} bytes), batches of {results.get('batch_size')}, "
        f"{results.get('rounds')} paired round(s) x {results.get('batches_per_block')} batch(es) per block; "
        f"prices {results.get('arch')}. Elapsed {results.get('elapsed_s')} s."
    )
    lat = results.get("latency_model")
    if lat:
        out.append(
            f"S3 latency model: GET first byte {lat['get_first_byte_ms']} ms + bytes at {lat['get_mb_per_s']} MB/s, "
            f"PUT first byte {lat['put_first_byte_ms']} ms + bytes at {lat['put_mb_per_s']} MB/s "
            f"({results.get('latency_s_added')} s added in total). Sources: " + "; ".join(lat.get("sources", []))
        )
    else:
        out.append("S3 latency model: none (a deployed target: its S3 is what it is).")
    out.append(f"CPU share: {results.get('cpu_share')}.")
    if results.get("memory_floor_mb"):
        out.append(
            f"Memory floor: {results['memory_floor_mb']} MB, what the largest image the function accepts needs "
            f"(THUMB_MAX_PIXELS {results.get('max_pixels', 0):,}; the stack linter's estimate): smaller sizes are "
            "measured and charted, not recommended."
        )
    out += ["", f"![Power Tuning chart]({chart_name})", "", "## Recommendation per backend", ""]
    out.append("| backend | memory | USD / million images | p50 billed ms/image | knee | reason |")
    out.append("|---|---|---|---|---|---|")
    for b, r in results.get("recommendations", {}).items():
        out.append(
            f"| {b} | {r['memory_mb']} MB | {_f(r['usd_per_million'], 2)} | {_f(r['billed_ms_per_image_p50'])} | "
            f"{(str(r['knee_mb']) + ' MB') if r['knee_mb'] else 'none' + (' (flat)' if r['flat'] else '')} | "
            f"{r['reason']} |"
        )
    out += ["", "## Billed ms per image, sequential vs overlapped (same run, paired rounds)", ""]
    out.append(
        "| backend | memory MB | seq p50 | seq p99 | overlap p50 | overlap p99 | overlap/seq (paired) | "
        "resize ms/image (seq) | resize CPU ms/image (seq) | overlap / resize CPU ms at the share | "
        "CPU ms/image seq / overlap | S3 client CPU ms/image seq / overlap | overlap / its CPU ms at the share | "
        "USD/M seq | USD/M overlap | max memory used MB (overlap) |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    arch = results.get("arch", "x86_64")
    ratios = results.get("paired_ratio_overlap_vs_sequential", {})
    for b, modes in results.get("curves", {}).items():
        seq = {p["memory_mb"]: p for p in modes.get("sequential", [])}
        ovl = {p["memory_mb"]: p for p in modes.get("overlap", [])}
        for m in sorted(set(seq) | set(ovl)):
            s, o = seq.get(m, {}), ovl.get(m, {})
            billed = o.get("billed_ms_per_image_p50")
            out.append(
                f"| {b} | {m} | {_f(s.get('billed_ms_per_image_p50'))} | {_f(s.get('billed_ms_per_image_p99'))} | "
                f"{_f(o.get('billed_ms_per_image_p50'))} | {_f(o.get('billed_ms_per_image_p99'))} | "
                f"{_f(ratios.get(b, {}).get(str(m)), 3)} | {_f(s.get('resize_ms_per_image'))} | "
                f"{_f(s.get('resize_cpu_ms_per_image'))} | "
                f"{_f(_vs_cpu(s, billed, 'resize_cpu_ms_per_image', resize_threads(b, m)), 2)} | "
                f"{_f(s.get('cpu_ms_per_image'))} / {_f(o.get('cpu_ms_per_image'))} | "
                f"{_f(s.get('s3_cpu_ms_per_image'))} / {_f(o.get('s3_cpu_ms_per_image'))} | "
                f"{_f(_vs_cpu(o, billed, 'cpu_ms_per_image', resize_workers_for(m) * resize_threads(b, m)), 2)} | "
                f"{_f((s.get('usd_per_million') or {}).get(arch), 2)} | "
                f"{_f((o.get('usd_per_million') or {}).get(arch), 2)} | "
                f"{o.get('max_memory_used_mb', 'n/a')} |"
            )
    out += ["", "## Targets (benchmarks, not tests)", ""]
    out.append("| target | backend | measured | limit | verdict | margin vs limit | note |")
    out.append("|---|---|---|---|---|---|---|")
    for v in results.get("targets", []):
        margin = "n/a" if v.get("margin_pct") is None else f"{v['margin_pct']:+.1f} %"
        out.append(
            f"| {v['target']} | {v['backend']} | {_f(v.get('measured'), 3)} {v['unit']} | {v['limit']} | "
            f"{_verdict(v)} | {margin} | {v.get('note', '')} |"
        )
    out.append("")
    return "\n".join(out)
