"""Pure figures of the pipeline bench: REPORT lines, billed ms per image, cost per million images, knee, recommendation,
target verdicts. Nothing here measures or talks to AWS."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from common.errors import CodedError, expected
from infra.pricing import FULL_VCPU_MB, PRICES

REPORT_RE = re.compile(
    r"REPORT RequestId: (?P<request_id>\S+)\s+Duration: (?P<duration>[\d.]+) ms\s+"
    r"Billed Duration: (?P<billed>\d+) ms\s+Memory Size: (?P<memory>\d+) MB\s+Max Memory Used: (?P<max_used>\d+) MB"
)
COST_TIE_TOLERANCE = 0.01  # costs within 1 % of the cheapest are a tie: the smaller memory wins
FLAT_RELATIVE_RANGE = 0.10  # a duration curve whose (max - min) / max is below this is flat: it has no knee
NOT_FLAT_MIN_RATIO = 1.25  # target: p50 at the smallest memory >= this x p50 at the fastest memory
OVERLAP_MAX_RATIO = 0.7  # target: overlapped billed ms/image <= 0.7 x sequential
OVERLAP_MAX_CPU_RATIO = 1.15  # target: overlapped billed ms/image <= 1.15 x the resize's CPU ms at the CPU share


class PipelineBenchError(CodedError):
    """A bad argument or an unusable measurement (INVALID_ARGUMENT, NO_REPORT_LINE, INVOKE_FAILED, ...)."""


@dataclass(frozen=True, slots=True)
class ReportLine:
    """One Lambda REPORT line."""

    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_used_mb: int


def parse_report(text: str) -> ReportLine:
    """The (last) REPORT line of an invocation's log text (NO_REPORT_LINE when there is none)."""
    found = list(REPORT_RE.finditer(text or ""))
    if not found:
        raise PipelineBenchError("NO_REPORT_LINE", expected("a REPORT line", "the invocation log", (text or "")[-300:]))
    m = found[-1]
    return ReportLine(m["request_id"], float(m["duration"]), int(m["billed"]), int(m["memory"]), int(m["max_used"]))


def usd_per_million_images(billed_ms_per_invocation: float, memory_mb: int, images: int, arch: str) -> float:
    """USD per million images of invocations billed `billed_ms_per_invocation` each carrying `images` images:
    duration (GB-s) plus the request price, both spread over the images of the invocation."""
    if arch not in PRICES:
        raise PipelineBenchError("INVALID_ARGUMENT", expected(f"one of {'|'.join(PRICES)}", "architecture", arch))
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise PipelineBenchError("INVALID_ARGUMENT", expected("a positive integer", "images per invocation", images))
    if not math.isfinite(billed_ms_per_invocation) or billed_ms_per_invocation < 0:
        raise PipelineBenchError(
            "INVALID_ARGUMENT", expected("a finite non-negative number", "billed ms", billed_ms_per_invocation)
        )
    price = PRICES[arch]
    compute = billed_ms_per_invocation / 1000.0 * memory_mb / 1024.0 * price.usd_per_gb_s
    request = price.usd_per_million_requests / 1_000_000
    return (compute + request) / images * 1_000_000


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sample."""
    if not values:
        raise PipelineBenchError("INVALID_ARGUMENT", expected("a non-empty sample", "percentile", values))
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One memory size of one backend x mode: the measured batches summarised."""

    memory_mb: int
    batches: int
    billed_ms_per_image_p50: float
    billed_ms_per_image_p99: float
    duration_ms_p50: float  # per invocation (batch)
    duration_ms_p99: float
    usd_per_million: dict[str, float]  # arch -> USD per million images (at the mean billed ms)
    max_memory_used_mb: int
    resize_ms_per_image: float | None  # sum of the handler's resize_ms per image (None: not in the logs)
    failures: int = 0  # invocations that errored or returned batch item failures
    resize_cpu_ms_per_image: float | None = None  # the handler's resize_cpu_ms (process CPU over the resize)
    cpu_ms_per_image: float | None = None  # the handler's InvocationCpuMs / images (process CPU of the invocation)
    s3_cpu_ms_per_image: float | None = None  # the handler's s3_cpu_ms: its S3 client's CPU (GET + PUTs) per image

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(
    memory_mb: int,
    billed_ms: Sequence[int],
    durations_ms: Sequence[float],
    images: Sequence[int],
    max_used_mb: Sequence[int],
    resize_ms_per_image: Sequence[float] = (),
    failures: int = 0,
    resize_cpu_ms_per_image: Sequence[float] = (),
    cpu_ms_per_image: Sequence[float] = (),
    s3_cpu_ms_per_image: Sequence[float] = (),
) -> CurvePoint:
    """A CurvePoint from per-invocation measurements (same order in every list)."""
    if not billed_ms or not len(billed_ms) == len(durations_ms) == len(images) == len(max_used_mb):
        raise PipelineBenchError(
            "INVALID_ARGUMENT", expected("equally long non-empty lists", "per-invocation figures", len(billed_ms))
        )
    per_image = [b / max(1, n) for b, n in zip(billed_ms, images, strict=True)]
    mean_billed = statistics.fmean(billed_ms)
    n_images = round(statistics.fmean(images)) or 1
    return CurvePoint(
        memory_mb=memory_mb,
        batches=len(billed_ms),
        billed_ms_per_image_p50=round(percentile(per_image, 50), 2),
        billed_ms_per_image_p99=round(percentile(per_image, 99), 2),
        duration_ms_p50=round(percentile(durations_ms, 50), 1),
        duration_ms_p99=round(percentile(durations_ms, 99), 1),
        usd_per_million={a: round(usd_per_million_images(mean_billed, memory_mb, n_images, a), 4) for a in PRICES},
        max_memory_used_mb=max(max_used_mb),
        resize_ms_per_image=round(statistics.median(resize_ms_per_image), 2) if resize_ms_per_image else None,
        failures=failures,
        resize_cpu_ms_per_image=(
            round(statistics.median(resize_cpu_ms_per_image), 2) if resize_cpu_ms_per_image else None
        ),
        cpu_ms_per_image=round(statistics.median(cpu_ms_per_image), 2) if cpu_ms_per_image else None,
        s3_cpu_ms_per_image=round(statistics.median(s3_cpu_ms_per_image), 2) if s3_cpu_ms_per_image else None,
    )


