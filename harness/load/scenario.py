"""Load scenarios: TOML files -> validated frozen values, and the open-loop arrival schedule of a rate profile."""

from __future__ import annotations

import math
import random
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from common.paths import ROOT
from harness.chaos.errors import InvalidFaultSpec
from harness.chaos.faults import FaultRule
from harness.load.errors import SCENARIO_INVALID, SCENARIO_NOT_FOUND, LoadError

SCENARIOS_DIR = ROOT / "benchmarks" / "scenarios"
PROFILE_KINDS = ("constant", "step", "spike")
ARRIVALS = ("uniform", "poisson")
BACKENDS = ("pillow", "vips")
# Hard bounds: a scenario file can never ask for more than this (loopback load on a shared laptop).
MAX_UPLOADS_LIMIT = 100_000
MAX_DURATION_LIMIT_S = 3600.0


def _invalid(what: str, expected: str, received: object) -> LoadError:
    return LoadError(SCENARIO_INVALID, f"Expected {expected} for {what} but received {received!r}")


@dataclass(frozen=True)
class Profile:
    """Offered upload rate over time (uploads/s): constant, steps [(start_s, rate)], or a spike of factor x rate."""

    kind: str = "constant"
    rate: float = 10.0
    steps: tuple[tuple[float, float], ...] = ()
    spike_at_s: float = 0.0
    spike_duration_s: float = 0.0
    spike_factor: float = 10.0

    def segments(self, duration_s: float) -> list[tuple[float, float, float]]:
        """Piecewise-constant (start_s, end_s, rate) segments covering [0, duration_s)."""
        if self.kind == "constant":
            return [(0.0, duration_s, self.rate)]
        if self.kind == "step":
            points = sorted(self.steps) or [(0.0, self.rate)]
            if points[0][0] > 0:
                points.insert(0, (0.0, self.rate))
            out = []
            for i, (start, rate) in enumerate(points):
                end = points[i + 1][0] if i + 1 < len(points) else duration_s
                start, end = min(start, duration_s), min(end, duration_s)
                if end > start:
                    out.append((start, end, rate))
            return out
        # spike
        s0 = min(self.spike_at_s, duration_s)
        s1 = min(self.spike_at_s + self.spike_duration_s, duration_s)
        out = [(0.0, s0, self.rate), (s0, s1, self.rate * self.spike_factor), (s1, duration_s, self.rate)]
        return [seg for seg in out if seg[1] > seg[0]]

    def rate_at(self, t: float, duration_s: float) -> float:
        for start, end, rate in self.segments(duration_s):
            if start <= t < end:
                return rate
        return 0.0


@dataclass(frozen=True)
class FaultPlan:
    """[faults]: s3 = fault specs for the chaos proxy in the function's S3 path ('GET:SlowDown:rate=0.005', see
    harness.chaos.faults.FaultRule.parse); kill_runtime_every_s = SIGKILL the function's runtimes this often."""

    s3: tuple[str, ...] = ()
    kill_runtime_every_s: float | None = None
    seed: int = 7

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return tuple(FaultRule.parse(spec) for spec in self.s3)

    @property
    def active(self) -> bool:
        return bool(self.s3) or self.kill_runtime_every_s is not None


@dataclass(frozen=True)
class Scenario:
    """One load run: the offered load, its hard bounds, the corpus mix, the pipeline settings and observation."""

    name: str
    description: str = ""
    profile: Profile = field(default_factory=Profile)
    arrivals: str = "uniform"
    duration_s: float = 60.0
    count: int | None = None  # fixed count: stop after this many uploads (duration still bounds it)
    max_uploads: int = 10_000
    concurrency: int = 16  # uploads in flight at most (the open loop records any lag this causes)
    seed: int = 1
    corpus_dir: str = "fixtures/generated"
    mix: tuple[tuple[str, float], ...] = (("**/*", 1.0),)
    backends: tuple[str, ...] = ("pillow",)
    max_concurrency: int | None = None  # event source MaximumConcurrency; None = number of cores
    batch_size: int | None = None
    sample_interval_s: float = 1.0
    drain_timeout_s: float = 300.0
    baseline_seconds: float = 10.0
    read_logs: bool = True
    faults: FaultPlan | None = None  # [faults]: S3 errors through the chaos proxy, runtime kills (harness.load.faults)

    def arrival_offsets(self) -> list[float]:
        """Seconds after the start at which each upload is due (open loop; bounded by count/max_uploads/duration)."""
        limit = min(self.max_uploads, self.count) if self.count is not None else self.max_uploads
        return arrival_offsets(self.profile, self.duration_s, limit, self.arrivals, self.seed)

    def with_overrides(self, **changes: Any) -> Scenario:
        clean = {k: v for k, v in changes.items() if v is not None}
        if "rate" in clean:
            clean["profile"] = replace(self.profile, rate=float(clean.pop("rate")))
        return validate(replace(self, **clean))


