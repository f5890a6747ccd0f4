"""The Power Tuning chart of the pipeline bench (matplotlib, headless): cost per million images and p50/p99 billed ms
per image against memory, per backend, the knee and the recommendation marked."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

COLORS = {"pillow": "#1f77b4", "vips": "#2ca02c"}


def power_tuning_chart(results: Mapping[str, Any], path: Path) -> None:
    curves = results.get("curves", {})
    arch = results.get("arch", "x86_64")
    backends = list(curves)
    fig, axes = plt.subplots(1, max(1, len(backends)), figsize=(6.5 * max(1, len(backends)), 4.8), squeeze=False)
    for ax, backend in zip(axes[0], backends, strict=False):
        cost_ax = ax.twinx()
        color = COLORS.get(backend, "#444444")
        for mode, style in (("sequential", "--"), ("overlap", "-")):
            pts = sorted(curves[backend].get(mode, []), key=lambda p: p["memory_mb"])
            if not pts:
                continue
            xs = [p["memory_mb"] for p in pts]
            ax.plot(
                xs, [p["billed_ms_per_image_p50"] for p in pts], style, color=color, marker="o", label=f"{mode} p50"
            )
            ax.plot(xs, [p["billed_ms_per_image_p99"] for p in pts], style, color=color, alpha=0.4, label=f"{mode} p99")
            cost_ax.plot(
                xs,
                [p["usd_per_million"][arch] for p in pts],
                style,
                color="#d62728",
                marker="s",
                markersize=4,
                label=f"{mode} USD/M",
            )
        rec = results.get("recommendations", {}).get(backend, {})
        if rec.get("knee_mb"):
            ax.axvline(rec["knee_mb"], color="#7f7f7f", linestyle=":", label=f"knee {rec['knee_mb']} MB")
        if rec.get("memory_mb"):
            ax.axvline(
                rec["memory_mb"],
                color="#9467bd",
                linestyle="-.",
                alpha=0.7,
                label=f"recommended {rec['memory_mb']} MB (${rec['usd_per_million']:.2f}/M)",
            )
        ax.set_xscale("log", base=2)
        sizes = sorted({p["memory_mb"] for pts in curves[backend].values() for p in pts})
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(m) for m in sizes], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("memory (MB)")
        ax.set_ylabel("billed ms per image")
        cost_ax.set_ylabel(f"USD per million images ({arch})", color="#d62728")
        ax.set_title(f"{backend}: whole pipeline, batches of {results.get('batch_size')}", fontsize=10)
        lines = ax.get_legend_handles_labels()
        clines = cost_ax.get_legend_handles_labels()
        ax.legend(lines[0] + clines[0], lines[1] + clines[1], fontsize=7, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