def vcpus(memory_mb: int) -> float:
    """The vCPUs Lambda gives `memory_mb` (one at FULL_VCPU_MB, in proportion below and above)."""
    return memory_mb / FULL_VCPU_MB


def resize_threads(backend: str, memory_mb: int) -> int:
    """Threads one resize runs on: Pillow's one, libvips' THUMB_VIPS_THREADS default (one per whole vCPU)."""
    if backend != "vips":
        return 1
    from thumbnailer.config import Settings

    return Settings().effective_vips_threads(memory_mb)


def cpu_floor_ms(cpu_ms: float | None, memory_mb: int, threads: int = 1) -> float | None:
    """The least `cpu_ms` of CPU on `threads` threads can take at `memory_mb`: a CPU ms takes 1/s ms on s vCPUs,
    and no more vCPUs than threads can be busy at once."""
    if cpu_ms is None or cpu_ms <= 0:
        return None
    return cpu_ms / min(float(max(1, threads)), vcpus(memory_mb))


def resize_floor_ms(point: CurvePoint, backend: str = "pillow") -> float | None:
    """The least a resize of `resize_cpu_ms_per_image` CPU ms can bill at the point's memory size (cpu_floor_ms on
    the resize's threads: below one vCPU a CPU ms takes 1769/MB ms; above it only libvips' extra threads help)."""
    return cpu_floor_ms(point.resize_cpu_ms_per_image, point.memory_mb, resize_threads(backend, point.memory_mb))


def without_cpu_ratio(point: CurvePoint, cpu_ms: float, floor_ms: float) -> float | None:
    """What `point`'s billed ms/image over `floor_ms` would be without `cpu_ms` of its CPU per image, the rest as
    measured: billed ms scaled by the share of the invocation's CPU (cpu_ms_per_image) that is left. An estimate
    of what removing a cost buys (the S3 client's, say); None without the invocation's CPU."""
    cpu = point.cpu_ms_per_image
    if not cpu or cpu <= 0 or floor_ms <= 0:
        return None
    left = max(0.0, cpu - cpu_ms) / cpu
    return point.billed_ms_per_image_p50 * left / floor_ms


def is_flat(points: Sequence[CurvePoint]) -> bool:
    """True when the p50 duration barely moves with memory ((max - min) / max < FLAT_RELATIVE_RANGE)."""
    ys = [p.billed_ms_per_image_p50 for p in points]
    if len(ys) < 2 or max(ys) <= 0:
        return True
    return (max(ys) - min(ys)) / max(ys) < FLAT_RELATIVE_RANGE


