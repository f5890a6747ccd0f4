"""Memory ceilings (cgroup v2/v1 on a fake hierarchy, a real one where available), runtime records, lanes, settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.executor.local_executor.memlimit import (
    CgroupRoots,
    MemoryCeiling,
    MemoryCeilingError,
    remove_stale_cgroups,
)
from harness.executor.local_executor.runtimes import (
    RuntimeRecord,
    read_records,
    remove_record,
    sweep_stale,
    write_record,
)
from harness.executor.local_executor.scaling import lanes_for
from harness.executor.local_executor.settings import ExecutorSettings, ExecutorSettingsError

# allocates 400 MB, touches every page, then holds it for a while (so a polling watchdog cannot miss it)
HOG = (
    "import sys, time; sys.stdin.read(); b = bytearray(400 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
    "time.sleep(20); print('survived')"
)


def fake_proc(tmp_path: Path, mountinfo: str, cgroup: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(mountinfo)
    (proc / "self" / "cgroup").write_text(cgroup)
    return proc


@pytest.mark.parametrize("bad", [0, -5, 1.5, "128", True, None])
def test_a_ceiling_needs_a_positive_integer(bad: object) -> None:
    with pytest.raises(MemoryCeilingError) as info:
        MemoryCeiling(bad, mode="off")  # type: ignore[arg-type]
    assert info.value.code == "INVALID_MEMORY_LIMIT"
    assert f"Expected a positive integer (MB) for limit_mb but received {bad!r}" in str(info.value)


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(MemoryCeilingError) as info:
        MemoryCeiling(128, mode="docker")
    assert info.value.code == "INVALID_MEMORY_MODE"


def test_discover_finds_our_v1_memory_cgroup_and_a_v2_one_with_the_memory_controller(tmp_path: Path) -> None:
    sys_root = tmp_path / "root"
    v1 = sys_root / "sys/fs/cgroup/memory/box/me"
    v2 = sys_root / "sys/fs/cgroup/unified/slice/me"
    v1.mkdir(parents=True)
    v2.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v2 / "cgroup.controllers").write_text("cpu io memory pids\n")
    proc = fake_proc(
        tmp_path,
        "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "31 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
        "4:memory:/box/me\n0::/slice/me\n",
    )

    roots = CgroupRoots.discover(proc, sys_root)

    assert roots.v1_dir == v1 and roots.v2_dir == v2


def test_discover_ignores_a_v2_hierarchy_without_the_memory_controller(tmp_path: Path) -> None:
    sys_root = tmp_path / "root"
    v2 = sys_root / "sys/fs/cgroup/unified"
    v2.mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("hugetlb\n")
    proc = fake_proc(tmp_path, "31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n", "0::/\n")

    assert CgroupRoots.discover(proc, sys_root) == CgroupRoots(v2_dir=None, v1_dir=None)


def test_cgroup2_ceiling_writes_memory_max_attaches_and_reads_oom_kills(tmp_path: Path) -> None:
    parent = tmp_path / "v2"
    parent.mkdir()
    (parent / "cgroup.subtree_control").write_text("")

    ceiling = MemoryCeiling(256, name="env-1", mode="cgroup2", roots=CgroupRoots(v2_dir=parent, v1_dir=None))
    cg = parent / "env-1"
    ceiling.attach(4242)

    assert ceiling.mode == "cgroup2"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory"
    assert (cg / "memory.max").read_text() == str(256 * 1024 * 1024)
    assert (cg / "cgroup.procs").read_text() == "4242"
    (cg / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert not ceiling.exceeded()
    (cg / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\n")
    assert ceiling.exceeded()


def test_cgroup1_ceiling_writes_limit_in_bytes_and_reads_oom_control(tmp_path: Path) -> None:
    parent = tmp_path / "v1"
    parent.mkdir()

    ceiling = MemoryCeiling(128, name="env-2", mode="auto", roots=CgroupRoots(v2_dir=None, v1_dir=parent))
    cg = parent / "env-2"

    assert ceiling.mode == "cgroup1"
    assert (cg / "memory.limit_in_bytes").read_text() == str(128 * 1024 * 1024)
    (cg / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not ceiling.exceeded()
    (cg / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert ceiling.exceeded()


def test_auto_falls_back_to_the_rss_watchdog_without_cgroups() -> None:
    ceiling = MemoryCeiling(64, mode="auto", roots=CgroupRoots(v2_dir=None, v1_dir=None))
    assert ceiling.mode == "rss"
    ceiling.close()


def test_asking_for_an_unavailable_cgroup_mode_is_an_error() -> None:
    with pytest.raises(MemoryCeilingError) as info:
        MemoryCeiling(64, mode="cgroup2", roots=CgroupRoots(v2_dir=None, v1_dir=None))
    assert info.value.code == "MEMORY_MODE_UNAVAILABLE"


@pytest.mark.parametrize("mode", ["rss", "auto"])
def test_a_process_passing_its_ceiling_is_killed_and_the_excess_is_reported(mode: str) -> None:
    ceiling = MemoryCeiling(64, mode=mode)
    proc = subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        ceiling.attach(proc.pid)
        out, _ = proc.communicate(b"", timeout=60)
    finally:
        proc.kill()
        ceiling.close()

    assert proc.returncode == -9 and b"survived" not in out
    assert ceiling.exceeded()


def test_a_process_within_its_ceiling_is_left_alone() -> None:
    with MemoryCeiling(256, mode="auto") as ceiling:
        proc = subprocess.run(
            [sys.executable, "-c", "b = bytearray(8 * 1024 * 1024); print('ok')"], capture_output=True, timeout=60
        )
        assert proc.returncode == 0 and not ceiling.exceeded()


def test_runtime_records_are_written_read_removed_and_stale_ones_swept(tmp_path: Path) -> None:
    folder = tmp_path / "runtimes"
    dead_pid = 2**22 + 12345  # above pid_max: never alive
    mine = RuntimeRecord("e1", "fn", os.getpid(), 1.0, "cgroup1", 128, localstack_pid=os.getppid())
    stale = RuntimeRecord("e2", "fn", dead_pid, 1.0, "rss", 128, localstack_pid=dead_pid)

    write_record(folder, mine)
    write_record(folder, stale)
    assert json.loads((folder / "e1.json").read_text())["pid"] == os.getpid()
    assert sweep_stale(folder) == 1
    assert read_records(folder) == [mine]
    remove_record(folder, "e1")
    assert read_records(folder) == []
    assert write_record(None, mine) is None  # no state folder: nothing recorded


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, 2),
        ({"ScalingConfig": {}}, 2),
        ({"ScalingConfig": {"MaximumConcurrency": 5}}, 5),
        ({"ScalingConfig": {"MaximumConcurrency": 1000}}, 16),
    ],
)
def test_lanes_follow_maximum_concurrency_within_the_cap(config: dict, expected: int) -> None:
    assert lanes_for(config, default=2, cap=16) == expected


def test_settings_defaults_and_validation() -> None:
    s = ExecutorSettings.from_env({"HARNESS_HOME": "/x/state"})
    assert s.python.name == "python" and s.python.parent.parent.name == ".venv"
    assert s.runtimes_dir == Path("/x/state/runtimes") and s.memory_mode == "auto"
    assert ExecutorSettings.from_env({"HARNESS_ESM_LONG_POLL_SEC": "0"}).esm_long_poll_s == 0
    with pytest.raises(
        ExecutorSettingsError, match="Expected one of auto, cgroup2, cgroup1, rss, off for HARNESS_LAMBDA_MEMORY"
    ):
        ExecutorSettings.from_env({"HARNESS_LAMBDA_MEMORY": "lots"})
    with pytest.raises(
        ExecutorSettingsError, match="Expected a positive integer for HARNESS_ESM_MAX_LANES but received 'x'"
    ):
        ExecutorSettings.from_env({"HARNESS_ESM_MAX_LANES": "x"})


def test_stale_cgroups_of_dead_owners_are_removed_live_ones_kept(tmp_path: Path) -> None:
    dead_pid = 2**22 + 12345
    (tmp_path / f"harness-lambda-{dead_pid}-abc-1").mkdir()
    (tmp_path / f"harness-lambda-{os.getpid()}-abc-1").mkdir()
    (tmp_path / "unrelated").mkdir()

    removed = remove_stale_cgroups("harness-lambda-", CgroupRoots(v2_dir=None, v1_dir=tmp_path))

    assert removed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"harness-lambda-{os.getpid()}-abc-1", "unrelated"])
