"""`harness compare REPORT_A REPORT_B [--out DIR]`: two load reports side by side (compare.md + compare.png)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common.errors import CodedError


def run(args: argparse.Namespace) -> int:
    from common.paths import RESULTS_DIR
    from harness.compare.report import read_report, write

    try:
        a, b = read_report(args.report_a), read_report(args.report_b)
        out = args.out or RESULTS_DIR / f"compare-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
        files = write(a, b, out, png=not args.no_png)
    except CodedError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr, flush=True)
        return 2
    print(files[0].read_text(encoding="utf-8"), flush=True)
    print(f"written: {', '.join(str(f) for f in files)}", flush=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Adds `harness compare ...` to the main CLI."""
    p = sub.add_parser("compare", help="two load reports side by side (Markdown + PNG)")
    p.add_argument("report_a", type=Path, help="report.json of run A (or its folder)")
    p.add_argument("report_b", type=Path, help="report.json of run B (or its folder)")
    p.add_argument("--out", type=Path, help="folder for compare.md/compare.png (default results/compare-<time>)")
    p.add_argument("--no-png", action="store_true", help="Markdown only")
    p.set_defaults(func=run)
