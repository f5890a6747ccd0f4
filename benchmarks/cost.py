"""Lambda sizing model: CPU share by memory, price per million images (arm64, x86_64), cheapest memory meeting a target.

Everything here is MODELED from measured local numbers; nothing in this module measures anything.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from common.errors import expected
from infra.pricing import FULL_VCPU_MB, PRICES

from .errors import BenchError, BenchErrorCode

# The price table and the CPU share (FULL_VCPU_MB) live in infra.pricing. The job is single-threaded (concurrency 1),
# so memory above FULL_VCPU_MB buys no speed.
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10240
DEFAULT_CEILINGS_MB: tuple[int, ...] = (128, 256, 512, 1024, 1769)
COST_TIE_TOLERANCE = 0.01


def _check_memory(memory_mb: object) -> int:
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or not MIN_MEMORY_MB <= memory_mb <= MAX_MEMORY_MB:
        raise BenchError(
            BenchErrorCode.INVALID_ARGUMENT,
            expected(f"an integer {MIN_MEMORY_MB}..{MAX_MEMORY_MB} (MB)", "Lambda memory", memory_mb),
        )
    return memory_mb


def cpu_share(memory_mb: int) -> float:
    """Fraction of one vCPU a single-threaded job gets at `memory_mb`: linear below 1769 MB, capped at 1."""
    return min(1.0, _check_memory(memory_mb) / FULL_VCPU_MB)


def modeled_duration_ms(cpu_ms: float, memory_mb: int, cpu_speed_factor: float = 1.0, wait_ms: float = 0.0) -> float:
    """Lambda duration of one image: CPU time stretched by the CPU share, plus a modeled non-CPU wait (I/O) unchanged.

    `cpu_ms` is measured locally (all threads of the process). The measured wall time is not used: the job does no
    I/O, so on this shared machine wall - CPU is time spent waiting for a core, which Lambda does not charge like that.
    `cpu_speed_factor` is Lambda core time per local core time (1.0 = same; unknown, so 1.0 by default: a model).
    """
    for name, v in (("cpu_ms", cpu_ms), ("cpu_speed_factor", cpu_speed_factor), ("wait_ms", wait_ms)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise BenchError(BenchErrorCode.INVALID_ARGUMENT, expected("a finite non-negative number", name, v))
    return cpu_ms * cpu_speed_factor / cpu_share(memory_mb) + wait_ms


def cost_per_million_usd(duration_ms: float, memory_mb: int, arch: str, images_per_invocation: int = 1) -> float:
    """USD per million images: billed duration (ceil to 1 ms) x GB x price + request price / images per invocation."""
    if arch not in PRICES:
        raise BenchError(BenchErrorCode.INVALID_ARGUMENT, expected(f"one of {'|'.join(PRICES)}", "architecture", arch))
    if (
        isinstance(images_per_invocation, bool)
        or not isinstance(images_per_invocation, int)
        or images_per_invocation < 1
    ):
        raise BenchError(
            BenchErrorCode.INVALID_ARGUMENT,
            expected("a positive integer", "images per invocation", images_per_invocation),
        )
    if not isinstance(duration_ms, (int, float)) or not math.isfinite(duration_ms) or duration_ms < 0:
        raise BenchError(
            BenchErrorCode.INVALID_ARGUMENT, expected("a finite non-negative number", "duration_ms", duration_ms)
        )
    price = PRICES[arch]
    gb = _check_memory(memory_mb) / 1024.0
    # one invocation carries `images_per_invocation` images back to back and is billed once, rounded up to 1 ms
    billed_ms_per_invocation = math.ceil(duration_ms * images_per_invocation)
    compute = billed_ms_per_invocation / 1000.0 * gb * price.usd_per_gb_s / images_per_invocation
    request = price.usd_per_million_requests / 1_000_000 / images_per_invocation
    return (compute + request) * 1_000_000


@dataclass(frozen=True, slots=True)
class CeilingRun:
    """Measured: one backend x input under one memory ceiling (locally, full core). ok=False means it failed."""

    backend: str
    input: str
    memory_mb: int
    ok: bool
    wall_ms: float | None = None  # median over the timed runs
    cpu_ms: float | None = None
    peak_rss_mb: float | None = None
    error_code: str | None = None
    error: str | None = None
    inferred_from_mb: int | None = None  # not run at this ceiling: passed at this lower one (memory is monotonic)

    @property
    def measured(self) -> bool:
        """False when the run was skipped (time budget), so it neither passed nor failed."""
        return self.error_code != SKIPPED


SKIPPED = "BENCH_SKIPPED"


@dataclass(frozen=True, slots=True)
class SizingRow:
    """Modeled: one backend x input x memory: Lambda duration and USD per million images for each architecture."""

    backend: str
    input: str
    memory_mb: int
    ok: bool
    modeled_ms: float | None
    usd_per_million: dict[str, float]
    error_code: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def pooled_cpu_ms(runs: Iterable[CeilingRun]) -> dict[tuple[str, str], float]:
    """Median CPU ms per backend x input over every ceiling where it actually ran and passed.

    On a full core the ceiling does not change the CPU a job needs, so differences between ceilings are run-to-run
    noise; pooling them keeps that noise out of the comparison between memory sizes (otherwise the "cheapest" size
    would be whichever happened to run in a quiet moment)."""
    by: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        if r.ok and r.cpu_ms is not None and r.inferred_from_mb is None:
            by.setdefault((r.backend, r.input), []).append(r.cpu_ms)
    return {k: statistics.median(v) for k, v in by.items()}


def model_rows(
    runs: Iterable[CeilingRun],
    *,
    cpu_speed_factor: float = 1.0,
    images_per_invocation: int = 1,
    io_wait_ms: float = 0.0,
) -> list[SizingRow]:
    """Modeled duration and cost of each measured run. `io_wait_ms` adds a modeled, memory-independent wait per image
    (S3 GET + PUT in the real pipeline; 0 by default: only the measured job is priced)."""
    if isinstance(io_wait_ms, bool) or not isinstance(io_wait_ms, (int, float)) or io_wait_ms < 0:
        raise BenchError(
            BenchErrorCode.INVALID_ARGUMENT, expected("a non-negative number of milliseconds", "io_wait_ms", io_wait_ms)
        )
    runs = list(runs)
    pooled = pooled_cpu_ms(runs)
    rows: list[SizingRow] = []
    for run in runs:
        if not run.ok or run.cpu_ms is None:
            rows.append(SizingRow(run.backend, run.input, run.memory_mb, False, None, {}, run.error_code))
            continue
        cpu = pooled.get((run.backend, run.input), run.cpu_ms)
        ms = modeled_duration_ms(cpu, run.memory_mb, cpu_speed_factor, io_wait_ms)
        usd = {arch: cost_per_million_usd(ms, run.memory_mb, arch, images_per_invocation) for arch in PRICES}
        rows.append(SizingRow(run.backend, run.input, run.memory_mb, True, ms, usd))
    return rows


@dataclass(frozen=True, slots=True)
class Recommendation:
    """Cheapest memory for one backend and architecture that never failed and meets the latency target."""

    backend: str
    arch: str
    memory_mb: int | None  # None: no measured ceiling qualified
    usd_per_million: float | None  # on the cost input
    worst_modeled_ms: float | None  # slowest latency input at that memory
    reason: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def recommend(
    rows: Sequence[SizingRow],
    *,
    backend: str,
    arch: str,
    latency_target_ms: float,
    latency_inputs: Sequence[str],
    cost_input: str,
    required_inputs: Sequence[str] | None = None,
) -> Recommendation:
    """Pick the cheapest memory (ties: the smaller) where every required input succeeded and every latency input's
    modeled duration is <= the target. Cost is taken on `cost_input` (the typical image)."""
    if not isinstance(latency_target_ms, (int, float)) or latency_target_ms <= 0:
        raise BenchError(
            BenchErrorCode.INVALID_ARGUMENT,
            expected("a positive number of milliseconds", "latency target", latency_target_ms),
        )
    mine = [r for r in rows if r.backend == backend]
    required = set(required_inputs) if required_inputs is not None else {r.input for r in mine}
    by_mem: dict[int, dict[str, SizingRow]] = {}
    for r in mine:
        by_mem.setdefault(r.memory_mb, {})[r.input] = r
    candidates: list[tuple[float, int, float]] = []
    rejected: list[str] = []
    for mem in sorted(by_mem):
        got = by_mem[mem]
        failed = sorted(i for i in required if i in got and not got[i].ok and got[i].error_code != SKIPPED)
        if failed:
            rejected.append(f"{mem} MB fails on {', '.join(failed)}")
            continue
        unmeasured = sorted(i for i in required if i not in got or got[i].error_code == SKIPPED)
        if unmeasured:
            rejected.append(f"{mem} MB not measured for {', '.join(unmeasured)}")
            continue
        lat = [got[i].modeled_ms for i in latency_inputs if i in got]
        if not lat or cost_input not in got:
            rejected.append(f"{mem} MB lacks measurements")
            continue
        worst = max(v for v in lat if v is not None)
        if worst > latency_target_ms:
            rejected.append(f"{mem} MB too slow ({worst:.0f} ms > {latency_target_ms:.0f} ms)")
            continue
        candidates.append((got[cost_input].usd_per_million[arch], mem, worst))
    if not candidates:
        return Recommendation(
            backend, arch, None, None, None, "no measured memory size qualifies: " + "; ".join(rejected)
        )
    cheapest = min(c[0] for c in candidates)
    # CPU-bound below 1769 MB, duration x memory is constant: costs differ only by 1 ms rounding. Within
    # COST_TIE_TOLERANCE they are a tie, and the smallest memory wins (the least memory reserved per concurrent image).
    ties = [c for c in candidates if c[0] <= cheapest * (1 + COST_TIE_TOLERANCE)]
    usd, mem, worst = min(ties, key=lambda c: c[1])
    why = f"cheapest of {len(candidates)} qualifying sizes"
    if len(ties) > 1:
        tied = ", ".join(str(c[1]) for c in sorted(ties, key=lambda c: c[1]))
        why += f" (within {COST_TIE_TOLERANCE:.0%} of it: {tied} MB; smallest taken)"
    if rejected:
        why += "; rejected: " + "; ".join(rejected)
    return Recommendation(backend, arch, mem, usd, worst, why)


def price_table_rows() -> list[Mapping[str, object]]:
    return [
        {"arch": p.arch, "usd_per_gb_s": p.usd_per_gb_s, "usd_per_million_requests": p.usd_per_million_requests}
        for p in PRICES.values()
    ]
