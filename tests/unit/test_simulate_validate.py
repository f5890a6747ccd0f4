"""Prediction vs measurement from the stored local runs (tests/data/simulate/): the issue's targets, offline.

Targets the simulator currently misses are xfail(strict=True) with the reason measured: if one starts to pass, the
test fails until the mark is removed; the numbers themselves are never hard-coded here.
"""

from __future__ import annotations

from functools import lru_cache

import pytest

from harness.simulate.cli import DATA_DIR
from harness.simulate.validate import RUNS, Check, calibration_run, compare, load_extract, table

DRIFT = (
    "the machine's load rose during the run (load average 4.0 -> 8.9 on 2 cores, 69 % of the busy CPU the "
    "neighbours', raw resize 10.8x slower than its CPU time): the service rate drifted, the backlog grew faster "
    "than an average service time predicts"
)
KNOWN_MISSES = {
    ("steady", "e2e_p50"): "the per-batch overhead fitted on saturate (41 ms CPU x 1.8 slowdown) is charged to every "
    "batch, and at 3/s a batch holds about one record: +33 %",
    ("steady", "e2e_p99"): "the measured tail waits in the queue (queue wait p99 1.27 s vs p50 42 ms): messages behind "
    "a busy lane while the executor's other lane is parked wait longer than the model's",
    ("spike", "e2e_p50"): DRIFT,
    ("spike", "e2e_p99"): DRIFT,
}


@lru_cache(maxsize=1)
def all_checks() -> tuple[Check, ...]:
    exts = [(DATA_DIR / f"{r}.json", load_extract(DATA_DIR / f"{r}.json")) for r in RUNS]
    ref_path, ref = calibration_run(exts, None)
    assert ref is not None, "the saturate extract carries the fitted per-batch overhead"
    out: list[Check] = []
    for path, ext in exts:
        got, _ = compare(path.stem, ext, ref["fitted"]["local_invoke_ms"], in_sample=path == ref_path)
        out += got
    return tuple(out)


CASES = [
    (r, f)
    for r in RUNS
    for f in ("throughput", "e2e_p50", "e2e_p99", "backlog shape (correlation)")
    if not (r == "saturate" and f == "throughput")
]


@pytest.mark.parametrize(
    "run,figure",
    [
        pytest.param(r, f, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[(r, f)]))
        if (r, f) in KNOWN_MISSES
        else (r, f)
        for r, f in CASES
    ],
)
def test_prediction_meets_its_target(run: str, figure: str) -> None:
    check = next(c for c in all_checks() if c.run == run and c.figure == figure)
    assert check.passed is True, f"{run} {figure}: measured {check.measured}, predicted {check.predicted}"


def test_the_table_states_every_figure_with_a_verdict() -> None:
    lines = table(all_checks(), {})
    assert len(lines) == 2 + 5 * len(RUNS)
    assert all(any(v in line for v in ("PASS", "MISS", "reported")) for line in lines[2:])
    saturate = [c for c in all_checks() if c.run == "saturate" and c.figure == "throughput"][0]
    assert saturate.passed is None and saturate.target.startswith("calibrated")  # in-sample, not claimed