def arrival_offsets(
    profile: Profile, duration_s: float, limit: int, arrivals: str = "uniform", seed: int = 1
) -> list[float]:
    """Due times of uploads under `profile`: uniform spacing (deterministic) or a seeded Poisson process."""
    offsets: list[float] = []
    rng = random.Random(seed)
    cum = 0.0  # integral of the rate from 0 to the current segment's start
    for start, end, rate in profile.segments(duration_s):
        if len(offsets) >= limit:
            break
        if rate <= 0:
            continue
        if arrivals == "poisson":
            t = start + rng.expovariate(rate)  # memoryless: restarting at a segment boundary is exact
            while t < end and len(offsets) < limit:
                offsets.append(t)
                t += rng.expovariate(rate)
        else:
            # arrival k is due when the integral of the rate reaches k (the first one at t=0)
            k = math.ceil(cum - 1e-9)
            t = start + (k - cum) / rate
            while t < end - 1e-9 and len(offsets) < limit:
                offsets.append(t)
                k += 1
                t = start + (k - cum) / rate
        cum += (end - start) * rate
    return offsets


def _number(
    table: Mapping[str, Any],
    key: str,
    default: float,
    what: str,
    *,
    minimum: float = 0.0,
    strict: bool = False,
    maximum: float = math.inf,
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid(what, "a number", value)
    if value < minimum or (strict and value == minimum) or value > maximum:
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise _invalid(what, f"a number {bound}" + (f" and <= {maximum}" if maximum != math.inf else ""), value)
    return float(value)


def _integer(
    table: Mapping[str, Any],
    key: str,
    default: int | None,
    what: str,
    *,
    minimum: int = 1,
    maximum: int = MAX_UPLOADS_LIMIT,
) -> int | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise _invalid(what, f"an integer in [{minimum}, {maximum}]", value)
    return value


def parse_scenario(data: Mapping[str, Any], name: str) -> Scenario:
    """Build a Scenario from a parsed TOML document (see benchmarks/scenarios/*.toml for the schema)."""
    known = {"name", "description", "load", "corpus", "pipeline", "observe", "faults"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _invalid(f"the top-level tables of scenario {name!r}", f"only {sorted(known)}", unknown)
    load = data.get("load", {})
    corpus = data.get("corpus", {})
    pipeline = data.get("pipeline", {})
    observe = data.get("observe", {})
    for table_name, table in (("load", load), ("corpus", corpus), ("pipeline", pipeline), ("observe", observe)):
        if not isinstance(table, dict):
            raise _invalid(f"[{table_name}]", "a table", table)
    kind = load.get("profile", "constant")
    if kind not in PROFILE_KINDS:
        raise _invalid("load.profile", f"one of {PROFILE_KINDS}", kind)
    steps_raw = load.get("steps", [])
    if not isinstance(steps_raw, list) or not all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in s)
        for s in steps_raw
    ):
        raise _invalid("load.steps", "a list of [start_s, rate] pairs", steps_raw)
    if kind == "step" and not steps_raw:
        raise _invalid("load.steps", "at least one [start_s, rate] pair for profile 'step'", steps_raw)
    profile = Profile(
        kind=kind,
        rate=_number(load, "rate", 10.0, "load.rate", strict=True),
        steps=tuple((float(a), float(b)) for a, b in steps_raw),
        spike_at_s=_number(load, "spike_at_s", 0.0, "load.spike_at_s"),
        spike_duration_s=_number(load, "spike_duration_s", 0.0, "load.spike_duration_s"),
        spike_factor=_number(load, "spike_factor", 10.0, "load.spike_factor", strict=True),
    )
    mix_raw = corpus.get("mix", {"**/*": 1.0})
    if not isinstance(mix_raw, dict) or not mix_raw:
        raise _invalid("corpus.mix", "a non-empty table of glob pattern = weight", mix_raw)
    mix = []
    for pattern, weight in mix_raw.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
            raise _invalid(f"corpus.mix[{pattern!r}]", "a positive weight", weight)
        mix.append((str(pattern), float(weight)))
    backends = pipeline.get("backends", ["pillow"])
    if not isinstance(backends, list) or not backends or any(b not in BACKENDS for b in backends):
        raise _invalid("pipeline.backends", f"a non-empty list drawn from {BACKENDS}", backends)
    arrivals = load.get("arrivals", "uniform")
    if arrivals not in ARRIVALS:
        raise _invalid("load.arrivals", f"one of {ARRIVALS}", arrivals)
    max_conc = pipeline.get("max_concurrency", "cores")
    if max_conc != "cores":
        max_conc = _integer(pipeline, "max_concurrency", None, "pipeline.max_concurrency", minimum=2, maximum=1000)
    read_logs = observe.get("read_logs", True)
    if not isinstance(read_logs, bool):
        raise _invalid("observe.read_logs", "true or false", read_logs)
    scenario = Scenario(
        name=str(data.get("name", name)),
        description=str(data.get("description", "")),
        profile=profile,
        arrivals=arrivals,
        duration_s=_number(load, "duration_s", 60.0, "load.duration_s", strict=True, maximum=MAX_DURATION_LIMIT_S),
        count=_integer(load, "count", None, "load.count"),
        max_uploads=_integer(load, "max_uploads", 10_000, "load.max_uploads") or 10_000,
        concurrency=_integer(load, "concurrency", 16, "load.concurrency", maximum=256) or 16,
        seed=_integer(load, "seed", 1, "load.seed", minimum=0, maximum=2**31) or 0,
        corpus_dir=str(corpus.get("dir", "fixtures/generated")),
        mix=tuple(mix),
        backends=tuple(backends),
        max_concurrency=None if max_conc == "cores" else max_conc,
        batch_size=_integer(pipeline, "batch_size", None, "pipeline.batch_size", maximum=10_000),
        sample_interval_s=_number(observe, "sample_interval_s", 1.0, "observe.sample_interval_s", minimum=0.05),
        drain_timeout_s=_number(
            observe, "drain_timeout_s", 300.0, "observe.drain_timeout_s", strict=True, maximum=MAX_DURATION_LIMIT_S
        ),
        baseline_seconds=_number(observe, "baseline_seconds", 10.0, "observe.baseline_seconds"),
        read_logs=read_logs,
        faults=_faults(data.get("faults")),
    )
    return validate(scenario)


