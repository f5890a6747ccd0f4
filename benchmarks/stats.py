"""Summary statistics of timing samples and side-by-side ratios (pure functions, no I/O)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from common.errors import expected

from .errors import BenchError, BenchErrorCode


@dataclass(frozen=True, slots=True)
class Summary:
    """Distribution of one variant x input: milliseconds per image and derived throughput."""

    n: int
    median: float
    mean: float
    min: float
    max: float
    p25: float
    p75: float
    stdev: float

    @property
    def iqr(self) -> float:
        return self.p75 - self.p25

    @property
    def images_per_s(self) -> float:
        return 1000.0 / self.median if self.median > 0 else math.inf

    def to_dict(self) -> dict[str, float]:
        d = asdict(self)
        d["iqr"] = self.iqr
        d["images_per_s"] = self.images_per_s
        return d


def _check_samples(samples: Sequence[float], what: str) -> list[float]:
    values = list(samples)
    if not values:
        raise BenchError(BenchErrorCode.INVALID_ARGUMENT, expected("at least one sample", what, values))
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise BenchError(BenchErrorCode.INVALID_ARGUMENT, expected("finite non-negative numbers", what, v))
    return [float(v) for v in values]


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values (numpy's default 'linear' method)."""
    if not sorted_values:
        raise BenchError(BenchErrorCode.INVALID_ARGUMENT, expected("a non-empty sequence", "quantile", sorted_values))
    if not 0.0 <= q <= 1.0:
        raise BenchError(BenchErrorCode.INVALID_ARGUMENT, expected("a number 0..1", "quantile q", q))
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(sorted_values[lo])
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def summarize(samples: Sequence[float], what: str = "timing samples") -> Summary:
    values = sorted(_check_samples(samples, what))
    return Summary(
        n=len(values),
        median=statistics.median(values),
        mean=statistics.fmean(values),
        min=values[0],
        max=values[-1],
        p25=quantile(values, 0.25),
        p75=quantile(values, 0.75),
        stdev=statistics.stdev(values) if len(values) > 1 else 0.0,
    )


@dataclass(frozen=True, slots=True)
class Ratio:
    """time(variant) / time(reference): < 1 means the variant is faster. `throughput` is the inverse.

    `median` is the ratio of the medians; `paired_*` are over per-round ratios (both timed in the same shuffled
    round, so shared-machine noise that hits both cancels), which shows how stable the ratio is.
    """

    median: float
    paired_median: float
    paired_min: float
    paired_max: float
    rounds: int

    @property
    def throughput(self) -> float:
        return 1.0 / self.median if self.median > 0 else math.inf

    def to_dict(self) -> dict[str, float]:
        d = asdict(self)
        d["throughput"] = self.throughput
        return d


def ratio(variant: Sequence[float], reference: Sequence[float]) -> Ratio:
    """Side-by-side ratio of two sample lists taken in the same rounds (index i = round i)."""
    v = _check_samples(variant, "variant samples")
    r = _check_samples(reference, "reference samples")
    med_r = statistics.median(r)
    if med_r <= 0:
        raise BenchError(BenchErrorCode.INVALID_ARGUMENT, expected("a positive median", "reference samples", med_r))
    n = min(len(v), len(r))
    paired = sorted(v[i] / r[i] for i in range(n) if r[i] > 0)
    if not paired:
        paired = [statistics.median(v) / med_r]
    return Ratio(
        median=statistics.median(v) / med_r,
        paired_median=statistics.median(paired),
        paired_min=paired[0],
        paired_max=paired[-1],
        rounds=n,
    )
