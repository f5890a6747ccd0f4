"""Lambda's CPU share for local processes: MemorySize/1769 MB of a vCPU (up to 6), as a cgroup CPU quota where writable.

AWS gives a function one vCPU at 1769 MB and a proportional share below (128 MB: ~7 % of a core), up to 6 vCPUs at
10240 MB. Without the same limit a local run at 128 MB gets a whole core and its duration says nothing about the
billed duration. `CpuShare(memory_mb, name=...)` makes a cgroup with that quota (cgroup v2 `cpu.max`, else v1
`cpu.cfs_quota_us` / `cpu.cfs_period_us`), `attach(pid)` puts a process tree in it and `close()` removes it.
Where no cpu controller is writable the share is "unavailable" and `describe()` says why (nothing is limited).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)

MODES = ("auto", "off")  # HARNESS_CPU_SHARE
MB_PER_VCPU = 1769  # AWS: "at 1,769 MB, a function has the equivalent of one vCPU"
MAX_VCPUS = 6  # AWS: up to 6 vCPUs at 10,240 MB
PERIOD_US = 100_000
MIN_QUOTA_US = 1000  # the kernel's floor for cfs_quota_us


class CpuShareError(ValueError):
    """Bad input; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def vcpus_for(memory_mb: int, host_cores: int | None = None) -> float:
    """The vCPUs AWS gives a function of `memory_mb`, capped by this host's cores."""
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb <= 0:
        raise CpuShareError(
            "INVALID_MEMORY_SIZE", f"Expected a positive integer (MB) for memory_mb but received {memory_mb!r}"
        )
    cores = host_cores or os.cpu_count() or 1
    return min(memory_mb / MB_PER_VCPU, float(MAX_VCPUS), float(cores))


def quota_us(memory_mb: int, host_cores: int | None = None, period_us: int = PERIOD_US) -> int:
    return max(MIN_QUOTA_US, round(vcpus_for(memory_mb, host_cores) * period_us))


@dataclass(frozen=True)
class CpuRoots:
    """Our own cgroup directories that offer a writable cpu controller (read from /proc)."""

    v2_dir: Path | None
    v1_dir: Path | None
    reason: str = ""  # why neither is usable

    @classmethod
    def discover(cls, proc_root: Path = Path("/proc"), sys_root: Path = Path("/")) -> CpuRoots:
        v1_mount = v2_mount = None
        try:
            mountinfo = (proc_root / "self" / "mountinfo").read_text().splitlines()
        except OSError:
            mountinfo = []
        for line in mountinfo:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(fields) < 5 or len(rfields) < 3:
                continue
            mount_point, fstype, options = fields[4], rfields[0], rfields[2]
            if fstype == "cgroup2" and v2_mount is None:
                v2_mount = mount_point
            elif fstype == "cgroup" and "cpu" in options.split(",") and v1_mount is None:
                v1_mount = mount_point
        v1_rel = v2_rel = None
        try:
            for line in (proc_root / "self" / "cgroup").read_text().splitlines():
                hier, controllers, path = line.split(":", 2)
                if hier == "0" and controllers == "":
                    v2_rel = path
                elif "cpu" in controllers.split(","):
                    v1_rel = path
        except (OSError, ValueError):
            pass
        v2_dir = v1_dir = None
        reasons = []
        if v2_mount and v2_rel is not None:
            cand = sys_root / v2_mount.lstrip("/") / v2_rel.lstrip("/")
            try:
                offered = (cand / "cgroup.controllers").read_text().split()
            except OSError:
                offered = []
            if "cpu" in offered and os.access(cand, os.W_OK):
                v2_dir = cand
            else:
                reasons.append(f"cgroup v2 at {cand} has no writable cpu controller")
        if v1_mount and v1_rel is not None:
            cand = sys_root / v1_mount.lstrip("/") / v1_rel.lstrip("/")
            if (cand / "cpu.cfs_quota_us").exists() and os.access(cand, os.W_OK):
                v1_dir = cand
            else:
                reasons.append(f"cgroup v1 cpu at {cand} is not writable")
        if not v1_mount and not v2_mount:
            reasons.append("no cgroup filesystem mounted")
        return cls(v2_dir=v2_dir, v1_dir=v1_dir, reason="; ".join(reasons))


