"""Upload times of a scenario's arrival profile as one numpy array (the load generator's schedule, vectorised)."""

from __future__ import annotations

import math

import numpy as np

from harness.load.scenario import Profile


def arrival_times(
    profile: Profile, duration_s: float, limit: int, arrivals: str = "uniform", seed: int = 1
) -> np.ndarray:
    """Seconds after the start at which each upload is due, as harness.load.scenario.arrival_offsets computes them
    (uniform: upload k when the integral of the rate reaches k; poisson: exponential gaps), for millions of uploads."""
    out: list[np.ndarray] = []
    have = 0
    cum = 0.0
    rng = np.random.default_rng(seed)
    for start, end, rate in profile.segments(duration_s):
        if have >= limit:
            break
        if rate <= 0:
            continue
        room = limit - have
        if arrivals == "poisson":
            expect = (end - start) * rate
            n = int(expect + 6 * math.sqrt(expect) + 10)
            t = start + np.cumsum(rng.exponential(1.0 / rate, size=n))
            t = t[t < end][:room]
        else:
            k0 = math.ceil(cum - 1e-9)
            k1 = math.ceil(cum + (end - start) * rate - 1e-9)  # first k due at or after `end`
            ks = np.arange(k0, k1, dtype=np.float64)
            t = start + (ks - cum) / rate
            t = t[t < end - 1e-9][:room]
        out.append(t)
        have += len(t)
        cum += (end - start) * rate
    return np.concatenate(out) if out else np.zeros(0)


def rate_series(times: np.ndarray, bin_s: float, until_s: float) -> np.ndarray:
    """Uploads per second in bins of `bin_s` from 0 to `until_s`."""
    bins = max(1, int(math.ceil(until_s / bin_s)))
    counts = np.bincount(np.minimum((times / bin_s).astype(np.int64), bins - 1), minlength=bins)
    return counts / bin_s
