"""Prediction vs measurement: the simulator under the local emulator's constraints against measured local runs.

`python -m harness.simulate.validate [EXTRACT_OR_REPORT ...]` (default: tests/data/simulate/<run>.json for the runs
steady, spike and saturate)
prints, per run, throughput, e2e p50, p99 and max queue depth measured and predicted, the targets and PASS/MISS; exits
1 on a miss. Inputs with invocations: each run's per-batch costs from the other runs' (`--costs loo`) or its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import CodedError
from harness.load.scenario import Profile, Scenario
from harness.simulate.calibrate import extract
from harness.simulate.calibration import Calibration, read_json, report_kind
from harness.simulate.cli import DATA_DIR
from harness.simulate.invocations import pooled_costs
from harness.simulate.knobs import Knobs
from harness.simulate.metrics import fmt
from harness.simulate.simulation import Simulation

RUNS = ("steady", "spike", "saturate")
TARGETS = {"throughput": 0.15, "e2e_p50": 0.15, "e2e_p99": 0.30}
SHAPE_MIN_CORRELATION = 0.8


@dataclass(frozen=True)
class Check:
    """One figure of one run: measured, predicted, the target and the verdict."""

    run: str
    figure: str
    measured: float | None
    predicted: float | None
    target: str
    passed: bool | None  # None: reported, no target

    @property
    def error(self) -> float | None:
        if self.measured in (None, 0) or self.predicted is None:
            return None
        return (self.predicted - self.measured) / self.measured


def scenario_from(doc: Mapping[str, Any]) -> Scenario:
    """The Scenario a report's `scenario` section describes (the run's own settings, overrides included)."""
    data = dict(doc)
    data["profile"] = Profile(**{**data["profile"], "steps": tuple(tuple(s) for s in data["profile"].get("steps", ()))})
    data["mix"] = tuple((str(p), float(w)) for p, w in data["mix"])
    data["backends"] = tuple(data.get("backends") or ("pillow",))
    known = {f.name for f in fields(Scenario)}
    return Scenario(**{k: v for k, v in data.items() if k in known})


def local_knobs(ext: Mapping[str, Any], seed: int = 1) -> Knobs:
    st = ext["stack"]
    cal = ext["calibration"]
    return Knobs(
        mode="local",
        backend=cal["backend"],
        cores=int(ext.get("cores") or cal.get("cores") or 2),
        batch_size=st["batch_size"],
        batching_window_s=st["batching_window_s"],
        maximum_concurrency=st["maximum_concurrency"],
        visibility_timeout_s=st["visibility_timeout_s"],
        max_receive_count=st["max_receive_count"],
        function_timeout_s=st["function_timeout_s"],
        memory_mb=st["memory_mb"],
        seed=seed,
        sample_interval_s=float(ext["measured"].get("sample_interval_s") or 1.0),
    )


def shape_correlation(
    measured: Sequence[Sequence[float]], predicted_t: Sequence[float], predicted_v: Sequence[float]
) -> float | None:
    """Pearson correlation of the two queue-depth curves on a common 1 s grid (zero after each one ends)."""
    if len(measured) < 3 or len(predicted_t) < 3:
        return None
    mt = np.asarray([m[0] for m in measured], float)
    mv = np.asarray([m[1] for m in measured], float)
    end = max(float(mt.max()), float(max(predicted_t)))
    grid = np.arange(0.0, end + 1.0, 1.0)
    a = np.interp(grid, mt, mv, left=0.0, right=0.0)
    b = np.interp(grid, np.asarray(predicted_t, float), np.asarray(predicted_v, float), left=0.0, right=0.0)
    if a.std() == 0 or b.std() == 0:
        return 1.0 if a.std() == b.std() else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def compare(
    name: str,
    ext: Mapping[str, Any],
    invoke_ms: float | None = None,
    in_sample: bool = False,
    seeds: Sequence[int] = (1, 2, 3),
    costs: Mapping[str, Any] | None = None,
) -> tuple[list[Check], dict[str, Any]]:
    """Simulate one measured run (mean over a few seeds) and check each figure against its target. `costs`: per-batch
    costs (`invocations.pooled_costs`) measured on other runs instead of this run's own (leave-one-out);
    `invoke_ms`: a per-batch constant for extracts without invocations, fitted on a calibration run; `in_sample`:
    this is that run (its throughput was fitted)."""
    scenario = scenario_from(ext["scenario"])
    cal = Calibration.from_dict(ext["calibration"])
    if invoke_ms is not None:
        cal = replace(cal, local_invoke_ms=invoke_ms)
    if costs:
        pre, post = costs["pre_ms"], costs["post_ms"]
        cal = replace(
            cal,
            local_pre_ms=(pre["a"], pre["b"]),
            local_post_ms=(post["a"], post["b"]) if post.get("n") else cal.local_post_ms,
        )
    runs = [Simulation(scenario, cal, local_knobs(ext, seed)).run() for seed in seeds]
    m = ext["measured"]

    def mean(get: Any) -> float | None:
        vals = [get(r) for r in runs]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else None

    pred = {
        "throughput": mean(lambda r: r["pipeline"].get("service_rate_per_s")),
        "e2e_p50": mean(lambda r: r["latency_ms"]["e2e"]["p50"]),
        "e2e_p99": mean(lambda r: r["latency_ms"]["e2e"]["p99"]),
        "max_queue_depth": mean(lambda r: r["simulation"]["max_queue_depth"]),
    }
    meas = {
        "throughput": m["throughput_per_s"],
        "e2e_p50": m["e2e_p50_ms"],
        "e2e_p99": m["e2e_p99_ms"],
        "max_queue_depth": m["max_queue_depth"],
    }
    checks = []
    for fig in ("throughput", "e2e_p50", "e2e_p99"):
        if in_sample and fig == "throughput":
            checks.append(Check(name, fig, meas[fig], pred[fig], "calibrated here (in-sample)", None))
            continue
        c = Check(name, fig, meas[fig], pred[fig], f"within {TARGETS[fig]:.0%}", None)
        err = c.error
        checks.append(
            Check(name, fig, meas[fig], pred[fig], c.target, None if err is None else abs(err) <= TARGETS[fig])
        )
    checks.append(Check(name, "max_queue_depth", meas["max_queue_depth"], pred["max_queue_depth"], "reported", None))
    series = runs[0]["series"]
    flat = 2 * int(ext["stack"]["batch_size"])  # no backlog to speak of: a couple of batches at most
    if (meas["max_queue_depth"] or 0) <= flat and (pred["max_queue_depth"] or 0) <= flat:
        checks.append(Check(name, "backlog shape (correlation)", 1.0, None, f"both flat (<= {flat})", True))
    else:
        r = shape_correlation(m["queue_series"], series["t"], series["visible"])
        checks.append(
            Check(
                name,
                "backlog shape (correlation)",
                1.0,
                r,
                f"r >= {SHAPE_MIN_CORRELATION}",
                None if r is None else r >= SHAPE_MIN_CORRELATION,
            )
        )
    return checks, {
        "measured_series": m["queue_series"],
        "predicted_t": series["t"],
        "predicted_visible": series["visible"],
        "summary": runs[0],
    }


def load_extract(path: Path) -> dict[str, Any]:
    doc = read_json(path)
    if report_kind(doc) == "load":  # a fresh report: extract it on the fly with the stored per-class CPU
        backend = str(doc.get("backend", "pillow"))
        return extract(doc, DATA_DIR / f"classes-{backend}.json", str(path))
    return doc


def table(checks: Sequence[Check], environment: Mapping[str, str]) -> list[str]:
    lines = ["| run | figure | measured | predicted | error | target | verdict |", "|---|---|---|---|---|---|---|"]
    for c in checks:
        digits = 2 if c.figure in ("throughput", "backlog shape (correlation)") else 0
        err = c.error
        verdict = (
            ("reported" if c.target in ("reported",) or c.target.startswith("calibrated") else "n/a")
            if c.passed is None
            else ("PASS" if c.passed else "MISS")
        )
        measured = "-" if c.figure.startswith("backlog") else fmt(c.measured, digits)
        lines.append(
            f"| {c.run} | {c.figure} | {measured} | {fmt(c.predicted, digits)} | "
            f"{'-' if err is None or c.figure.startswith('backlog') else f'{err:+.0%}'} | {c.target} | "
            f"{verdict} |"
        )
    for run, env in environment.items():
        lines.append(f"- {run}: {env}")
    return lines


def environment_of(ext: Mapping[str, Any]) -> str:
    m = ext["measured"]
    load = m.get("loadavg_1m") or {}
    cal = ext["calibration"]
    return (
        f"run {m.get('run_id')}, {m.get('accepted')} uploads, machine load average {load.get('start', 0):.1f} -> "
        f"{load.get('end', 0):.1f} on {ext.get('cores')} cores, neighbours' share of the busy CPU "
        f"{(m.get('other_share') or 0):.0%} ({cal.get('other_cores') or 0:.2f} of {ext.get('cores')} cores: "
        f"{max(0.0, float(ext.get('cores') or 2) - float(cal.get('other_cores') or 0)):.2f} left to the pipeline), "
        f"raw resize wall/CPU around the run {cal.get('local_stretch', 1):.1f}x"
    )


def calibration_run(
    exts: Sequence[tuple[Path, Mapping[str, Any]]], chosen: Path | None
) -> tuple[Path | None, Mapping[str, Any] | None]:
    """The input whose fitted per-batch overhead the others use: `chosen`, else the saturate run, else none."""
    if chosen is not None:
        return chosen, load_extract(chosen)
    for path, ext in exts:
        if ext["measured"].get("scenario") == "saturate" and (ext.get("fitted") or {}).get("local_invoke_ms"):
            return path, ext
    return None, None


def validation(
    paths: Sequence[Path], scheme: str = "loo", calibrate_on: Path | None = None
) -> tuple[list[Check], dict[str, str]]:
    """Every check of the given extracts or reports, and the conditions of each run. With invocations in every
    input: `by_invocations`; else (older extracts) one per-batch constant fitted on the saturate run's service rate."""
    exts = [(p, load_extract(p)) for p in paths]
    if all(ext.get("invocations") for _, ext in exts):
        return by_invocations(exts, scheme)
    checks: list[Check] = []
    env: dict[str, str] = {}
    ref_path, ref = calibration_run(exts, calibrate_on)
    invoke_ms = (ref.get("fitted") or {}).get("local_invoke_ms") if ref is not None else None
    for path, ext in exts:
        name = str(ext["measured"].get("scenario") or path.stem)
        got, _ = compare(name, ext, invoke_ms, in_sample=ref is not None and path == ref_path)
        checks += got
        env[name] = environment_of(ext)
    if ref is not None and ref_path is not None:
        env["per-batch overhead"] = (
            f"{fmt(invoke_ms, 0)} ms CPU-equivalent per batch (x each run's slowdown), "
            f"fitted on {ref_path.name}'s service rate; the other runs are out of sample"
        )
    return checks, env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.simulate.validate", description=__doc__)
    parser.add_argument("inputs", nargs="*", type=Path, help="extracts (tests/data/simulate/*.json) or load reports")
    parser.add_argument(
        "--calibrate-on",
        type=Path,
        default=None,
        help="extracts without invocations: the run whose service rate fixes the per-batch overhead (default: the "
        "saturate input)",
    )
    parser.add_argument(
        "--costs",
        choices=("loo", "own"),
        default="loo",
        help="per-batch costs of each run from the other runs' invocations (loo, the default) or from its own",
    )
    args = parser.parse_args(argv)
    paths = list(args.inputs) or [DATA_DIR / f"{r}.json" for r in RUNS]
    try:
        checks, env = validation(paths, args.costs, args.calibrate_on)
    except CodedError as exc:
        sys.stderr.write(f"error {exc}\n")
        return 2
    return finish(checks, env)


