"""The sampler thread: queue depth, in-flight, DLQ depth and running environments every period, bounded in time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness import emulator
from harness.load.model import PipelineProbe, Sample
from harness.settings import HarnessSettings


def environment_counter(settings: HarnessSettings) -> Callable[[], int | None]:
    """Counts live execution environments (the executor's runtime records whose process is alive)."""

    def count() -> int | None:
        try:
            return len(emulator.runtime_pids(settings))
        except OSError:
            return None

    return count


@dataclass
class Sampler:
    """Samples queue depth, in-flight, DLQ depth and running environments every `interval_s` on a thread.

    Bounded: stops by itself after `max_duration_s`. Use as a context manager or call start()/stop().
    """

    probe: PipelineProbe
    interval_s: float = 1.0
    environments: Callable[[], int | None] | None = None
    max_duration_s: float = 3600.0
    clock: Callable[[], float] = time.time
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample_once(self) -> Sample | None:
        try:
            d = self.probe.depths()
        except Exception:  # noqa: BLE001 - a failed sample is a gap, counted, not a crash
            self.errors += 1
            return None
        envs = self.environments() if self.environments is not None else None
        s = Sample(self.clock() * 1000, d.visible, d.in_flight, d.delayed, d.dlq_visible, envs)
        self.samples.append(s)
        return s

    def _run(self) -> None:
        end = time.monotonic() + self.max_duration_s
        while time.monotonic() < end:
            self.sample_once()
            if self._stop.wait(self.interval_s):  # the sampling period; stop() wakes it at once
                break

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.interval_s * 2))
        return self.samples

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
