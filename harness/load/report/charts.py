"""PNG charts of one load run (matplotlib, headless): latency CDF, throughput, queue depth over time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def latency_cdf(cdf_ms: Mapping[str, Sequence[float]], title: str, path: Path, *, quantiles: bool = False) -> Path:
    """One latency CDF chart (ms on a symlog axis), one line per stage; shared by the load and simulate reports.

    `cdf_ms` holds, per stage, either every sorted sample (the fraction of sample i is (i + 1) / n) or, with
    `quantiles`, evenly spaced quantiles from 0 to 1 (the fraction of point i is i / (n - 1))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, vals in cdf_ms.items():
        if vals:
            n = len(vals)
            fractions = [i / max(1, n - 1) for i in range(n)] if quantiles else [(i + 1) / n for i in range(n)]
            ax.plot(vals, fractions, label=name)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("ms")
    ax.set_ylabel("fraction of uploads")
    ax.set_title(f"Latency CDF: {title}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot(summary: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """latency_cdf.png, throughput.png, queue_depth.png (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    title = f"{summary['scenario'].get('name')} / {summary['backend']}"
    written.append(latency_cdf(summary["cdf_ms"], title, out_dir / "latency_cdf.png"))

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
            ax2.step(
                ts,
                [e if e is not None else float("nan") for e in envs],
                color="grey",
                where="post",
                label="environments",
            )
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
