"""The files of one load run: report.json, report.md and the PNG charts, written into its results folder.

The parts have one role each: stats (percentiles, distributions, rate series), summary (the figures of a run as one
dict), markdown (one run, runs side by side), charts (PNG). Their public names are re-exported here, so callers use
`from harness.load import report` and `report.summarize(...)`, `report.markdown(...)`, `report.write(...)`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.load.report.charts import plot
from harness.load.report.markdown import comparison_markdown, cpu_markdown, markdown
from harness.load.report.stats import distribution, percentile, rate_series
from harness.load.report.summary import STAGES, stage_values, summarize

__all__ = [
    "STAGES",
    "comparison_markdown",
    "cpu_markdown",
    "distribution",
    "markdown",
    "percentile",
    "plot",
    "rate_series",
    "stage_values",
    "summarize",
    "write",
]


def write(summary: Mapping[str, Any], out_dir: Path, *, plots: bool = True) -> list[Path]:
    """report.json, report.md and the PNGs into out_dir (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md"]
    paths[0].write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    paths[1].write_text(markdown(summary), encoding="utf-8")
    if plots:
        paths += plot(summary, out_dir)
    return paths