def knee(points: Sequence[CurvePoint]) -> int | None:
    """The knee of p50 duration against memory (Kneedle: the point farthest below the chord from the first to the
    last point, both axes normalised, memory on a log scale as Power Tuning draws it). None for a flat curve or
    fewer than 3 points: there, more memory never paid and the smallest size is the place to be."""
    pts = sorted(points, key=lambda p: p.memory_mb)
    if len(pts) < 3 or is_flat(pts):
        return None
    xs = [math.log2(p.memory_mb) for p in pts]
    ys = [p.billed_ms_per_image_p50 for p in pts]
    x0, x1 = xs[0], xs[-1]
    ymax, ymin = max(ys), min(ys)
    best, best_gap = None, 0.0
    for p, x, y in zip(pts, xs, ys, strict=True):
        xn = (x - x0) / (x1 - x0)
        yn = (y - ymin) / (ymax - ymin)
        chord = (ys[0] - ymin) / (ymax - ymin) + ((ys[-1] - ys[0]) / (ymax - ymin)) * xn
        gap = chord - yn  # how far the curve sits below the straight line: the bend
        if gap > best_gap + 1e-9:
            best, best_gap = p.memory_mb, gap
    return best


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The memory size to deploy for one backend (cheapest per million images; ties: the smaller)."""

    backend: str
    arch: str
    memory_mb: int | None
    usd_per_million: float | None
    billed_ms_per_image_p50: float | None
    knee_mb: int | None
    flat: bool
    reason: str
    floor_mb: int | None = None  # the memory the largest accepted image needs (sizes below are not recommended)
    cheapest_any_mb: int | None = None  # the cheapest clean size ignoring the floor (for smaller uploads only)
    cheapest_any_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cheapest(points: Sequence[CurvePoint], arch: str) -> tuple[CurvePoint, list[CurvePoint]]:
    cheapest = min(p.usd_per_million[arch] for p in points)
    ties = [p for p in points if p.usd_per_million[arch] <= cheapest * (1 + COST_TIE_TOLERANCE)]
    return min(ties, key=lambda p: p.memory_mb), ties


def recommend(backend: str, points: Sequence[CurvePoint], arch: str, *, floor_mb: int | None = None) -> Recommendation:
    """Cheapest memory size among those that ran without failures and within their memory (peak <= MemorySize) and
    are at least `floor_mb` (the memory the largest image the function accepts needs: infra.lint's estimate for
    THUMB_MAX_PIXELS; the bench's photo says nothing about those); within COST_TIE_TOLERANCE the smaller one. The
    cheapest clean size below the floor is reported beside it, and so is the knee (the fastest size before returns
    fall). With no clean size at or above the floor, the cheapest clean size is taken and the reason says so."""
    pts = sorted(points, key=lambda p: p.memory_mb)
    flat = is_flat(pts)
    k = knee(pts)
    ok = [p for p in pts if p.failures == 0 and p.max_memory_used_mb <= p.memory_mb]
    rejected = [f"{p.memory_mb} MB" for p in pts if p not in ok]
    if not ok:
        return Recommendation(backend, arch, None, None, None, k, flat, "no memory size ran cleanly", floor_mb)
    any_pick, _ = _cheapest(ok, arch)
    eligible = [p for p in ok if floor_mb is None or p.memory_mb >= floor_mb]
    pick, ties = _cheapest(eligible or ok, arch)
    why = f"cheapest per million images of {len(eligible or ok)} sizes"
    if floor_mb is not None and eligible:
        why += f" at or above the {floor_mb} MB the largest accepted image needs"
        if any_pick.memory_mb < floor_mb:
            why += (
                f" ({any_pick.memory_mb} MB is cheaper, ${any_pick.usd_per_million[arch]:.2f}/M, for uploads of at "
                f"most {max_pixels_for(any_pick.memory_mb) // 100_000 / 10:.1f} MP: lower THUMB_MAX_PIXELS with it)"
            )
    elif floor_mb is not None:
        why += f"; none measured at or above the {floor_mb} MB the largest accepted image needs"
    if len(ties) > 1:
        why += f" (within {COST_TIE_TOLERANCE:.0%}: {', '.join(str(p.memory_mb) for p in ties)} MB; smallest taken)"
    if flat:
        why += "; the duration curve is flat, so more memory only costs more"
    elif k is not None:
        why += f"; knee of the duration curve at {k} MB"
    if rejected:
        why += f"; excluded (failures or peak over the memory): {', '.join(rejected)}"
    return Recommendation(
        backend,
        arch,
        pick.memory_mb,
        pick.usd_per_million[arch],
        pick.billed_ms_per_image_p50,
        k,
        flat,
        why,
        floor_mb,
        any_pick.memory_mb,
        any_pick.usd_per_million[arch],
    )


def memory_floor_mb(max_pixels: int) -> int:
    """The memory the largest image the function accepts needs (the stack linter's rule, infra.lint)."""
    from infra.lint import estimated_peak_memory_mb

    return estimated_peak_memory_mb(max_pixels)


def max_pixels_for(memory_mb: int) -> int:
    """The largest THUMB_MAX_PIXELS whose memory floor is at most `memory_mb` (the inverse of memory_floor_mb)."""
    from infra.lint import BYTES_PER_PIXEL, DECODED_COPIES, RUNTIME_BASELINE_MB

    return max(0, (memory_mb - RUNTIME_BASELINE_MB) * 2**20 // (BYTES_PER_PIXEL * DECODED_COPIES))


def verdict(
    name: str, backend: str, measured: float | None, limit: float, *, higher_is_better: bool, unit: str, note: str = ""
) -> dict[str, Any]:
    """One entry of the `targets` list, shaped as `make bench` reports them (benchmarks/report.py)."""
    v: dict[str, Any] = {"target": name, "backend": backend, "limit": limit, "unit": unit, "note": note}
    if measured is None or not math.isfinite(measured):
        v.update(measured=None, met=None, margin_pct=None)
        return v
    met = measured >= limit if higher_is_better else measured <= limit
    margin = (measured / limit - 1.0) if higher_is_better else (1.0 - measured / limit)
    v.update(measured=round(measured, 3), met=met, margin_pct=round(margin * 100, 1))
    return v


def evaluate_targets(
    curves: Mapping[str, Mapping[str, Sequence[CurvePoint]]],
    recommendations: Mapping[str, Recommendation],
    *,
    paired_ratios: Mapping[str, Mapping[int, float]],
) -> list[dict[str, Any]]:
    """The issue's targets per backend, at its recommended memory size (curves: backend -> mode -> points;
    paired_ratios: backend -> memory -> median over rounds of overlapped / sequential billed ms per image)."""
    out: list[dict[str, Any]] = []
    for backend, modes in curves.items():
        rec = recommendations.get(backend)
        mem = rec.memory_mb if rec else None
        seq = {p.memory_mb: p for p in modes.get("sequential", ())}
        ovl = {p.memory_mb: p for p in modes.get("overlap", ())}
        at = f"at the recommended {mem} MB" if mem else "no recommended size"
        ratio = paired_ratios.get(backend, {}).get(mem) if mem else None
        out.append(
            verdict(
                "overlapped billed ms/image <= 0.7 x sequential",
                backend,
                ratio,
                OVERLAP_MAX_RATIO,
                higher_is_better=False,
                unit="x",
                note=f"{at}; paired rounds in one run",
            )
        )
        cpu_ratio, note = None, f"{at}; no resize_cpu_ms in the sequential runs' logs"
        floor = resize_floor_ms(seq[mem], backend) if mem in seq else None
        if mem in ovl and floor:
            cpu = seq[mem].resize_cpu_ms_per_image or 0.0
            cpu_ratio = ovl[mem].billed_ms_per_image_p50 / floor
            note = (
                f"{at} ({vcpus(mem):.2f} vCPU): the resize's {cpu:.1f} CPU ms (sequential runs) take at least "
                f"{floor:.1f} ms there; {ovl[mem].billed_ms_per_image_p50 / cpu:.2f} x the CPU ms unscaled"
            )
            s3 = ovl[mem].s3_cpu_ms_per_image
            if s3 is not None:
                note += f"; the S3 client's CPU beside it (overlapped): {s3:.1f} ms per image"
                bound = without_cpu_ratio(ovl[mem], s3, floor)
                if bound is not None:
                    note += f" (without it, the rest as measured: {bound:.2f} x)"
        out.append(
            verdict(
                "overlapped billed ms/image <= 1.15 x resize CPU ms/image at the CPU share",
                backend,
                cpu_ratio,
                OVERLAP_MAX_CPU_RATIO,
                higher_is_better=False,
                unit="x",
                note=note,
            )
        )
        pts = list(ovl.values())
        spread = None
        if len(pts) >= 2:
            ys = [p.billed_ms_per_image_p50 for p in pts]
            spread = max(ys) / min(ys) if min(ys) > 0 else None
        out.append(
            verdict(
                "memory curve not flat (slowest / fastest p50)",
                backend,
                spread,
                NOT_FLAT_MIN_RATIO,
                higher_is_better=True,
                unit="x",
                note="overlapped p50 billed ms/image across the memory sizes",
            )
        )
        peak = ovl[mem].max_memory_used_mb if mem in ovl else None
        out.append(
            verdict(
                "peak RSS with overlap on <= memory ceiling",
                backend,
                None if peak is None or not mem else peak / mem,
                1.0,
                higher_is_better=False,
                unit="x MemorySize",
                note=f"{at}: Max Memory Used {peak} MB" if peak is not None else at,
            )
        )
    return out
