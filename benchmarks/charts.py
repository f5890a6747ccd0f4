"""PNG charts of a results dict (matplotlib, headless): throughput, peak memory by input size, cost vs memory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from .report import VARIANT_ORDER, basis_of  # noqa: E402

COLORS = {"pillow": "#1f77b4", "vips": "#2ca02c", "sharp": "#ff7f0e", "floor": "#7f7f7f"}


def throughput_chart(results: Mapping[str, Any], path: Path) -> None:
    basis = basis_of(results)
    key = f"{basis}_ms"
    rows = [r for r in results.get("timing", {}).get("results", []) if r.get("ok") and r.get(key)]
    inputs = [i["id"] for i in results.get("inputs", []) if any(r["input"] == i["id"] for r in rows)]
    variants = [v for v in VARIANT_ORDER if any(r["variant"] == v for r in rows)]
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(inputs)), 4.5))
    width = 0.8 / max(1, len(variants))
    for k, v in enumerate(variants):
        xs, ys, lo, hi = [], [], [], []
        for j, i in enumerate(inputs):
            r = next((r for r in rows if r["variant"] == v and r["input"] == i), None)
            if r is None:
                continue
            w = r[key]
            xs.append(j + (k - (len(variants) - 1) / 2) * width)
            ys.append(1000.0 / w["median"])
            lo.append(1000.0 / w["median"] - 1000.0 / w["max"])  # slowest round
            hi.append(1000.0 / w["min"] - 1000.0 / w["median"])  # fastest round
        ax.bar(xs, ys, width, label=v, color=COLORS.get(v), yerr=[lo, hi], capsize=2)
    ax.set_xticks(range(len(inputs)))
    ax.set_xticklabels(inputs, rotation=25, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(f"images / s ({'CPU' if basis == 'cpu' else 'wall'} time, log scale)")
    ax.set_title(
        "Throughput per variant and input, one core (bars: median; whiskers: min-max over rounds)", fontsize=10
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def memory_chart(results: Mapping[str, Any], path: Path) -> None:
    """Grouped bars: inputs ordered by megapixels; each bar = peak RSS, its lower dark part = the baseline after
    imports, so the height above it is what the job itself added."""
    rows = [r for r in results.get("rss", []) if r.get("ok") and r.get("peak_mb")]
    inputs = sorted({(r["megapixels"], r["input"]) for r in rows})
    variants = [v for v in VARIANT_ORDER if any(r["variant"] == v for r in rows)]
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(inputs)), 4.5))
    width = 0.8 / max(1, len(variants))
    for k, v in enumerate(variants):
        xs, peaks, bases = [], [], []
        for j, (_mp, i) in enumerate(inputs):
            r = next((r for r in rows if r["variant"] == v and r["input"] == i), None)
            if r is None:
                continue
            xs.append(j + (k - (len(variants) - 1) / 2) * width)
            peaks.append(r["peak_mb"])
            bases.append(r.get("baseline_mb") or 0.0)
        ax.bar(xs, peaks, width, label=v, color=COLORS.get(v), alpha=0.55)
        ax.bar(xs, bases, width, color=COLORS.get(v))
    ax.set_xticks(range(len(inputs)))
    ax.set_xticklabels([f"{i}\n{mp:g} MP" for mp, i in inputs], rotation=25, ha="right", fontsize=7)
    ax.set_ylabel("peak RSS, fresh process (MB)")
    ax.set_title("Peak memory per input (one job; dark part = baseline after imports)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cost_chart(results: Mapping[str, Any], path: Path) -> None:
    sizing = results.get("sizing", {})
    cost_input = sizing.get("cost_input")
    rows = [r for r in sizing.get("rows", []) if r["input"] == cost_input]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for b in VARIANT_ORDER:
        mine = sorted((r for r in rows if r["backend"] == b), key=lambda r: r["memory_mb"])
        if not mine:
            continue
        for arch, style in (("arm64", "-"), ("x86_64", "--")):
            ok = [r for r in mine if r["ok"]]
            ax.plot(
                [r["memory_mb"] for r in ok],
                [r["usd_per_million"][arch] for r in ok],
                style,
                marker="o",
                color=COLORS.get(b),
                label=f"{b} {arch}",
            )
        failed = [r["memory_mb"] for r in mine if not r["ok"] and r.get("error_code") != "BENCH_SKIPPED"]
        if failed:
            ax.scatter(failed, [0] * len(failed), marker="x", color=COLORS.get(b), s=60, label=f"{b} fails here")
    ax.set_xscale("log", base=2)
    ticks = sorted({r["memory_mb"] for r in rows})
    if ticks:
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel("Lambda memory (MB)")
    ax.set_ylabel("USD per million images (modeled)")
    ax.set_title(f"Cost vs memory on {cost_input} (modeled from measured runs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_charts(results: Mapping[str, Any], out_dir: Path) -> dict[str, str]:
    """Write the three charts into out_dir/charts; returns {title: path relative to out_dir}."""
    charts_dir = out_dir / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    made = {}
    for title, name, fn in (
        ("Throughput per backend and input", "throughput.png", throughput_chart),
        ("Peak memory per input size", "peak_memory.png", memory_chart),
        ("Cost vs memory", "cost_vs_memory.png", cost_chart),
    ):
        fn(results, charts_dir / name)
        made[title] = f"charts/{name}"
    return made