def _faults(table: Any) -> FaultPlan | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise _invalid("[faults]", "a table", table)
    unknown = sorted(set(table) - {"s3", "kill_runtime_every_s", "seed"})
    if unknown:
        raise _invalid("[faults]", "only s3, kill_runtime_every_s, seed", unknown)
    specs = table.get("s3", [])
    if not isinstance(specs, list) or not all(isinstance(x, str) for x in specs):
        raise _invalid("faults.s3", "a list of fault specs like 'GET:SlowDown:rate=0.005'", specs)
    try:
        for spec in specs:
            FaultRule.parse(spec)
    except InvalidFaultSpec as exc:
        raise _invalid("faults.s3", "valid fault specs", f"{specs}: {exc.message}") from exc
    every = table.get("kill_runtime_every_s")
    kill = (
        None
        if every is None
        else _number(table, "kill_runtime_every_s", 60.0, "faults.kill_runtime_every_s", strict=True)
    )
    seed = _integer(table, "seed", 7, "faults.seed", minimum=0, maximum=2**31)
    return FaultPlan(tuple(specs), kill, 7 if seed is None else seed)


def validate(scenario: Scenario) -> Scenario:
    """Re-check the cross-field bounds (also after CLI overrides)."""
    if not 0 < scenario.duration_s <= MAX_DURATION_LIMIT_S:
        raise _invalid("load.duration_s", f"a number in (0, {MAX_DURATION_LIMIT_S}]", scenario.duration_s)
    if not 1 <= scenario.max_uploads <= MAX_UPLOADS_LIMIT:
        raise _invalid("load.max_uploads", f"an integer in [1, {MAX_UPLOADS_LIMIT}]", scenario.max_uploads)
    if scenario.count is not None and scenario.count > scenario.max_uploads:
        raise _invalid("load.count", f"at most load.max_uploads ({scenario.max_uploads})", scenario.count)
    if scenario.profile.rate <= 0:
        raise _invalid("load.rate", "a number > 0", scenario.profile.rate)
    return scenario


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load `benchmarks/scenarios/<name>.toml`, or a TOML file given by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = SCENARIOS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        available = sorted(p.stem for p in SCENARIOS_DIR.glob("*.toml"))
        raise LoadError(
            SCENARIO_NOT_FOUND,
            f"Expected a scenario name in {available} or a .toml path but received {str(name_or_path)!r}",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise LoadError(SCENARIO_INVALID, f"Expected valid TOML in {path} but received a parse error: {exc}") from exc
    return parse_scenario(data, path.stem)
