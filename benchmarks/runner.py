"""The measurements of one benchmark run: interleaved timing, quality, fresh-process peak RSS, memory ceilings.

Every function here measures; nothing is modeled (see benchmarks.cost for the model).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cost import CeilingRun
from .errors import BenchError, BenchErrorCode
from .inputs import BenchInput
from .workers import Worker

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def variant_options(variant: str) -> dict[str, Any]:
    """Worker options per variant: libvips with one thread and no operation cache (its resizer's default)."""
    if variant == "vips":
        return {"resizer_options": {"threads": 1, "cache": False}}
    return {}


@dataclass
class PairSamples:
    """Samples of one variant x input, index i = round i (only rounds where it succeeded)."""

    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)  # from the first warm-up run
    saved: dict[str, str] = field(default_factory=dict)  # output name -> file written in the first warm-up run
    error: dict[str, str] | None = None


@dataclass
class TimingResult:
    samples: dict[tuple[str, str], PairSamples]
    rounds_done: int
    warmup: int
    versions: dict[str, dict[str, str]]
    long_lived_hwm_kb: dict[str, int | None]
    skipped_variants: dict[str, str]
    seconds: float


def measure_timing(
    inputs: Sequence[BenchInput],
    variants: Sequence[str],
    *,
    rounds: int,
    min_rounds: int,
    warmup: int,
    budget_s: float,
    seed: int,
    save_dir: Path,
    progress: Progress = _quiet,
    job_timeout_s: float = 120.0,
) -> TimingResult:
    """One long-lived worker per variant; after `warmup` runs of every pair, each round runs every (variant, input)
    once in a freshly shuffled order. Stops after `rounds`, or earlier once `min_rounds` are done and `budget_s`
    is spent (shared machine: a bounded run beats a long one)."""
    t_start = time.monotonic()
    rng = random.Random(seed)
    workers: dict[str, Worker] = {}
    skipped: dict[str, str] = {}
    samples: dict[tuple[str, str], PairSamples] = {}
    try:
        for v in variants:
            try:
                workers[v] = Worker(v, options=variant_options(v))
            except BenchError as exc:
                skipped[v] = exc.message
                progress(f"  {v}: skipped: {exc.message}")
                continue
            for inp in inputs:
                samples[(v, inp.id)] = PairSamples()
                try:
                    workers[v].load(inp.id, inp.path)
                except BenchError as exc:
                    samples[(v, inp.id)].error = exc.to_dict()
        active = [(v, i.id) for v in workers for i in inputs if samples[(v, i.id)].error is None]

        def run_pair(v: str, input_id: str, save: Path | None) -> dict[str, Any] | None:
            ps = samples[(v, input_id)]
            try:
                return workers[v].run(input_id, save, timeout_s=job_timeout_s)
            except BenchError as exc:
                ps.error = exc.to_dict()
                progress(f"  {v} x {input_id}: failed: {exc.message}")
                if exc.code in (
                    BenchErrorCode.WORKER_DIED,
                    BenchErrorCode.WORKER_TIMEOUT,
                    BenchErrorCode.OUT_OF_MEMORY,
                ):
                    try:  # replace the dead worker; the failed pair stays excluded
                        workers[v] = Worker(v, options=variant_options(v))
                        for inp in inputs:
                            workers[v].load(inp.id, inp.path)
                    except BenchError as again:
                        for key, other in samples.items():
                            if key[0] == v and other.error is None:
                                other.error = again.to_dict()
                return None

        progress(f"  warm-up: {warmup} run(s) of {len(active)} variant x input pairs")
        for k in range(warmup):
            order = list(active)
            rng.shuffle(order)
            for v, input_id in order:
                if samples[(v, input_id)].error is not None:
                    continue
                save = None
                if k == 0:
                    save = save_dir / v / input_id
                    save.mkdir(parents=True, exist_ok=True)
                res = run_pair(v, input_id, save)
                if res is not None and k == 0:
                    samples[(v, input_id)].outputs = res["outputs"]
                    samples[(v, input_id)].saved = {o["name"]: o["path"] for o in res["outputs"] if "path" in o}
        done = 0
        for r in range(rounds):
            if done >= min_rounds and time.monotonic() - t_start > budget_s:
                progress(f"  time budget ({budget_s:.0f} s) reached after {done} rounds")
                break
            order = [p for p in active if samples[p].error is None]
            rng.shuffle(order)
            for v, input_id in order:
                res = run_pair(v, input_id, None)
                if res is None:
                    continue
                ps = samples[(v, input_id)]
                ps.wall_ms.append(float(res["wall_ms"]))
                ps.cpu_ms.append(float(res["cpu_ms"]))
                ps.rounds.append(r)
                if "phases" in res:
                    ps.phases.append(res["phases"])
            done += 1
            progress(f"  round {done}/{rounds} ({time.monotonic() - t_start:.0f} s)")
        hwm = {}
        for v, w in workers.items():
            try:
                hwm[v] = w.mem().get("hwm_kb")
            except BenchError:
                hwm[v] = None
        versions = {v: w.ready.versions for v, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    return TimingResult(samples, done, warmup, versions, hwm, skipped, time.monotonic() - t_start)


def aligned(a: PairSamples, b: PairSamples, basis: str = "wall") -> tuple[list[float], list[float]]:
    """The two sample lists (wall or cpu ms) restricted to the rounds both have (for paired ratios)."""
    va: list[float] = a.wall_ms if basis == "wall" else a.cpu_ms
    vb: list[float] = b.wall_ms if basis == "wall" else b.cpu_ms
    rb = {r: i for i, r in enumerate(b.rounds)}
    xs, ys = [], []
    for i, r in enumerate(a.rounds):
        if r in rb:
            xs.append(va[i])
            ys.append(vb[rb[r]])
    return xs, ys


def median_phases(ps: PairSamples) -> dict[str, float] | None:
    if not ps.phases:
        return None
    keys = ps.phases[0].keys()
    return {k: round(statistics.median(p[k] for p in ps.phases), 2) for k in keys}


# ---- quality -------------------------------------------------------------------------------------------------------
def measure_quality(
    inputs: Sequence[BenchInput], timing: TimingResult, progress: Progress = _quiet
) -> list[dict[str, Any]]:
    """PSNR/SSIM (luma) of each variant's largest output against a full-decode LANCZOS reference of the input."""
    from .imaging import Reference  # PIL only here (the orchestrator otherwise stays image-library free)

    rows: list[dict[str, Any]] = []
    for inp in inputs:
        try:
            ref = Reference(inp.path.read_bytes())
        except (OSError, ValueError) as exc:
            progress(f"  quality: no reference for {inp.id}: {exc}")
            continue
        for (v, input_id), ps in timing.samples.items():
            if input_id != inp.id or not ps.saved:
                continue
            name = ps.outputs[0]["name"] if ps.outputs else next(iter(ps.saved))
            path = ps.saved.get(name)
            if not path:
                continue
            try:
                q = ref.compare(Path(path).read_bytes())
            except (OSError, ValueError, BenchError) as exc:
                rows.append({"variant": v, "input": inp.id, "output": name, "error": str(exc)})
                continue
            rows.append({"variant": v, "input": inp.id, "output": name, **q})
    return rows


# ---- fresh-process peak RSS ----------------------------------------------------------------------------------------
def measure_fresh_rss(
    inputs: Sequence[BenchInput], variants: Sequence[str], *, budget_s: float, progress: Progress = _quiet
) -> list[dict[str, Any]]:
    """For each variant x input: a new worker, one job, then VmHWM (peak RSS of that process, libraries included).

    `first_run_ms` is the first job in a fresh process (cold caches, lazy library init): not the steady state.
    """
    t0 = time.monotonic()
    rows: list[dict[str, Any]] = []
    for inp in sorted(inputs, key=lambda i: i.facts.megapixels, reverse=True):
        for v in variants:
            row: dict[str, Any] = {"variant": v, "input": inp.id, "megapixels": round(inp.facts.megapixels, 2)}
            if time.monotonic() - t0 > budget_s:
                row.update(
                    ok=False, error={"code": "BENCH_SKIPPED", "message": f"RSS time budget {budget_s:.0f} s spent"}
                )
                rows.append(row)
                continue
            try:
                with Worker(v, options=variant_options(v)) as w:
                    base = w.ready.baseline_hwm_kb
                    w.load(inp.id, inp.path)
                    res = w.run(inp.id)
                    m = w.mem()
                row.update(
                    ok=True,
                    baseline_mb=round(base / 1024, 1) if base else None,
                    peak_mb=round(m["hwm_kb"] / 1024, 1) if m.get("hwm_kb") else None,
                    first_run_ms=round(res["wall_ms"], 1),
                )
            except BenchError as exc:
                row.update(ok=False, error=exc.to_dict())
            rows.append(row)
        progress(f"  rss: {inp.id} done ({time.monotonic() - t0:.0f} s)")
    return rows


# ---- memory ceilings -----------------------------------------------------------------------------------------------
def measure_ceilings(
    inputs: Sequence[BenchInput],
    backends: Sequence[str],
    ceilings_mb: Sequence[int],
    *,
    runs: int,
    budget_s: float,
    infer_above_pass: bool = False,
    measure_top: bool = False,
    progress: Progress = _quiet,
) -> tuple[list[CeilingRun], str]:
    """Each backend x input x ceiling (ascending) in a fresh worker put under the ceiling before it starts: one
    warm-up, then `runs` timed jobs (full core: the CPU share of small Lambdas is modeled later, not emulated here).

    With `infer_above_pass`, once a backend x input passes at a ceiling, the higher ceilings are not run but recorded
    as passing with the same numbers and `inferred_from_mb` set (a process that fits in N MB fits in more);
    `measure_top` still runs the highest ceiling, as a check. Each backend gets an equal share of `budget_s`; past
    it, ceilings above a pass are inferred the same way and the others are recorded as skipped (not as failures).
    Returns the runs and the mechanism in force (cgroup1 / cgroup2: kernel OOM kill; rss: watchdog kill)."""
    from .cost import SKIPPED

    out: list[CeilingRun] = []
    mechanism = "unknown"
    share = budget_s / max(1, len(backends))
    top = max(ceilings_mb)
    for b in backends:
        t0 = time.monotonic()
        for inp in inputs:
            passed: CeilingRun | None = None
            for mem in sorted(ceilings_mb):
                over_budget = time.monotonic() - t0 > share
                if passed is not None and ((infer_above_pass and not (measure_top and mem == top)) or over_budget):
                    out.append(
                        CeilingRun(
                            b,
                            inp.id,
                            mem,
                            True,
                            passed.wall_ms,
                            passed.cpu_ms,
                            passed.peak_rss_mb,
                            inferred_from_mb=passed.memory_mb,
                        )
                    )
                    continue
                if over_budget:
                    out.append(
                        CeilingRun(
                            b,
                            inp.id,
                            mem,
                            False,
                            error_code=SKIPPED,
                            error=f"not run: {b}'s ceiling time budget ({share:.0f} s) spent",
                        )
                    )
                    continue
                w: Worker | None = None
                try:
                    w = Worker(b, options=variant_options(b), ceiling_mb=mem)
                    mechanism = w.mode
                    w.load(inp.id, inp.path)
                    w.run(inp.id)  # warm-up
                    walls, cpus = [], []
                    for _ in range(runs):
                        res = w.run(inp.id)
                        walls.append(float(res["wall_ms"]))
                        cpus.append(float(res["cpu_ms"]))
                    m = w.mem()
                    run = CeilingRun(
                        b,
                        inp.id,
                        mem,
                        True,
                        statistics.median(walls),
                        statistics.median(cpus),
                        round(m["hwm_kb"] / 1024, 1) if m.get("hwm_kb") else None,
                    )
                    passed = passed or run
                    out.append(run)
                except BenchError as exc:
                    out.append(CeilingRun(b, inp.id, mem, False, error_code=str(exc.code), error=exc.message[:300]))
                finally:
                    if w is not None:
                        w.close()
            progress(f"  ceilings: {b} x {inp.id} done ({time.monotonic() - t0:.0f} s)")
    return out, mechanism