def lanes_of(ext: Mapping[str, Any]) -> int:
    return int(ext["stack"]["maximum_concurrency"])


def by_invocations(exts: Sequence[tuple[Path, Mapping[str, Any]]], scheme: str) -> tuple[list[Check], dict[str, str]]:
    """Every run predicted from its own record times and slowdown series, with per-batch costs measured on the other
    runs' invocations (`loo`) or on its own (`own`). Nothing is fitted to a figure that is checked."""
    checks: list[Check] = []
    env: dict[str, str] = {}
    for i, (path, ext) in enumerate(exts):
        name = str(ext["measured"].get("scenario") or path.stem)
        others = [(o["invocations"], lanes_of(o)) for j, (_, o) in enumerate(exts) if j != i]
        costs = pooled_costs(others) if scheme == "loo" and others else None
        got, _ = compare(name, ext, costs=costs)
        checks += got
        env[name] = environment_of(ext)
        used = costs or ext.get("batch_costs") or {}
        if used:
            pre, post = used["pre_ms"], used["post_ms"]
            env[f"{name} per-batch costs"] = (
                f"receive -> handler start {pre['a']:.0f} + {pre['b']:.1f} x records ms, end -> next receive "
                f"{post['a']:.0f} + {post['b']:.1f} x records ms, from "
                + ("the other runs' invocations (leave-one-out)" if costs else "its own invocations")
            )
    return checks, env


def finish(checks: Sequence[Check], env: Mapping[str, str]) -> int:
    print("\n".join(table(checks, env)))
    missed = [c for c in checks if c.passed is False]
    print(
        f"\n{sum(1 for c in checks if c.passed)} PASS, {len(missed)} MISS "
        f"(targets: throughput and p50 within 15 %, p99 within 30 %, backlog shape r >= {SHAPE_MIN_CORRELATION})"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
