"""Lambda's CPU share: the quota per MemorySize, the mechanism per hierarchy, a real cgroup throttling a burner."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.executor.local_executor.cpushare import (
    CpuRoots,
    CpuShare,
    CpuShareError,
    quota_us,
    remove_stale_cpu_cgroups,
    vcpus_for,
)
from harness.executor.local_executor.settings import ExecutorSettings, ExecutorSettingsError

# spins for one second of wall time once told to start, then prints the CPU seconds it got
BURNER = (
    "import sys, time; sys.stdin.readline(); t0 = time.monotonic(); c0 = time.process_time()\n"
    "while time.monotonic() - t0 < 1.0: pass\n"
    "print(time.process_time() - c0, time.monotonic() - t0, flush=True)"
)


def test_quota_follows_aws_memory_to_vcpu_rule() -> None:
    assert vcpus_for(1769, host_cores=64) == 1.0
    assert vcpus_for(128, host_cores=64) == pytest.approx(128 / 1769)
    assert vcpus_for(3538, host_cores=64) == pytest.approx(2.0)
    assert vcpus_for(10240, host_cores=64) == pytest.approx(10240 / 1769) and vcpus_for(10240, host_cores=64) <= 6
    assert vcpus_for(10240, host_cores=2) == 2.0  # never more than this host has
    assert quota_us(128, host_cores=2) == 7236 and quota_us(1769, host_cores=2) == 100_000
    with pytest.raises(CpuShareError) as err:
        vcpus_for(0)
    assert err.value.code == "INVALID_MEMORY_SIZE"


def test_mechanism_per_hierarchy(tmp_path: Path) -> None:
    # GIVEN a fake cgroup v1 cpu hierarchy (writable) and a fake cgroup v2 without the cpu controller
    proc = tmp_path / "proc" / "self"
    proc.mkdir(parents=True)
    (proc / "mountinfo").write_text(
        "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    )
    (proc / "cgroup").write_text("1:cpu:/job\n0::/\n")
    v1 = tmp_path / "sys/fs/cgroup/cpu/job"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("-1")
    (tmp_path / "sys/fs/cgroup/unified").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/unified/cgroup.controllers").write_text("memory pids")
    roots = CpuRoots.discover(tmp_path / "proc", tmp_path)
    assert roots.v1_dir == v1 and roots.v2_dir is None and "no writable cpu controller" in roots.reason

    # WHEN a 512 MB environment gets its share (a plain folder stands in for the kernel's cgroup files)
    share = CpuShare(512, name=f"harness-lambda-{os.getpid()}-x", roots=roots, host_cores=2)

    # THEN it is a v1 quota of 512/1769 of the period, said so in one line, removed on close
    assert share.mode == "cgroup1" and (v1 / share.name / "cpu.cfs_quota_us").read_text() == "28943"
    assert share.describe() == "cpu share: cgroup v1 quota 28943/100000 us (512 MB)"
    for f in (v1 / share.name).iterdir():  # the kernel's files vanish with the cgroup; a plain folder's do not
        f.unlink()
    share.close()
    assert not (v1 / share.name).exists()
    none = CpuShare(512, name="n", roots=CpuRoots(None, None, "no cgroup filesystem mounted"))
    assert none.mode == "unavailable" and none.describe() == "cpu share: unavailable (no cgroup filesystem mounted)"
    assert CpuShare(512, name="n", mode="off").describe() == "cpu share: off (HARNESS_CPU_SHARE=off)"
    (v1 / "harness-lambda-999999999-old").mkdir()
    assert remove_stale_cpu_cgroups("harness-lambda-", roots) == 1


def test_setting_is_validated() -> None:
    assert ExecutorSettings.from_env({}).cpu_share == "off"  # a function can turn it on in its own environment
    assert ExecutorSettings.from_env({"HARNESS_CPU_SHARE": "auto"}).cpu_share == "auto"
    with pytest.raises(ExecutorSettingsError) as err:
        ExecutorSettings.from_env({"HARNESS_CPU_SHARE": "half"})
    assert err.value.code == "INVALID_CPU_SHARE" and "HARNESS_CPU_SHARE" in str(err.value)
    with pytest.raises(CpuShareError):
        CpuShare(128, name="x", mode="half")


def burn(mode: str) -> tuple[float, CpuShare]:
    """CPU seconds per wall second a burner gets under a 128 MB environment's share in `mode`."""
    share = CpuShare(128, name=f"harness-lambda-{os.getpid()}-test-{mode}-{time.monotonic_ns()}", mode=mode)
    proc = subprocess.Popen(
        [sys.executable, "-c", BURNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )  # fmt: skip
    try:
        share.attach(proc.pid)
        out, _ = proc.communicate("go\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        share.close()
    cpu_s, wall_s = (float(v) for v in out.split())
    return cpu_s / wall_s, share


def test_a_128_mb_environment_gets_its_share_of_one_cpu() -> None:
    probe = CpuShare(128, name=f"harness-lambda-{os.getpid()}-probe")
    probe.close()
    if probe.mode == "unavailable":
        pytest.skip(probe.describe())

    # WHEN a process burns CPU for a second of wall time under a 128 MB share, and again with the share off
    limited, share = burn("auto")
    free, _ = burn("off")

    # THEN it got about 128/1769 (= 0.07) of a CPU, well below what it gets unlimited
    assert share.mode in ("cgroup1", "cgroup2")
    assert limited < 0.25, f"{share.describe()}: got {limited:.3f} CPU-s per wall-s"
    assert free > 1.25 * limited, f"unlimited {free:.3f} vs limited {limited:.3f} CPU-s per wall-s"
    assert not any(Path(share._cgroup or "/nonexistent").parent.glob(f"harness-lambda-{os.getpid()}-test-*"))
