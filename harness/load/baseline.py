"""Raw resize throughput of one backend on N processes over the run's corpus (the denominator of efficiency)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from harness.load.errors import BASELINE_FAILED, LoadError


@dataclass(frozen=True)
class Baseline:
    """Images per second resized by `processes` single-threaded workers, no I/O beyond memory."""

    backend: str
    processes: int
    seconds: float
    images: int
    failed: int
    images_per_s: float
    mean_resize_ms: float
    cpu_ms_per_image: float | None = None  # process CPU (all threads) per resized image, summed over the workers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _worker(
    backend: str, bodies: Sequence[bytes], sizes: str, seconds: float, start_at: float
) -> tuple[int, int, float, float]:
    """Runs in a fresh process: resize bodies round-robin from start_at for `seconds`; (ok, failed, busy_s, cpu_s)."""
    import sys

    from common.paths import HANDLERS_DIR

    if str(HANDLERS_DIR) not in sys.path:  # the project venv holds dependencies only, not the handlers
        sys.path.append(str(HANDLERS_DIR))
    from thumbnailer.config import Settings  # the handlers' own spec, so the work is the pipeline's work
    from thumbnailer.resizers import get_resizer

    settings = Settings(backend=backend, sizes=sizes)
    spec = settings.resize_spec()
    try:
        resizer = get_resizer(backend, threads=1) if backend == "vips" else get_resizer(backend)
    except TypeError:
        resizer = get_resizer(backend)
    for body in bodies[:3]:  # warm-up: imports, codec init
        try:
            resizer.resize(body, spec)
        except Exception:  # noqa: BLE001 - bad inputs are part of some mixes
            pass
    while time.time() < start_at:  # line the workers up on a common start (bounded by start_at)
        time.sleep(min(0.01, max(0.0, start_at - time.time())))
    ok = failed = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    end = t0 + seconds
    i = 0
    while time.perf_counter() < end:
        try:
            resizer.resize(bodies[i % len(bodies)], spec)
            ok += 1
        except Exception:  # noqa: BLE001
            failed += 1
        i += 1
    return ok, failed, time.perf_counter() - t0, time.process_time() - c0


def measure(
    backend: str,
    bodies: Sequence[bytes],
    *,
    processes: int,
    seconds: float = 10.0,
    sizes: str = "large:1024x1024,small:256x256",
) -> Baseline:
    """Resize the same inputs in `processes` fresh processes for `seconds` each, at the same time."""
    if not bodies:
        raise LoadError(BASELINE_FAILED, "Expected at least one corpus body for the resize baseline but received none")
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0 + 0.5 * processes  # after the spawns and warm-ups
    try:
        with ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
            futures = [pool.submit(_worker, backend, list(bodies), sizes, seconds, start_at) for _ in range(processes)]
            results = [f.result(timeout=seconds + 120) for f in futures]
    except Exception as exc:  # noqa: BLE001
        raise LoadError(
            BASELINE_FAILED, f"resize baseline for {backend!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    ok = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    rate = sum((r[0] + r[1]) / r[2] for r in results if r[2] > 0)
    busy = sum(r[2] for r in results)
    cpu = sum(r[3] for r in results)
    return Baseline(
        backend,
        processes,
        seconds,
        ok,
        failed,
        rate,
        1000 * busy / max(1, ok + failed),
        1000 * cpu / max(1, ok + failed),
    )
