"""`python -m harness simulate SCENARIO` / `python -m harness.simulate SCENARIO`: simulate, sweep, lint, write."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from common.errors import CodedError
from common.paths import ROOT
from harness.load.scenario import SCENARIOS_DIR, Scenario, load_scenario
from harness.simulate import report as report_mod
from harness.simulate.calibration import Calibration, chaos_rates, from_load_report, read_json, report_kind
from harness.simulate.classes import load_classes
from harness.simulate.errors import REPORT_INVALID, SimulateError
from harness.simulate.knobs import Knobs, knob_names
from harness.simulate.metrics import fmt
from harness.simulate.simulation import Simulation
from harness.simulate.sweep import lint, sweep, sweep_markdown

DESCRIPTION = (
    "Simulate the pipeline at AWS scale (or on this machine: --set mode=local) for a scenario "
    "(benchmarks/scenarios/*.toml), calibrated from measured load/chaos reports; writes Markdown, JSON, "
    "PNG."
)
DATA_DIR = ROOT / "tests" / "data" / "simulate"
DEFAULT_CALIBRATION = DATA_DIR / "steady.json"
RESULTS_DIR = ROOT / "benchmarks" / "results"


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", help="scenario name (benchmarks/scenarios/<name>.toml) or a .toml path")
    p.add_argument(
        "--from",
        dest="sources",
        action="append",
        default=[],
        metavar="REPORT",
        help="a load report (calibration), a chaos report[:scenario] (failure rates) or a stored extract "
        f"(default {DEFAULT_CALIBRATION.relative_to(ROOT)}); repeatable",
    )
    p.add_argument(
        "--classes",
        type=Path,
        help="per-class resize CPU (JSON from `python -m harness.simulate.calibrate "
        "classes`; default tests/data/simulate/classes-<backend>.json)",
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help=f"a knob (repeatable): {', '.join(knob_names())}",
    )
    p.add_argument("--sweep", action="store_true", help="also sweep memory x batch size x MaximumConcurrency")
    p.add_argument("--memories", default="512,1024,1769", help="sweep: memory sizes (MB)")
    p.add_argument("--batches", default="1,10,100", help="sweep: batch sizes")
    p.add_argument("--concurrencies", default="50,200,1000", help="sweep: MaximumConcurrency values")
    p.add_argument(
        "--out", type=Path, help="results folder (default benchmarks/results/simulate-<timestamp>/<scenario>)"
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG charts")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")


def calibration_from(sources: Sequence[str], classes_path: Path | None) -> tuple[Calibration, list[str]]:
    """The calibration the sources describe (first load report or extract), with chaos failure rates applied."""
    cal: Calibration | None = None
    used: list[str] = []
    retry: float | None = None
    for src in list(sources) or [str(DEFAULT_CALIBRATION)]:
        path, _, part = src.partition(":") if not Path(src).exists() else (src, "", "")
        doc = read_json(path)
        kind = report_kind(doc)
        if kind == "chaos":
            retry, _permanent = chaos_rates(doc, part or None)
            used.append(f"{path} (chaos{': ' + part if part else ''}: {retry:.3f} retryable per attempt)")
        elif cal is None:
            if kind == "extract":
                cal = Calibration.from_dict(doc["calibration"])
            else:
                backend = str(doc.get("backend", "pillow"))
                classes = load_classes(classes_path or DATA_DIR / f"classes-{backend}.json")
                cal = from_load_report(doc, classes, source=str(path))
            used.append(f"{path} ({kind})")
        else:
            used.append(f"{path} (ignored: one calibration per run)")
    if cal is None:
        raise SimulateError(
            REPORT_INVALID,
            f"Expected a load report or an extract among {list(sources)} but received only chaos reports",
        )
    if retry is not None:
        cal = replace(cal, retryable_rate=retry)
    return cal, used


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SimulateError(REPORT_INVALID, f"Expected comma-separated integers but received {text!r}") from None


def run(args: argparse.Namespace) -> int:
    if args.list or not args.scenario:
        for path in sorted(SCENARIOS_DIR.glob("*.toml")):
            _err(f"{path.stem:10s} {load_scenario(path).description}")
        return 0 if args.list else 2
    try:
        scenario: Scenario = load_scenario(args.scenario)
        cal, used = calibration_from(args.sources, args.classes)
        knobs = Knobs(backend=cal.backend).with_sets(args.sets)
        if knobs.mode == "local" and knobs.maximum_concurrency is None and scenario.max_concurrency is not None:
            knobs = knobs.with_sets([f"maximum_concurrency={scenario.max_concurrency}"])
        sim = Simulation(scenario, cal, knobs)
        _err(f"==> simulating {scenario.name} ({knobs.mode}) calibrated from {'; '.join(used)}")
        summary = sim.run()
        sentences = lint(summary, sim)
        out = args.out or RESULTS_DIR / f"simulate-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}" / scenario.name
        files = report_mod.write({**summary, "calibrated_from": used}, out, lint=sentences, plots=not args.no_plots)
        if args.sweep:
            result = sweep(sim, _ints(args.memories), _ints(args.batches), _ints(args.concurrencies))
            (out / "sweep.md").write_text("# Sweep\n\n" + "\n".join(sweep_markdown(result)) + "\n", encoding="utf-8")
            files.append(out / "sweep.md")
            _err("\n".join(sweep_markdown(result)))
    except CodedError as exc:
        _err(f"error {exc}")
        return 2
    s = summary["simulation"]
    e2e = summary["latency_ms"]["e2e"]
    _err(
        f"==> {fmt(summary['uploads']['planned'])} uploads: {summary['accounting']['counts']}; service rate "
        f"{fmt(summary['pipeline'].get('service_rate_per_s'), 1)}/s; e2e p50 {fmt(e2e['p50'])} ms p99 "
        f"{fmt(e2e['p99'])} ms; max backlog {fmt(s['max_queue_depth'])}; oldest {fmt(s['max_oldest_age_s'], 0)} s; "
        f"throttled {fmt(s['throttled_invocations'])}; ${fmt(summary['cost']['usd_per_million_images'], 2)}/M images; "
        f"simulated in {s['wall_s']:.1f} s"
    )
    for sentence in sentences:
        _err(f"    - {sentence}")
    _err(f"==> report {files[1]}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Adds `harness simulate ...` to the main CLI."""
    p = sub.add_parser(
        "simulate", help="simulate the pipeline at AWS scale, calibrated from measured reports", description=DESCRIPTION
    )
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.simulate", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
