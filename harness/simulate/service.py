"""How long a record takes and how it ends: on AWS (own CPU share per environment) or on this machine (shared cores)."""

from __future__ import annotations

import bisect
import random

import numpy as np

from harness.simulate.calibration import DEFAULT_LOCAL_POST_MS, Calibration
from harness.simulate.engine import cpu_share
from harness.simulate.knobs import Knobs


class _Base:
    """Per-message input class, CPU and permanent-failure flag, drawn once from the calibration's mix."""

    def __init__(self, cal: Calibration, knobs: Knobs, cls: np.ndarray, rng: np.random.Generator) -> None:
        self.cal = cal
        self.k = knobs
        self.rng = rng
        self.py_rng = random.Random(knobs.seed)
        cpu = np.asarray([c.cpu_ms for c in cal.classes], float)
        perm = np.asarray([c.permanent for c in cal.classes], bool)
        self.cls = np.asarray(cls)
        self.cpu_np = cpu[self.cls]
        self.perm_np = rng.random(len(cls)) < knobs.permanent_rate if knobs.permanent_rate >= 0 else perm[self.cls]
        self.retry_rate = max(knobs.retryable_rate, cal.retryable_rate)
        self.cpu: list[float] = []
        self.perm: list[bool] = []
        self.upload: list[float] = []
        self.preset_put_s: np.ndarray | None = None  # each upload's PUT duration when the caller drew them (s)

    def enqueue_delay_s(self, n: int) -> np.ndarray:
        put = self.preset_put_s if self.preset_put_s is not None and len(self.preset_put_s) == n else None
        if put is None:
            put = self.cal.put_ms.sample(self.rng, n) / 1000.0
        return put + self.cal.notify_ms.sample(self.rng, n) / 1000.0

    def bind(self, order: np.ndarray, upload_t: np.ndarray) -> None:
        self.cls = self.cls[order]
        self.cpu = self.cpu_np[order].tolist()
        self.perm = self.perm_np[order].tolist()
        self.upload = np.sort(upload_t).tolist()

    def permanent(self, i: int) -> bool:
        return self.perm[i]

    def retry(self) -> bool:
        return self.retry_rate > 0 and self.py_rng.random() < self.retry_rate


class AwsService(_Base):
    """Each environment has its own CPU share: record = (resize + handler CPU) x speed / share + S3 latency."""

    def __init__(self, cal: Calibration, knobs: Knobs, cls: np.ndarray, rng: np.random.Generator) -> None:
        super().__init__(cal, knobs, cls, rng)
        self.stretch = knobs.cpu_speed_factor / cpu_share(knobs.memory_mb)

    def record_ms(self, ids: list[int], t: float, busy: int) -> list[float]:
        cpu, oh, st, io = self.cpu, self.cal.handler_overhead_cpu_ms, self.stretch, self.k.s3_io_ms
        return [(cpu[i] + oh) * st + io for i in ids]

    def batch_overhead_ms(self, t: float, busy: int, n: int = 1) -> float:
        return self.k.invoke_overhead_ms

    def after_batch_ms(self, n: int) -> float:
        return 0.0


class LocalService(_Base):
    """One machine. With a run's measured record times (`local_handler_ms` + `local_put_ms`) a record takes one of
    them, times the run's measured slowdown at that moment (`local_slowdown`: how the CPU left by the neighbours and
    by the emulator's ingest moved); a batch costs the measured receive -> start line before its records and the
    end -> next receive line after them. Without measured times: the cores the neighbours left (`cores` minus the
    measured `other_cores`) shared by the busy environments (each ~1 core: its runtime, or the emulator serving its
    S3 calls) and the uploads' share of the emulator and the load generator; a record's CPU (resize + handler + the
    emulator's share that runs while the handler waits) is stretched at batch start by the larger of demand / those
    cores and the slowdown the raw resize baseline measured around the run."""

    def __init__(self, cal: Calibration, knobs: Knobs, cls: np.ndarray, rng: np.random.Generator) -> None:
        super().__init__(cal, knobs, cls, rng)
        share = cal.emulator_ingest_share
        self.proc_ms = cal.handler_overhead_cpu_ms + cal.emulator_cpu_ms * (1.0 - share)
        self.ingest_ms = cal.harness_cpu_ms + cal.emulator_cpu_ms * share
        self.cores = max(0.25, float(knobs.cores) - cal.other_cores)  # the CPU the neighbours left us, measured
        series = cal.local_slowdown if knobs.local_slowdown else ()
        self._slow_t = np.asarray([p[0] for p in series], float) if series else None
        self._slow_f = np.asarray([p[1] for p in series], float) if series else None

    def bind(self, order: np.ndarray, upload_t: np.ndarray) -> None:
        super().bind(order, upload_t)
        cal = self.cal
        if cal.local_handler_ms is not None:  # measured per-record wall times of the run, sampled once per message
            walls = cal.local_handler_ms.sample(self.rng, len(self.cpu)) + cal.local_put_ms
            fast = cal.local_handler_ms.quantile(0.0)  # a rejected input costs about the fastest record
            self.measured: list[float] | None = np.where(np.asarray(self.perm), fast, walls).tolist()
        else:
            self.measured = None

    def stretch(self, t: float, busy: int) -> float:
        uploads = bisect.bisect_right(self.upload, t) - bisect.bisect_right(self.upload, t - 1.0)
        ingest_cores = uploads * self.ingest_ms / 1000.0
        return max(1.0, self.cal.local_stretch, (busy + ingest_cores) / self.cores)

    def slowdown(self, t: float) -> float:
        """The run's measured record-time factor at t (1 without a series)."""
        if self._slow_t is None or self._slow_f is None:
            return 1.0
        return float(np.interp(t, self._slow_t, self._slow_f))

    def record_ms(self, ids: list[int], t: float, busy: int) -> list[float]:
        if self.measured is not None:
            m = self.measured
            f = self.slowdown(t)
            return [m[i] * f for i in ids]
        s = self.stretch(t, busy)
        cpu, proc, wait = self.cpu, self.proc_ms, self.cal.record_wait_ms
        return [(cpu[i] + proc) * s + wait for i in ids]

    def batch_overhead_ms(self, t: float, busy: int, n: int = 1) -> float:
        """Receive -> handler start: the run's measured line a + b x records when its invocations were read, else
        the fitted constant x the slowdown."""
        line = self.cal.local_pre_ms
        if line is not None:
            return max(0.0, line[0] + line[1] * n)
        return self.cal.local_invoke_ms * self.stretch(t, busy)

    def after_batch_ms(self, n: int) -> float:
        """End of an invocation -> the lane's next receive with messages waiting (return, delete, poll interval)."""
        line = self.cal.local_post_ms
        if line is not None:
            return max(0.0, line[0] + line[1] * n)
        return DEFAULT_LOCAL_POST_MS


def make_service(
    cal: Calibration, knobs: Knobs, cls: np.ndarray, rng: np.random.Generator
) -> AwsService | LocalService:
    return LocalService(cal, knobs, cls, rng) if knobs.mode == "local" else AwsService(cal, knobs, cls, rng)
