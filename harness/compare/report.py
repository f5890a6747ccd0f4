"""Write a comparison of two load reports: compare.md (tables by section, verdicts) and compare.png (bar charts)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.compare.figures import CompareError, Row, label, outcome_differences, rows, validate


def read_report(path: Path) -> Mapping[str, Any]:
    """A report.json (or the folder holding one); COMPARE_REPORT_INVALID when it is not a load report."""
    path = path / "report.json" if path.is_dir() else path
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CompareError(
            "COMPARE_REPORT_INVALID", f"Expected a JSON load report at {path} but received {exc}"
        ) from exc
    return validate(doc, str(path))


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def markdown(a: Mapping[str, Any], b: Mapping[str, Any], compared: list[Row] | None = None) -> str:
    compared = compared if compared is not None else rows(a, b)
    lines = [
        "# Two load runs side by side",
        "",
        f"- **A**: {label(a)}, scenario {a['scenario'].get('name')}",
        f"- **B**: {label(b)}, scenario {b['scenario'].get('name')}",
        "",
    ]
    notes = outcome_differences(a, b)
    lines += ["## What differs in outcomes", ""]
    lines += [f"- {n}" for n in notes] or ["- nothing: same outcome counts' kinds, nothing lost on either side"]
    lines.append("")
    section = None
    for row in compared:
        if row.a is None and row.b is None:
            continue
        if row.section != section:
            section = row.section
            lines += ["", f"## {section}", "", "| figure | A | B | B / A | |", "|---|---:|---:|---:|---|"]
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
        lines.append(
            f"| {row.label} | {_fmt(row.a, row.digits)} | {_fmt(row.b, row.digits)} | {ratio} | {row.verdict} |"
        )
    lines += [
        "",
        "Cost per image is an estimate at AWS list prices (infra.pricing, us-east-1): handler time x the stack's "
        "memory plus the requests each image makes; an emulator run's handler time is this machine's, not Lambda's.",
        "",
    ]
    return "\n".join(lines)


def plot(a: Mapping[str, Any], b: Mapping[str, Any], out: Path, compared: list[Row] | None = None) -> Path:
    """compare.png: latency p50/p99 per stage, throughput, and outcomes, A and B as paired bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = compared if compared is not None else rows(a, b)
    panels = [
        ("latency p50 / p99 (ms)", [r for r in compared if r.section.startswith("latency") and r.label[-3:] != "p90"]),
        ("throughput (/s)", [r for r in compared if r.section == "throughput" and "drain" not in r.label]),
        ("outcomes", [r for r in compared if r.section == "outcomes"]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(16, 5))
    for ax, (title, items) in zip(axes, panels, strict=True):
        items = [r for r in items if r.a is not None or r.b is not None]
        xs = range(len(items))
        ax.bar([x - 0.2 for x in xs], [r.a or 0 for r in items], width=0.4, label="A")
        ax.bar([x + 0.2 for x in xs], [r.b or 0 for r in items], width=0.4, label="B")
        ax.set_xticks(list(xs), [r.label for r in items], rotation=60, ha="right", fontsize=7)
        ax.set_title(title)
        ax.legend()
    fig.suptitle(f"A: {label(a)}\nB: {label(b)}", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def write(a: Mapping[str, Any], b: Mapping[str, Any], out_dir: Path, *, png: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    compared = rows(a, b)
    md = out_dir / "compare.md"
    md.write_text(markdown(a, b, compared), encoding="utf-8")
    written = [md]
    if png:
        written.append(plot(a, b, out_dir / "compare.png", compared))
    return written