class CpuShare:
    """The CPU share of one execution environment (one runtime process tree).

    `mode`: "cgroup2" / "cgroup1" (the kernel throttles the tree to `quota_us` per `period_us`), "unavailable" (no
    writable cpu controller: `reason` says why) or "off" (HARNESS_CPU_SHARE=off).
    """

    def __init__(
        self,
        memory_mb: int,
        *,
        name: str,
        mode: str = "auto",
        roots: CpuRoots | None = None,
        host_cores: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise CpuShareError(
                "INVALID_CPU_SHARE", f"Expected one of {', '.join(MODES)} for mode but received {mode!r}"
            )
        self.memory_mb = memory_mb
        self.name = name
        self.period_us = PERIOD_US
        self.quota_us = quota_us(memory_mb, host_cores, self.period_us)
        self.reason = ""
        self._cgroup: Path | None = None
        self._closed = False
        if mode == "off":
            self.mode = "off"
            self.reason = "HARNESS_CPU_SHARE=off"
            return
        roots = roots or CpuRoots.discover()
        errors = []
        for kind, parent in (("cgroup2", roots.v2_dir), ("cgroup1", roots.v1_dir)):
            if parent is None:
                continue
            try:
                self._cgroup = self._make_v2(parent) if kind == "cgroup2" else self._make_v1(parent)
                self.mode = kind
                return
            except OSError as exc:
                errors.append(f"{kind}: {exc}")
        self.mode = "unavailable"
        self.reason = "; ".join(errors) or roots.reason or "no cpu controller"

    @property
    def vcpus(self) -> float:
        return self.quota_us / self.period_us

    def describe(self) -> str:
        """One line for the log: which mechanism limits the CPU, and how much."""
        if self.mode == "cgroup2":
            return f"cpu share: cgroup v2 cpu.max {self.quota_us} {self.period_us} ({self.memory_mb} MB)"
        if self.mode == "cgroup1":
            return f"cpu share: cgroup v1 quota {self.quota_us}/{self.period_us} us ({self.memory_mb} MB)"
        return f"cpu share: {self.mode} ({self.reason})"

    def _make_v2(self, parent: Path) -> Path:
        subtree = parent / "cgroup.subtree_control"
        if "cpu" not in subtree.read_text().split():
            subtree.write_text("+cpu")
        cg = parent / self.name
        cg.mkdir(exist_ok=True)
        try:
            (cg / "cpu.max").write_text(f"{self.quota_us} {self.period_us}")
        except OSError:
            _rmdir_quiet(cg)
            raise
        return cg

    def _make_v1(self, parent: Path) -> Path:
        cg = parent / self.name
        cg.mkdir(exist_ok=True)
        try:
            (cg / "cpu.cfs_period_us").write_text(str(self.period_us))
            (cg / "cpu.cfs_quota_us").write_text(str(self.quota_us))
        except OSError:
            _rmdir_quiet(cg)
            raise
        return cg

    def attach(self, pid: int) -> None:
        """Put a running process (and so its future children) under this share; a no-op when none is active."""
        if self._cgroup is not None and not self._closed:
            (self._cgroup / "cgroup.procs").write_text(str(pid))

    def throttled_us(self) -> int | None:
        """Time the tree spent throttled so far (cpu.stat), None without a cgroup."""
        if self._cgroup is None:
            return None
        try:
            stat = dict(line.split() for line in (self._cgroup / "cpu.stat").read_text().splitlines() if " " in line)
        except (OSError, ValueError):
            return None
        if "throttled_usec" in stat:
            return int(stat["throttled_usec"])
        return int(stat["throttled_time"]) // 1000 if "throttled_time" in stat else None

    def close(self) -> None:
        """Remove the cgroup (its processes must have exited: the executor kills them first). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._cgroup is not None:
            _rmdir_quiet(self._cgroup)

    def __enter__(self) -> CpuShare:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remove_stale_cpu_cgroups(prefix: str, roots: CpuRoots | None = None) -> int:
    """Remove empty cpu cgroups named `<prefix><owner-pid>-...` whose owner process is gone; return how many."""
    roots = roots or CpuRoots.discover()
    removed = 0
    for parent in (roots.v2_dir, roots.v1_dir):
        if parent is None:
            continue
        for cg in parent.glob(f"{prefix}*"):
            owner = cg.name[len(prefix) :].split("-", 1)[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                try:
                    cg.rmdir()
                    removed += 1
                except OSError:
                    pass
    return removed


def _rmdir_quiet(path: Path) -> None:
    for _ in range(20):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)  # the kernel frees a cgroup shortly after its last task exits
