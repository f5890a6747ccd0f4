"""`python -m harness.simulate.calibrate`: measure resize CPU per input class; read a local run's invocations from its
emulator; extract a load report's minimal inputs (with those invocations) and measured figures into
tests/data/simulate/ (small JSON, not the raw report)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from common.errors import CodedError
from harness.load.scenario import load_scenario
from harness.simulate.calibration import Calibration, from_load_report, measured_figures, read_json
from harness.simulate.classes import load_classes, measure_classes
from harness.simulate.cli import DATA_DIR
from harness.simulate.invocations import batch_costs, read_invocations, slowdown_series
from infra.stack import StackConfig


def stack_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the measured run deployed: the stack defaults plus the load runner's overrides."""
    defaults = StackConfig()
    over = doc.get("overrides") or {}
    return {
        "batch_size": int(over.get("batch_size", defaults.batch_size)),
        "batching_window_s": float(over.get("batching_window_s", defaults.batching_window_s)),
        "maximum_concurrency": int(over.get("maximum_concurrency", defaults.maximum_concurrency)),
        "visibility_timeout_s": float(defaults.visibility_timeout_s),
        "max_receive_count": defaults.max_receive_count,
        "function_timeout_s": float(defaults.function_timeout_s),
        "memory_mb": defaults.memory_mb,
    }


def fit_invoke_ms(doc: Mapping[str, Any], cal: Calibration, stack: Mapping[str, Any]) -> float | None:
    """Per-batch overhead (CPU-equivalent ms: divided by the run's slowdown) that makes a saturated run's measured
    service rate: lanes x B / rate = overhead + B x mean record time. None when the run was not backlogged."""
    rate = (doc.get("pipeline") or {}).get("service_rate_per_s")
    if not rate or cal.local_handler_ms is None or cal.local_put_ms <= 0:
        return None
    batch, lanes = stack["batch_size"], stack["maximum_concurrency"]
    wall = lanes * batch / float(rate) * 1000.0 - batch * (cal.local_handler_ms.mean + cal.local_put_ms)
    return max(0.0, wall / max(1.0, cal.local_stretch))


def with_invocations(cal: Calibration, costs: Mapping[str, Any]) -> Calibration:
    """The local per-batch costs measured from the run's own invocations (`invocations.batch_costs`)."""
    if not costs:
        return cal
    pre, post = costs["pre_ms"], costs["post_ms"]
    return replace(
        cal,
        local_pre_ms=(pre["a"], pre["b"]),
        local_post_ms=(post["a"], post["b"]) if post.get("n") else None,
        local_put_ms=float(costs["rest_ms"]),
        local_slowdown=tuple((t, f) for t, f in costs.get("slowdown") or ()),
    )


def extract(
    doc: Mapping[str, Any],
    classes_path: Path,
    source: str,
    emulator_ingest_share: float | None = None,
    invocations: Sequence[Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Inputs (calibration, stack settings, scenario, per-invocation times when read) and measured figures of one
    load report."""
    cal = from_load_report(doc, load_classes(classes_path), source=source)
    if emulator_ingest_share is not None:
        cal = replace(cal, emulator_ingest_share=emulator_ingest_share)
    stack = stack_of(doc)
    costs = batch_costs(invocations, stack["maximum_concurrency"]) if invocations else {}
    if costs:
        costs["slowdown"] = slowdown_series(invocations or [])
    cal = with_invocations(cal, costs)
    return {
        "invocations": [list(r) for r in invocations] if invocations else None,
        "batch_costs": costs or None,
        "calibration": cal.to_dict(),
        "fitted": {"local_invoke_ms": fit_invoke_ms(doc, cal, stack)},
        "measured": measured_figures(doc),
        "stack": stack,
        "scenario": doc.get("scenario"),
        "cores": doc.get("cores"),
        "baseline": {
            k: (doc.get("baseline") or {}).get(k)
            for k in ("images_per_s", "cpu_ms_per_image", "mean_resize_ms", "processes")
        },
        "cpu_per_image_ms": (doc.get("cpu") or {}).get("per_image_ms"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.simulate.calibrate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("classes", help="measure resize CPU per file of the scenarios' mixes")
    c.add_argument("scenarios", nargs="+")
    c.add_argument("--backend", default="pillow", choices=("pillow", "vips"))
    c.add_argument("--seconds", type=float, default=2.0)
    c.add_argument("--out", type=Path)
    e = sub.add_parser("extract", help="a load report -> tests/data/simulate/<scenario>.json")
    e.add_argument("report", type=Path)
    e.add_argument("--classes", type=Path)
    e.add_argument("--emulator-ingest-share", type=float, help="share of the emulator CPU spent at upload time")
    e.add_argument("--invocations", type=Path, help="the run's invocations (written by the 'invocations' command)")
    e.add_argument("--out", type=Path)
    i = sub.add_parser("invocations", help="read a run's invocations from its emulator (HARNESS_PORT/HARNESS_HOME)")
    i.add_argument("report", type=Path)
    i.add_argument("--stack", default="load")
    i.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "classes":
            doc = measure_classes([load_scenario(s) for s in args.scenarios], args.backend, args.seconds)
            out = args.out or DATA_DIR / f"classes-{args.backend}.json"
        elif args.command == "invocations":
            report = read_json(args.report)
            classes = load_classes(DATA_DIR / f"classes-{report.get('backend', 'pillow')}.json")
            doc = read_invocations(report, args.stack, {c.name: c.cpu_ms for c in classes})  # type: ignore[assignment]
            out = args.out
        else:
            report = read_json(args.report)
            backend = str(report.get("backend", "pillow"))
            doc = extract(
                report,
                args.classes or DATA_DIR / f"classes-{backend}.json",
                str(args.report),
                args.emulator_ingest_share,
                json.loads(args.invocations.read_text(encoding="utf-8")) if args.invocations else None,
            )
            out = args.out or DATA_DIR / f"{doc['measured']['scenario']}.json"
    except CodedError as exc:
        sys.stderr.write(f"error {exc}\n")
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    sys.stderr.write(f"wrote {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
