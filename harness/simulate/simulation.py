"""One simulation end to end: a scenario's arrivals and mix, a calibration and knobs -> engine run -> figures."""

from __future__ import annotations

import heapq
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from common.paths import ROOT
from harness.load.corpus import load_corpus
from harness.load.scenario import Scenario
from harness.simulate.arrivals import arrival_times
from harness.simulate.calibration import Calibration, mix_weights
from harness.simulate.engine import Engine, SimOutput
from harness.simulate.errors import SCENARIO_INVALID, SimulateError
from harness.simulate.knobs import Knobs
from harness.simulate.metrics import summarize
from harness.simulate.service import make_service

EXACT_DRAW_LIMIT = 20_000  # up to this many uploads the classes are drawn as the load generator draws them


@dataclass(frozen=True)
class Simulation:
    """A scenario (arrival profile, mix), a calibration and knobs; `run()` -> the report's summary dict."""

    scenario: Scenario
    calibration: Calibration
    knobs: Knobs

    def upload_times(self) -> np.ndarray:
        sc, k = self.scenario, self.knobs
        profile = replace(sc.profile, rate=k.rate) if k.rate is not None else sc.profile
        duration = k.duration_s if k.duration_s is not None else sc.duration_s
        if k.count is not None:
            limit = k.count
        elif k.rate is not None or k.duration_s is not None:  # the load generator's laptop bound does not apply
            limit = sc.count if sc.count is not None else 10**9
        else:
            limit = min(sc.max_uploads, sc.count) if sc.count is not None else sc.max_uploads
        if limit > 50_000_000:
            expected_n = sum((e - s) * r for s, e, r in profile.segments(duration))
            if expected_n > 50_000_000:
                raise SimulateError(
                    SCENARIO_INVALID,
                    f"Expected at most 50,000,000 uploads for a simulation but received a profile of {expected_n:,.0f}",
                )
        return arrival_times(profile, duration, limit, sc.arrivals, sc.seed)

    def calibration_for_scenario(self) -> Calibration:
        """The calibration's classes re-weighted by this scenario's mix when every pattern matches a class."""
        names = [c.name for c in self.calibration.classes]
        doc = {"scenario": {"mix": [list(p) for p in self.scenario.mix]}}
        weights = mix_weights(doc, names)
        if sum(weights.values()) > 0.999:
            return self.calibration.with_mix(weights)
        return self.calibration

    def classes(self, cal: Calibration, n: int, rng: np.random.Generator) -> np.ndarray:
        names = [c.name for c in cal.classes]
        if n <= EXACT_DRAW_LIMIT:
            exact = _exact_draw(self.scenario, names, n)
            if exact is not None:
                return exact
        return rng.choice(len(names), size=n, p=cal.weights())

    def run_raw(self) -> tuple[SimOutput, Calibration, float]:
        t0 = time.perf_counter()
        rng = np.random.default_rng(self.knobs.seed)
        cal = self.calibration_for_scenario()
        times = self.upload_times()
        if len(times) == 0:
            raise SimulateError(
                SCENARIO_INVALID, f"Expected at least one upload from scenario {self.scenario.name!r} but received none"
            )
        cls = self.classes(cal, len(times), rng)
        service = make_service(cal, self.knobs, cls, rng)
        if self.knobs.mode == "local":  # the load generator's own bound: `concurrency` PUTs in flight at most
            puts = cal.put_ms.sample(rng, len(times)) / 1000.0
            times = generator_starts(np.sort(times), puts, self.scenario.concurrency)
            service.preset_put_s = puts
        out = Engine(self.knobs, service, times, rng).run()
        return out, cal, time.perf_counter() - t0

    def run(self) -> dict[str, Any]:
        out, cal, wall = self.run_raw()
        return summarize(out, cal, self.scenario, wall_s=wall)


def generator_starts(due: np.ndarray, put_s: np.ndarray, concurrency: int) -> np.ndarray:
    """When the open-loop generator (harness.load.generator) really starts each upload: at its due time, or when
    one of its `concurrency` PUTs in flight ends (FIFO), whichever is later; `put_s` is each PUT's duration."""
    slots = [0.0] * max(1, concurrency)
    out = np.empty(len(due))
    for i, (d, p) in enumerate(zip(due.tolist(), put_s.tolist(), strict=True)):
        start = max(d, heapq.heappop(slots))
        out[i] = start
        heapq.heappush(slots, start + p)
    return out


def _exact_draw(scenario: Scenario, names: list[str], n: int) -> np.ndarray | None:
    """Class index per upload in the load generator's order (harness.load.corpus: weighted pattern, then a file),
    without reading the files; None when the corpus folder is absent or holds a file no class describes."""
    root = Path(scenario.corpus_dir) if Path(scenario.corpus_dir).is_absolute() else ROOT / scenario.corpus_dir
    if not root.is_dir():
        return None
    try:
        corpus = load_corpus(root, scenario.mix, max_file_bytes=1 << 40)
    except Exception:  # noqa: BLE001 - any corpus problem: fall back to the weights
        return None
    index = {name: i for i, name in enumerate(names)}
    groups = [[index.get(item.name, -1) for item in items] for _, _, items in corpus.groups]
    if any(i < 0 for g in groups for i in g):
        return None
    rng = random.Random(scenario.seed)
    weights = [w for _, w, _ in corpus.groups]
    picks = rng.choices(range(len(groups)), weights=weights, k=n)
    return np.asarray([rng.choice(groups[g]) for g in picks], dtype=np.int64)
