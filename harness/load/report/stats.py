"""Statistics of latency and rate samples: percentiles, distributions, per-second rate series (pure)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of a sequence; None when empty."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def distribution(values: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def rate_series(times_ms: Sequence[float], t0_ms: float, bin_s: float = 1.0) -> list[tuple[float, float]]:
    """(seconds since t0, events/s) in bins of `bin_s`, empty bins included; [] without events."""
    if not times_ms:
        return []
    bins = Counter(int((t - t0_ms) / 1000 / bin_s) for t in times_ms)
    last = max(bins)
    return [(i * bin_s, bins.get(i, 0) / bin_s) for i in range(0, last + 1)]
