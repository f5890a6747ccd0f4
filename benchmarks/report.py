"""Results -> product-target verdicts and the Markdown summary (pure: a results dict in, text out)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

BACKENDS = ("pillow", "vips")
REFERENCES = ("sharp", "floor")
VARIANT_ORDER = ("pillow", "vips", "sharp", "floor")
TARGET_INPUTS = ("jpeg-12mp", "jpeg-24mp")

# Product targets (benchmarks, not tests): see issue 5.
BEST_VS_SHARP_MIN_THROUGHPUT = 1.10  # best backend's throughput >= 1.1 x sharp's
BEST_VS_FLOOR_MAX = 1.35  # best backend's time <= 1.35 x the floor's
PILLOW_VS_FLOOR_MAX = 2.0  # Pillow backend's time <= 2 x the floor's
# Issue 16: on every input, the best of our backends at least level with sharp (paired throughput ratio >= 1.0)
LEVEL_WITH_SHARP_MIN_THROUGHPUT = 1.0


def _fmt(v: Any, digits: int = 1, suffix: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isinf(v):
            return "∞"
        return f"{v:.{digits}f}{suffix}"
    return f"{v}{suffix}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def basis_of(results: Mapping[str, Any]) -> str:
    """What the headline compares: "cpu" (CPU ms of the single-threaded job) or "wall" (elapsed ms)."""
    return str(results.get("config", {}).get("ratio_basis", "cpu"))


def medians(results: Mapping[str, Any], basis: str = "cpu") -> dict[tuple[str, str], float]:
    out = {}
    for row in results.get("timing", {}).get("results", []):
        if row.get("ok") and row.get(f"{basis}_ms"):
            out[(row["variant"], row["input"])] = float(row[f"{basis}_ms"]["median"])
    return out


def ratio_rows(results: Mapping[str, Any], basis: str = "cpu") -> dict[tuple[str, str, str], Mapping[str, Any]]:
    return {
        (r["variant"], r["input"], r["vs"]): r for r in results.get("ratios", []) if r.get("basis", "wall") == basis
    }


def best_backend(med: Mapping[tuple[str, str], float], input_id: str, backends: Sequence[str] = BACKENDS) -> str | None:
    have = [(med[(b, input_id)], b) for b in backends if (b, input_id) in med]
    return min(have)[1] if have else None


def evaluate_targets(
    results: Mapping[str, Any], inputs: Sequence[str] = TARGET_INPUTS, basis: str | None = None
) -> list[dict[str, Any]]:
    """One verdict per target x input: measured value, limit, met, and the margin (how much better or worse)."""
    basis = basis or basis_of(results)
    med = medians(results, basis)
    ratios = ratio_rows(results, basis)
    verdicts: list[dict[str, Any]] = []

    def add(
        kind: str,
        name: str,
        input_id: str,
        variant: str | None,
        measured: float | None,
        limit: float,
        higher_is_better: bool,
        unit: str,
        missing: str,
    ) -> None:
        v: dict[str, Any] = {
            "kind": kind,
            "target": name,
            "input": input_id,
            "variant": variant,
            "limit": limit,
            "unit": unit,
            "basis": basis,
        }
        if measured is None:
            v.update(measured=None, met=None, margin_pct=None, note=missing)
        else:
            met = measured >= limit if higher_is_better else measured <= limit
            # margin > 0: better than the target by that much; < 0: missed by that much (relative to the limit)
            margin = (measured / limit - 1.0) if higher_is_better else (1.0 - measured / limit)
            v.update(measured=round(measured, 3), met=met, margin_pct=round(margin * 100, 1), note="")
        verdicts.append(v)

    for input_id in inputs:
        best = best_backend(med, input_id)
        sharp_r = ratios.get((best, input_id, "sharp")) if best else None
        add(
            "best_vs_sharp",
            f"best backend >= {BEST_VS_SHARP_MIN_THROUGHPUT}x sharp throughput",
            input_id,
            best,
            sharp_r["throughput"] if sharp_r else None,
            BEST_VS_SHARP_MIN_THROUGHPUT,
            True,
            "x",
            "no sharp measurement (node or sharp missing)" if best else "no backend measurement",
        )
        floor_r = ratios.get((best, input_id, "floor")) if best else None
        add(
            "best_vs_floor",
            f"best backend <= {BEST_VS_FLOOR_MAX}x floor time",
            input_id,
            best,
            floor_r["median"] if floor_r else None,
            BEST_VS_FLOOR_MAX,
            False,
            "x",
            "no floor measurement",
        )
        pil_r = ratios.get(("pillow", input_id, "floor"))
        add(
            "pillow_vs_floor",
            f"pillow <= {PILLOW_VS_FLOOR_MAX}x floor time",
            input_id,
            "pillow",
            pil_r["median"] if pil_r else None,
            PILLOW_VS_FLOOR_MAX,
            False,
            "x",
            "no pillow/floor measurement",
        )
    for input_id in [i["id"] for i in results.get("inputs", [])] or sorted({k[1] for k in med}):
        best_pair = best_paired_vs_sharp(ratios, input_id)
        add(
            "level_with_sharp",
            f"best backend >= {LEVEL_WITH_SHARP_MIN_THROUGHPUT}x sharp paired throughput",
            input_id,
            best_pair[0] if best_pair else None,
            best_pair[1] if best_pair else None,
            LEVEL_WITH_SHARP_MIN_THROUGHPUT,
            True,
            "x",
            "no sharp measurement (node or sharp missing) or no backend measurement on this input",
        )
    return verdicts


def best_paired_vs_sharp(
    ratios: Mapping[tuple[str, str, str], Mapping[str, Any]], input_id: str, backends: Sequence[str] = BACKENDS
) -> tuple[str, float] | None:
    """(backend, paired throughput vs sharp) of the backend with the highest one: 1 / median of per-round ratios."""
    have = []
    for b in backends:
        row = ratios.get((b, input_id, "sharp"))
        if row and row.get("paired_median"):
            have.append((1.0 / float(row["paired_median"]), b))
    if not have:
        return None
    value, backend = max(have)
    return backend, value


def summary_table(results: Mapping[str, Any], basis: str | None = None) -> str:
    """The compact table (median ms per image; ratios) used at the top of summary.md and in the README.

    Cells: median `basis` ms, with the wall-clock median in brackets when the basis is CPU time."""
    basis = basis or basis_of(results)
    med = medians(results, basis)
    ratios = ratio_rows(results, basis)
    labels = {i["id"]: i["label"] for i in results.get("inputs", [])}
    variants = [v for v in VARIANT_ORDER if any(k[0] == v for k in med)]
    header = (
        ["input"]
        + [f"{v} ms" for v in variants]
        + ["best", "best vs sharp (throughput)", "best / floor", "pillow / floor", "vips / floor"]
    )
    rows = []
    for inp in results.get("inputs", []):
        i = inp["id"]
        if not any((v, i) in med for v in variants):
            continue
        best = best_backend(med, i)
        cells: list[Any] = [labels.get(i, i)]
        for v in variants:
            t = next((r for r in results["timing"]["results"] if r["variant"] == v and r["input"] == i), None)
            if t and t.get("ok"):
                main = t[f"{basis}_ms"]
                cell = f"{main['median']:.1f} ({main['min']:.0f}–{main['max']:.0f})"
                if basis == "cpu":
                    cell += f" wall {t['wall_ms']['median']:.0f}"
                cells.append(cell)
            else:
                cells.append("failed" if t else "—")

        def r(variant: str | None, vs: str, key: str, i: str = i) -> str:
            row = ratios.get((variant, i, vs)) if variant else None
            return _fmt(row[key], 2, "×") if row else "—"

        cells += [
            best or "—",
            r(best, "sharp", "throughput"),
            r(best, "floor", "median"),
            r("pillow", "floor", "median"),
            r("vips", "floor", "median"),
        ]
        rows.append(cells)
    return _table(header, rows)


def headline(results: Mapping[str, Any], inputs: Sequence[str] = TARGET_INPUTS) -> list[str]:
    """The numbers to quote: best backend vs sharp, each backend vs the floor, peak RSS on the largest JPEG,
    recommended memory per backend."""
    basis = basis_of(results)
    med = medians(results, basis)
    ratios = ratio_rows(results, basis)
    lines: list[str] = []
    parts = []
    for i in inputs:
        best = best_backend(med, i)
        r = ratios.get((best, i, "sharp")) if best else None
        if best:
            parts.append(f"{i}: {best} {_fmt(r['throughput'], 2, '×') if r else 'n/a (no sharp)'}")
    if parts:
        lines.append(f"Best backend vs sharp, throughput ({basis} time): " + "; ".join(parts) + ".")
    for b in BACKENDS:
        parts = [f"{i} {_fmt(ratios[(b, i, 'floor')]['median'], 2, '×')}" for i in inputs if (b, i, "floor") in ratios]
        if parts:
            lines.append(f"{b} vs floor (time): " + "; ".join(parts) + ".")
    big = max(
        (r for r in results.get("inputs", []) if r["id"] in inputs), key=lambda r: r.get("megapixels", 0), default=None
    )
    if big is not None:
        peaks = [
            f"{r['variant']} {_fmt(r.get('peak_mb'), 0)} MB"
            for r in results.get("rss", [])
            if r["input"] == big["id"] and r.get("ok")
        ]
        if peaks:
            lines.append(f"Peak RSS on {big['id']} (fresh process, one job): " + ", ".join(peaks) + ".")
    recs = results.get("sizing", {}).get("recommendations", [])
    if recs:
        parts = [
            f"{r['backend']} {r['arch']} {_fmt(r['memory_mb'])} MB"
            + (f" (${r['usd_per_million']:.2f}/M images)" if r.get("usd_per_million") is not None else "")
            for r in recs
        ]
        lines.append(
            f"Recommended memory (<= {_fmt(results['sizing'].get('latency_target_ms'), 0)} ms modeled): "
            + "; ".join(parts)
            + "."
        )
    return lines


def readme_section(results: Mapping[str, Any]) -> str:
    """The short, dated section for the project README: machine, summary table, the headline, target verdicts."""
    cfg = results.get("config", {})
    lines = [
        f"Latest `make bench` ({cfg.get('mode', '?')}) on this machine, {results.get('started_at', '?')}: "
        f"{_machine_line(results.get('machine', {}))}. Median {basis_of(results).upper()} ms per image over "
        f"{results.get('timing', {}).get('rounds_done', '?')} interleaved rounds (min–max in brackets).",
        "",
        summary_table(results),
        "",
    ]
    level = level_table(results)
    if level:
        lines += [level, ""]
    lines += [f"- {h}" for h in headline(results)]
    verdicts = []
    for t in results.get("targets", []):
        if t["kind"] == "level_with_sharp":
            continue  # in the table above
        if t["met"] is None:
            verdicts.append(f"{t['target']} on {t['input']}: n/a")
        else:
            verdicts.append(
                f"{t['target']} on {t['input']}: {'met' if t['met'] else 'MISSED'} "
                f"({t['measured']:.2f}×, {t['margin_pct']:+.0f} %)"
            )
    if verdicts:
        lines.append("- Targets: " + "; ".join(verdicts) + ".")
    return "\n".join(lines) + "\n"


def level_table(results: Mapping[str, Any]) -> str:
    """Issue 16's target per input: the best backend's paired throughput vs sharp (per-round range), both backends."""
    targets = [t for t in results.get("targets", []) if t["kind"] == "level_with_sharp"]
    if not targets:
        return ""
    ratios = ratio_rows(results, basis_of(results))
    labels = {i["id"]: i["label"] for i in results.get("inputs", [])}

    def paired(b: str, i: str) -> str:
        row = ratios.get((b, i, "sharp"))
        if not row or not row.get("paired_median"):
            return "—"
        lo, hi = 1.0 / row["paired_max"], 1.0 / row["paired_min"] if row["paired_min"] > 0 else math.inf
        return f"{1.0 / row['paired_median']:.2f}× ({lo:.2f}–{_fmt(hi, 2)})"

    rows = []
    for t in targets:
        i = t["input"]
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        rows.append([labels.get(i, i), paired("pillow", i), paired("vips", i), t["variant"] or "—", verdict])
    met = sum(1 for t in targets if t["met"])
    header = [
        "input",
        "pillow vs sharp (paired)",
        "vips vs sharp (paired)",
        "best",
        f"level (>= 1.0×): {met}/{len(targets)}",
    ]
    return (
        f"Paired {basis_of(results).upper()} throughput vs sharp: median of the per-round ratios (per-round range in "
        "brackets; > 1 = more images per second than sharp).\n\n" + _table(header, rows)
    )


def _machine_line(m: Mapping[str, Any]) -> str:
    return (
        f"{m.get('cpu_model', '?')}, {m.get('cpus', '?')} CPUs, {m.get('mem_gib', '?')} GiB, "
        f"{m.get('system', '?')}; load average {m.get('loadavg_start', '?')} at start, "
        f"{m.get('loadavg_end', '?')} at end (shared machine)"
    )


def render_markdown(results: Mapping[str, Any]) -> str:
    cfg = results.get("config", {})
    machine = results.get("machine", {})
    out: list[str] = []
    out.append(f"# Thumbnail benchmark: {results.get('started_at', '?')} ({cfg.get('mode', '?')})")
    out.append("")
    out.append(f"Machine: {_machine_line(machine)}.  ")
    vers = results.get("versions", {})
    out.append(
        "Versions: "
        + "; ".join(f"{v}: " + ", ".join(f"{k} {x}" for k, x in sorted(d.items())) for v, d in vers.items())
        + ".  "
    )
    out.append(
        f"Job: {cfg.get('job', '1024 px and 256 px boxes, JPEG q80 (WebP q80 for alpha)')}; "
        f"{results.get('timing', {}).get('rounds_done', '?')} interleaved rounds after "
        f"{results.get('timing', {}).get('warmup', '?')} warm-up; wall time {results.get('seconds', 0):.0f} s."
    )
    out.append("")
    out.append("## What is measured and what is modeled")
    out.append("")
    out.append(
        "- **Measured** on this machine: ms per image (median; min–max over rounds), CPU ms, output bytes, "
        "PSNR/SSIM, peak RSS of a fresh process (VmHWM), success or failure under each memory ceiling and the "
        "duration there (with a full core)."
    )
    out.append(
        "- **Modeled** (not measured): Lambda duration at each memory size (measured CPU ms stretched by a CPU "
        "share linear in memory, one vCPU at 1769 MB; our core assumed as fast as Lambda's), price per million "
        "images, the recommended memory. No cold starts, no S3/SQS time or cost, no arm64 timing (arm64 "
        "assumed as fast as x86_64)."
    )
    out.append(
        "- Ratios are from the same rounds (each round runs every variant x input once, shuffled), so "
        "shared-machine noise mostly cancels; absolute ms are noisy. `paired` = median of per-round ratios."
    )
    out.append("")
    basis = basis_of(results)
    what = (
        "CPU ms per image (the job is single-threaded, so on an idle core this is its elapsed time; on this "
        "shared machine wall time also counts waiting for the CPU), median, min–max in brackets, wall-clock "
        "median after it"
        if basis == "cpu"
        else "wall-clock ms per image, median, min–max in brackets"
    )
    out.append(f"## Summary: {what}")
    out.append("")
    out.append(summary_table(results))
    out.append("")
    out.append(
        "Ratios are time ratios (< 1 = faster than the reference) except `best vs sharp`, a throughput ratio "
        "(> 1 = more images per second than sharp)."
    )
    out.append("")
    level = level_table(results)
    if level:
        out += [level, ""]
    out.extend(f"- {line}" for line in headline(results))
    out.append("")
    skipped = results.get("timing", {}).get("skipped_variants", {})
    for v, why in skipped.items():
        out.append(f"- **{v} skipped**: {why.removeprefix(f'{v} reference skipped: ')}")
    if skipped:
        out.append("")

    out.append("## Product targets (benchmarks, not tests)")
    out.append("")
    rows = []
    phases = {
        (t["variant"], t["input"]): t.get("phases") for t in results.get("timing", {}).get("results", []) if t.get("ok")
    }
    for t in results.get("targets", []):
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        margin = "" if t["margin_pct"] is None else (f"{t['margin_pct']:+.1f} %")
        note = t.get("note", "")
        ph = phases.get((t["variant"], t["input"]))
        if t["met"] is False and ph:
            note = (note + " " if note else "") + (
                f"{t['variant']} phases (wall): decode {ph['decode_ms']:.0f} / "
                f"resize {ph['resize_ms']:.0f} / encode {ph['encode_ms']:.0f} ms"
            )
        rows.append(
            [
                t["target"],
                t["input"],
                t["variant"] or "—",
                t.get("basis", ""),
                _fmt(t["measured"], 2, "×"),
                verdict,
                margin,
                note,
            ]
        )
    out.append(_table(["target", "input", "backend", "basis", "measured", "verdict", "margin vs limit", "note"], rows))
    out.append("")
    out.append(
        "Margin: positive = better than the limit by that share of it, negative = missed by that much. "
        "libvips decodes lazily, so its pixel decode shows under resize."
    )
    out.append("")

    out.append("## Timing details")
    out.append("")
    rows = []
    for t in results.get("timing", {}).get("results", []):
        if not t.get("ok"):
            err = t.get("error") or {}
            rows.append([t["variant"], t["input"], "failed", err.get("code", ""), "", "", "", "", "", "", ""])
            continue
        w, c = t["wall_ms"], t["cpu_ms"]
        ph = t.get("phases")
        phase_text = "" if not ph else f"{ph['decode_ms']:.0f} / {ph['resize_ms']:.0f} / {ph['encode_ms']:.0f}"
        ob = t.get("out_bytes", {})
        rows.append(
            [
                t["variant"],
                t["input"],
                f"{w['median']:.1f}",
                f"{w['min']:.1f}–{w['max']:.1f}",
                f"{w['iqr']:.1f}",
                f"{w['images_per_s']:.2f}",
                f"{c['median']:.1f}",
                f"{c['min']:.1f}–{c['max']:.1f}",
                f"{1000.0 / c['median']:.2f}" if c["median"] > 0 else "—",
                " / ".join(str(ob[k]) for k in ob),
                phase_text,
            ]
        )
    out.append(
        _table(
            [
                "variant",
                "input",
                "wall median ms",
                "wall min–max",
                "wall IQR",
                "images/s (wall)",
                "CPU median ms",
                "CPU min–max",
                "images/s (CPU)",
                "output bytes (large / small)",
                "decode / resize / encode ms (resizer's own)",
            ],
            rows,
        )
    )
    out.append("")
    rows = []
    for r in sorted(results.get("ratios", []), key=lambda r: (r["input"], r["vs"], r["variant"], r.get("basis", ""))):
        rows.append(
            [
                r["variant"],
                r["input"],
                r["vs"],
                r.get("basis", "wall"),
                _fmt(r["median"], 3, "×"),
                _fmt(r["throughput"], 2, "×"),
                f"{r['paired_median']:.3f}× ({r['paired_min']:.2f}–{r['paired_max']:.2f})",
                r["rounds"],
            ]
        )
    out.append("Ratios vs the references, on CPU ms and on wall ms (time ratio = variant / reference):")
    out.append("")
    out.append(
        _table(
            ["variant", "input", "vs", "basis", "time ratio", "throughput ratio", "paired (min–max)", "rounds"], rows
        )
    )
    out.append("")

    out.append("## Quality of the largest output (luma, vs full-decode LANCZOS reference)")
    out.append("")
    rows = [
        [
            q["variant"],
            q["input"],
            f"{q.get('width', '?')}x{q.get('height', '?')}",
            _fmt(q.get("psnr_db"), 2),
            _fmt(q.get("ssim"), 4),
            q.get("error", ""),
        ]
        for q in results.get("quality", [])
    ]
    out.append(_table(["variant", "input", "size", "PSNR dB", "SSIM", "error"], rows))
    out.append("")

    out.append("## Peak memory, fresh process per variant x input (VmHWM, MB; baseline = after imports)")
    out.append("")
    rows = []
    for r in results.get("rss", []):
        if r.get("ok"):
            rows.append(
                [
                    r["variant"],
                    r["input"],
                    r["megapixels"],
                    _fmt(r.get("baseline_mb")),
                    _fmt(r.get("peak_mb")),
                    _fmt(r.get("first_run_ms")),
                ]
            )
        else:
            rows.append([r["variant"], r["input"], r["megapixels"], "", "failed: " + r["error"]["code"], ""])
    out.append(_table(["variant", "input", "MP", "baseline MB", "peak MB", "first job ms (cold)"], rows))
    out.append("")

    sizing = results.get("sizing", {})
    out.append("## Lambda sizing")
    out.append("")
    out.append(
        f"Memory ceilings enforced by: **{sizing.get('mechanism', '?')}** "
        "(cgroup = the kernel OOM-kills the process at the limit; rss = a watchdog kills it). "
        f"Runs per cell: {sizing.get('runs', '?')} after one warm-up, on a full core."
    )
    out.append("")
    rows = []
    for c in sizing.get("ceilings", []):
        if c["ok"]:
            state = f"ok (not run: passed at {c['inferred_from_mb']} MB)" if c.get("inferred_from_mb") else "ok"
        elif c.get("error_code") == "BENCH_SKIPPED":
            state = "not measured (time budget)"
        else:
            state = c.get("error_code") or "failed"
        rows.append(
            [
                c["backend"],
                c["input"],
                c["memory_mb"],
                state,
                _fmt(c.get("wall_ms")),
                _fmt(c.get("cpu_ms")),
                _fmt(c.get("peak_rss_mb")),
            ]
        )
    out.append("Measured:")
    out.append("")
    out.append(
        _table(["backend", "input", "ceiling MB", "result", "median wall ms", "median CPU ms", "peak RSS MB"], rows)
    )
    out.append("")
    model = sizing.get("model", {})
    out.append(
        f"Modeled: CPU share = min(1, memory / {model.get('full_vcpu_mb', 1769)} MB); duration = measured CPU ms "
        f"(per backend x input, the median over the ceilings where it ran: the ceiling does not change the CPU "
        f"a job needs) / share + {model.get('io_wait_ms', 0)} ms modeled I/O wait; billed per 1 ms; "
        f"{model.get('images_per_invocation', 1)} image(s) per invocation. "
        f"Prices ({model.get('price_table_date', '?')}, {model.get('price_table_source', '?')}): "
        + "; ".join(
            f"{p['arch']} ${p['usd_per_gb_s']:.10f}/GB-s + ${p['usd_per_million_requests']:.2f}/M requests"
            for p in model.get("prices", [])
        )
        + "."
    )
    out.append("")
    rows = []
    for r in sizing.get("rows", []):
        if r["ok"]:
            rows.append(
                [
                    r["backend"],
                    r["input"],
                    r["memory_mb"],
                    _fmt(r["modeled_ms"], 0),
                    _fmt(r["usd_per_million"].get("arm64"), 2),
                    _fmt(r["usd_per_million"].get("x86_64"), 2),
                ]
            )
        elif r.get("error_code") == "BENCH_SKIPPED":
            rows.append([r["backend"], r["input"], r["memory_mb"], "not measured", "", ""])
        else:
            rows.append([r["backend"], r["input"], r["memory_mb"], f"fails ({r.get('error_code') or '?'})", "", ""])
    out.append(_table(["backend", "input", "memory MB", "modeled ms", "USD / M images arm64", "USD / M x86_64"], rows))
    out.append("")
    out.append(
        f"Recommendation: cheapest memory where every sizing input succeeded and the modeled duration of "
        f"{', '.join(sizing.get('latency_inputs', []))} is <= **{_fmt(sizing.get('latency_target_ms'), 0)} ms**"
        f" (cost on {sizing.get('cost_input', '?')}):"
    )
    out.append("")
    rows = [
        [
            r["backend"],
            r["arch"],
            _fmt(r["memory_mb"]),
            _fmt(r["usd_per_million"], 2),
            _fmt(r["worst_modeled_ms"], 0),
            r["reason"],
        ]
        for r in sizing.get("recommendations", [])
    ]
    out.append(_table(["backend", "arch", "memory MB", "USD / M images", "worst modeled ms", "why"], rows))
    out.append("")

    micro = results.get("micro", {})
    out.append("## pytest-benchmark micro-benchmarks (sequential, in one process; a cross-check, not the ratios)")
    out.append("")
    if micro.get("rows"):
        rows = [
            [m["variant"], m["input"], f"{m['median_ms']:.1f}", f"{m['min_ms']:.1f}–{m['max_ms']:.1f}", m["rounds"]]
            for m in micro["rows"]
        ]
        out.append(_table(["variant", "input", "median ms", "min–max", "rounds"], rows))
        out.append("")
        out.append(f"Raw: [{micro.get('json', 'pytest-benchmark.json')}]({micro.get('json', 'pytest-benchmark.json')})")
    else:
        out.append(f"Not run: {micro.get('skipped', 'no data')}")
    out.append("")

    charts = results.get("charts", {})
    if charts:
        out.append("## Charts")
        out.append("")
        for title, rel in charts.items():
            out.append(f"![{title}]({rel})")
            out.append("")
    notes = results.get("notes", [])
    if notes:
        out.append("## Notes")
        out.append("")
        out.extend(f"- {n}" for n in notes)
        out.append("")
    out.append("Raw data: [results.json](results.json).")
    out.append("")
    return "\n".join(out)
