"""Where the CPU goes: /proc parsing, the busy-window deltas per process, per-image figures and the ceiling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.load import cpu, report
from harness.load.cpu import CpuReading, CpuSampler, breakdown, window_usage
from tests.unit.test_load_report import T0, fake_run


def reading(
    t_s: float, emulator: float | None, runtimes: dict[int, float], harness: float = 0.0, machine: float | None = None
) -> CpuReading:
    return CpuReading(T0 + t_s * 1000, emulator, tuple(runtimes.items()), harness, machine)


def test_stat_parsing_takes_utime_and_stime_even_with_odd_process_names() -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    line = "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 9999 9999 20 0 1 0"
    assert cpu.parse_stat_cpu_s(line, clk_tck=100) == pytest.approx(3.0)  # children (cutime/cstime) excluded
    assert cpu.parse_machine_busy_s("cpu  100 10 40 800 50 5 5 0 0 0\ncpu0 1 2 3\n", clk_tck=100) == pytest.approx(1.6)


def test_this_process_and_the_machine_are_readable_here() -> None:
    own = cpu.process_cpu_s(os.getpid())
    assert own is not None and own > 0
    assert cpu.process_cpu_s(2**22 + 12345) is None  # no such pid
    busy = cpu.machine_busy_s()
    assert busy is not None and busy > 0


def test_reader_follows_the_state_folder(tmp_path: Path) -> None:
    (tmp_path / "runtimes").mkdir()
    (tmp_path / "localstack.pid").write_text(f"{os.getpid()} 4566\n")
    (tmp_path / "runtimes" / "a.json").write_text(f'{{"pid": {os.getpid()}}}')
    (tmp_path / "runtimes" / "broken.json").write_text("{")
    r = cpu.cpu_reader(tmp_path)()
    assert r.emulator_s is not None and r.emulator_s > 0
    assert [pid for pid, _ in r.runtimes_s] == [os.getpid()]
    empty = cpu.cpu_reader(tmp_path / "absent")()
    assert empty.emulator_s is None and empty.runtimes_s == ()


def test_window_usage_counts_each_process_between_the_bracketing_readings() -> None:
    readings = [
        reading(0, 10.0, {1: 5.0}, harness=1.0, machine=100.0),
        reading(1, 11.0, {1: 5.5}, harness=1.5, machine=101.0),  # last reading at/before the window start (1.2 s)
        reading(2, 12.0, {1: 6.0, 2: 0.8}, harness=2.0, machine=103.0),  # runtime 2 starts inside the window
        reading(3, 13.0, {1: 7.0, 2: 1.8, 3: 0.5}, harness=2.5, machine=105.0),  # 3 appears, then vanishes
        reading(4, 14.5, {1: 8.0, 2: 2.3}, harness=3.5, machine=107.0),  # first reading at/after the end (3.9 s)
        reading(5, 20.0, {1: 9.0, 2: 3.0}, harness=9.0, machine=120.0),  # after the window: ignored
    ]
    u = window_usage(readings, T0 + 1200, T0 + 3900)
    assert u is not None
    assert u.wall_s == pytest.approx(3.0)
    assert u.emulator_s == pytest.approx(3.5)
    assert u.runtimes_s == pytest.approx((8.0 - 5.5) + 2.3 + 0.5)  # whole CPU of processes born in the window
    assert u.runtime_processes == 3
    assert u.harness_s == pytest.approx(2.0)
    assert u.machine_busy_s == pytest.approx(6.0)
    assert window_usage(readings[:1], T0, T0 + 1000) is None
    unknown = window_usage([reading(0, None, {}), reading(1, 2.0, {})], T0, T0 + 1000)
    assert unknown is not None and unknown.emulator_s is None


def test_breakdown_per_image_and_the_ceiling() -> None:
    u = cpu.CpuUsage(
        wall_s=10.0, emulator_s=5.0, runtimes_s=10.0, runtime_processes=2, harness_s=1.0, machine_busy_s=18.0
    )
    b = breakdown(u, completed=100, resize_cpu_ms=80.0, cores=2)
    per = b["per_image_ms"]
    assert per["emulator"] == pytest.approx(50.0) and per["runtimes"] == pytest.approx(100.0)
    assert per["handler_overhead"] == pytest.approx(20.0)
    assert per["harness"] == pytest.approx(10.0)
    assert per["other"] == pytest.approx(180.0 - 160.0) and b["other_share"] == pytest.approx(20 / 180)
    assert b["utilisation"] == pytest.approx(0.9)
    # resize / (resize + emulator + handler overhead) = 80 / (80 + 50 + 20)
    assert b["ceiling"] == pytest.approx(80 / 150)
    assert b["ceiling_with_harness"] == pytest.approx(80 / 160)
    # pipeline + harness used 16 of the 20 core-seconds: 0.8 of the cores, so 0.5 * 0.8 is the expected efficiency
    assert b["our_utilisation"] == pytest.approx(0.8)
    assert b["predicted_efficiency"] == pytest.approx(0.4)
    no_base = breakdown(u, completed=100, resize_cpu_ms=None, cores=2)
    assert "ceiling" not in no_base and no_base["per_image_ms"]["handler_overhead"] is None


def test_report_has_the_cpu_section_over_the_service_rate_window() -> None:
    gen, acc = fake_run()  # handler starts at T0 + 40 ms, last thumbnail at T0 + 4900 ms; 45 complete
    readings = [reading(t, 10.0 + t, {7: 2.0 * t}, harness=0.1 * t, machine=3.0 * t) for t in (0, 1, 2, 3, 4, 5, 6)]
    summary = report.summarize(
        scenario={"name": "fake"},
        backend="pillow",
        generation=gen,
        accounting=acc,
        baseline={"images_per_s": 20.0, "processes": 2, "cpu_ms_per_image": 50.0},
        cpu_readings=readings,
        cores=2,
    )
    c = summary["cpu"]
    assert c["window_s"] == pytest.approx(5.0)  # readings at 0 s and 5 s bracket [0.04 s, 4.9 s]
    assert c["per_image_ms"]["emulator"] == pytest.approx(5000 / 45)
    assert c["per_image_ms"]["runtimes"] == pytest.approx(10000 / 45)
    assert c["ceiling"] == pytest.approx(50.0 / (15000 / 45))
    md = report.markdown(summary)
    assert "## Where the CPU goes (measured)" in md and f"**{c['ceiling']:.2f}**" in md
    assert "efficiency ceiling (CPU)" in report.comparison_markdown([summary, summary])
    assert report.summarize(scenario={"name": "fake"}, backend="pillow", generation=gen, accounting=acc)["cpu"] == {}


def test_cpu_sampler_reads_until_stopped_and_once_more_at_stop() -> None:
    ticks: list[int] = []

    def read() -> CpuReading:
        ticks.append(1)
        if len(ticks) == 2:
            raise OSError("transient")
        return reading(len(ticks), 1.0, {})

    sampler = CpuSampler(read, interval_s=0.01).start()
    from common.waiting import wait_until

    wait_until(lambda: len(sampler.readings) >= 3, 5.0)
    n = len(sampler.stop())
    assert n >= 4 and sampler.errors == 1
    assert len(sampler.readings) == n  # stopped


def test_op_cost_is_the_cpu_delta_per_call() -> None:
    from harness.load.opcost import measure_op

    emulator = iter([10.0, 10.3])
    own = iter([1.0, 1.06])
    clock = iter([0.0, 0.9])
    calls: list[int] = []
    cost = measure_op("put", calls.append, 30, lambda: next(emulator), lambda: next(own), lambda: next(clock))
    assert calls == list(range(30))
    assert cost.emulator_ms == pytest.approx(10.0) and cost.client_ms == pytest.approx(2.0)
    assert cost.wall_ms == pytest.approx(30.0)
    gone = measure_op("x", lambda i: None, 3, lambda: None, lambda: 0.0, lambda: 0.0)
    assert gone.emulator_ms is None
