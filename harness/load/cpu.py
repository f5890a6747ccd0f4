"""Where a run's CPU went: per-process CPU seconds from /proc and the pipeline-efficiency ceiling they imply."""

# A CpuSampler takes readings on its own thread (reading /proc costs the emulator nothing, so it can sample more often
# than the SQS depth sampler); the arithmetic (`window_usage`, `breakdown`) is pure. CPU of a process = utime + stime
# of /proc/<pid>/stat (its own threads; children excluded), so the emulator's figure does not contain the Lambda
# runtimes it started, and the runtimes' figure is the sum over their own processes.

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.runtimes import read_records, runtimes_dir

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_stat_cpu_s(stat_text: str, clk_tck: int = CLK_TCK) -> float:
    """utime + stime (fields 14 and 15 of /proc/<pid>/stat) in seconds; the comm field may hold spaces/parens."""
    fields = stat_text.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / clk_tck


def parse_machine_busy_s(proc_stat_text: str, clk_tck: int = CLK_TCK) -> float:
    """Non-idle CPU seconds of the whole machine since boot (first line of /proc/stat, minus idle and iowait)."""
    first = proc_stat_text.splitlines()[0].split()
    if first[0] != "cpu":
        raise ValueError(f"Expected the 'cpu' line first in /proc/stat but received {first[0]!r}")
    values = [int(v) for v in first[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (total - idle) / clk_tck


def process_cpu_s(pid: int) -> float | None:
    try:
        return parse_stat_cpu_s(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_s() -> float | None:
    try:
        return parse_machine_busy_s(Path("/proc/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None


def self_cpu_s() -> float:
    """CPU of this process (every thread: generator, sampler, settle), children excluded."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass(frozen=True)
class CpuReading:
    """Cumulative CPU seconds at one instant (epoch ms); None when a process could not be read."""

    t_ms: float
    emulator_s: float | None
    runtimes_s: tuple[tuple[int, float], ...]  # (pid, cpu seconds) of each live Lambda runtime process
    harness_s: float
    machine_busy_s: float | None


def cpu_reader(home: Path, clock: Callable[[], float] = time.time) -> Callable[[], CpuReading]:
    """Reads the emulator (`<home>/localstack.pid`), the runtimes (`<home>/runtimes/*.json`) and this process."""

    def emulator_pid() -> int | None:
        try:
            return int((home / "localstack.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def runtime_pids() -> list[int]:
        return [record.pid for record in read_records(runtimes_dir(home))]

    def read() -> CpuReading:
        epid = emulator_pid()
        runtimes = tuple((pid, cpu) for pid in runtime_pids() if (cpu := process_cpu_s(pid)) is not None)
        return CpuReading(
            clock() * 1000, process_cpu_s(epid) if epid is not None else None, runtimes, self_cpu_s(), machine_busy_s()
        )

    return read


@dataclass
class CpuSampler:
    """Takes a reading every `interval_s` on a thread, and one more at stop(); bounded by `max_duration_s`."""

    read: Callable[[], CpuReading]
    interval_s: float = 0.25
    max_duration_s: float = 3600.0
    readings: list[CpuReading] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def read_once(self) -> None:
        try:
            self.readings.append(self.read())
        except Exception:  # noqa: BLE001 - a failed reading is a gap, counted, not a crash
            self.errors += 1

    def _run(self) -> None:
        end = time.monotonic() + self.max_duration_s
        while time.monotonic() < end:
            self.read_once()
            if self._stop.wait(self.interval_s):
                break

    def start(self) -> CpuSampler:
        self._thread = threading.Thread(target=self._run, name="load-cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[CpuReading]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.interval_s * 2))
            self._thread = None
            self.read_once()  # a closing reading, so a window ending after the last tick still has one
        return self.readings

    def __enter__(self) -> CpuSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class CpuUsage:
    """CPU seconds spent between two readings (the pipeline's busy window)."""

    wall_s: float
    emulator_s: float | None
    runtimes_s: float
    runtime_processes: int
    harness_s: float
    machine_busy_s: float | None


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else max(0.0, b - a)


def window_usage(readings: Sequence[CpuReading], start_ms: float, end_ms: float) -> CpuUsage | None:
    """CPU spent from the last reading at/before `start_ms` to the first at/after `end_ms` (clamped to the ends).

    A runtime process first seen inside the window started inside it: all its CPU counts (its cold start too).
    A runtime that vanished inside the window counts up to its last reading.
    """
    if len(readings) < 2:
        return None
    rs = sorted(readings, key=lambda r: r.t_ms)
    i0 = max([i for i, r in enumerate(rs) if r.t_ms <= start_ms], default=0)
    i1 = min([i for i, r in enumerate(rs) if r.t_ms >= end_ms], default=len(rs) - 1)
    if i1 <= i0:
        return None
    before, after = rs[i0], rs[i1]
    at_start = dict(before.runtimes_s)
    last_seen: dict[int, float] = {}
    for r in rs[i0 : i1 + 1]:
        last_seen.update(r.runtimes_s)
    runtime_deltas = [max(0.0, cpu - at_start.get(pid, 0.0)) for pid, cpu in last_seen.items()]
    return CpuUsage(
        wall_s=(after.t_ms - before.t_ms) / 1000,
        emulator_s=_delta(before.emulator_s, after.emulator_s),
        runtimes_s=sum(runtime_deltas),
        runtime_processes=sum(1 for d in runtime_deltas if d > 0),
        harness_s=max(0.0, after.harness_s - before.harness_s),
        machine_busy_s=_delta(before.machine_busy_s, after.machine_busy_s),
    )


def breakdown(usage: CpuUsage, completed: int, resize_cpu_ms: float | None, cores: int) -> dict[str, Any]:
    """CPU ms per completed upload by consumer, and the efficiency ceiling they imply.

    ceiling = resize / (emulator + runtimes), where runtimes = resize + handler overhead (fetch, encode of the
    request, S3 PUTs, SQS, logging, runtime API): the best pipeline efficiency N fully busy cores could give if the
    pipeline's processes were the only CPU users. `ceiling_with_harness` also charges this harness's own CPU (the
    load generator uploading on the same cores), which a measurement on this machine cannot avoid; times the share
    of the cores the pipeline and harness used (`our_utilisation`) it predicts the wall-clock efficiency.
    """
    n = max(1, completed)

    def per(v: float | None) -> float | None:
        return None if v is None else 1000 * v / n

    emulator = per(usage.emulator_s)
    runtimes = per(usage.runtimes_s)
    harness = per(usage.harness_s)
    machine = per(usage.machine_busy_s)
    ours = sum(v for v in (emulator, runtimes, harness) if v is not None)
    out: dict[str, Any] = {
        "window_s": usage.wall_s,
        "completed": completed,
        "cores": cores,
        "cpu_s": {
            "emulator": usage.emulator_s,
            "runtimes": usage.runtimes_s,
            "harness": usage.harness_s,
            "machine_busy": usage.machine_busy_s,
        },
        "runtime_processes": usage.runtime_processes,
        "per_image_ms": {
            "resize_raw": resize_cpu_ms,
            "emulator": emulator,
            "runtimes": runtimes,
            "handler_overhead": None if runtimes is None or resize_cpu_ms is None else runtimes - resize_cpu_ms,
            "harness": harness,
            "other": None if machine is None else max(0.0, machine - ours),  # reads are ~ms apart: clamp skew
            "machine_busy": machine,
        },
        "other_share": None if machine is None or machine <= 0 else max(0.0, machine - ours) / machine,
        "utilisation": None
        if usage.machine_busy_s is None or usage.wall_s <= 0
        else usage.machine_busy_s / (cores * usage.wall_s),
    }
    # the emulator beside the work it serves (issue 16): >1 means local latency says more about the emulator
    out["emulator_over_resize"] = None if emulator is None or not resize_cpu_ms else emulator / resize_cpu_ms
    # share of the N cores the pipeline and this harness actually used in the window (the rest: idle or neighbours)
    out["our_utilisation"] = None if usage.wall_s <= 0 else ours * n / 1000 / (cores * usage.wall_s)
    if resize_cpu_ms and emulator is not None and runtimes:
        out["ceiling"] = resize_cpu_ms / (emulator + runtimes)
        out["ceiling_with_harness"] = resize_cpu_ms / (emulator + runtimes + (harness or 0.0))
        # service rate = our_utilisation * cores / ours-per-image and raw rate ~ cores / resize-per-image, so the
        # wall-clock efficiency should come out near ceiling_with_harness * our_utilisation (a consistency check)
        if out["our_utilisation"] is not None:
            out["predicted_efficiency"] = out["ceiling_with_harness"] * out["our_utilisation"]
    return out


def summarize_cpu(
    readings: Sequence[CpuReading],
    start_ms: float | None,
    end_ms: float | None,
    completed: int,
    resize_cpu_ms: float | None,
    cores: int,
) -> Mapping[str, Any]:
    """The report's `cpu` section ({} when there are no readings or no busy window)."""
    if start_ms is None or end_ms is None or completed <= 0:
        return {}
    usage = window_usage(readings, start_ms, end_ms)
    return breakdown(usage, completed, resize_cpu_ms, cores) if usage is not None else {}
