"""Memory ceilings for local processes: a cgroup (v2, else v1) per ceiling, else an RSS watchdog (no LocalStack)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)

MODES = ("auto", "cgroup2", "cgroup1", "rss", "off")
RSS_POLL_INTERVAL_S = 0.02
_MB = 1024 * 1024


class MemoryCeilingError(ValueError):
    """Bad input or an unavailable mode; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class CgroupRoots:
    """Where the memory controllers live and which cgroup this process is in (read from /proc)."""

    v2_dir: Path | None  # our own cgroup2 directory, if it offers the memory controller
    v1_dir: Path | None  # our own cgroup v1 memory-controller directory, if writable

    @classmethod
    def discover(cls, proc_root: Path = Path("/proc"), sys_root: Path = Path("/")) -> CgroupRoots:
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
            elif fstype == "cgroup" and "memory" in options.split(",") and v1_mount is None:
                v1_mount = mount_point
        v1_rel = v2_rel = None
        try:
            for line in (proc_root / "self" / "cgroup").read_text().splitlines():
                hier, controllers, path = line.split(":", 2)
                if hier == "0" and controllers == "":
                    v2_rel = path
                elif "memory" in controllers.split(","):
                    v1_rel = path
        except (OSError, ValueError):
            pass
        v2_dir = v1_dir = None
        if v2_mount and v2_rel is not None:
            cand = sys_root / v2_mount.lstrip("/") / v2_rel.lstrip("/")
            if _has_controller(cand, "memory") and os.access(cand, os.W_OK):
                v2_dir = cand
        if v1_mount and v1_rel is not None:
            cand = sys_root / v1_mount.lstrip("/") / v1_rel.lstrip("/")
            if (cand / "memory.limit_in_bytes").exists() and os.access(cand, os.W_OK):
                v1_dir = cand
        return cls(v2_dir=v2_dir, v1_dir=v1_dir)


def _has_controller(cgroup_dir: Path, name: str) -> bool:
    try:
        return name in (cgroup_dir / "cgroup.controllers").read_text().split()
    except OSError:
        return False


def _read_kv(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if value.strip().lstrip("-").isdigit():
                out[key] = int(value)
    except OSError:
        pass
    return out


def vm_kb(pid: int | str, field: str, proc_root: Path = Path("/proc")) -> int | None:
    """A Vm* field (VmRSS, VmHWM, ...) of /proc/<pid>/status in KiB, or None if unreadable."""
    try:
        for line in (proc_root / str(pid) / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _validated_limit(limit_mb: object) -> int:
    if isinstance(limit_mb, bool) or not isinstance(limit_mb, int) or limit_mb <= 0:
        raise MemoryCeilingError(
            "INVALID_MEMORY_LIMIT", f"Expected a positive integer (MB) for limit_mb but received {limit_mb!r}"
        )
    return limit_mb


class MemoryCeiling:
    """One memory ceiling (MB) for one process tree.

    `mode` is what is active: "cgroup2" / "cgroup1" (the kernel OOM-kills the tree at the limit), "rss" (a watchdog
    thread SIGKILLs the attached process when its RSS passes the limit) or "off". Typical use:
        limit = MemoryCeiling(512, name="env-1234"); limit.attach(proc.pid); ... limit.exceeded(); limit.close()
    """

    def __init__(
        self,
        limit_mb: int,
        *,
        name: str | None = None,
        mode: str = "auto",
        roots: CgroupRoots | None = None,
        proc_root: Path = Path("/proc"),
    ) -> None:
        self.limit_mb = _validated_limit(limit_mb)
        if mode not in MODES:
            raise MemoryCeilingError(
                "INVALID_MEMORY_MODE", f"Expected one of {', '.join(MODES)} for mode but received {mode!r}"
            )
        self.name = name or f"harness-{os.getpid()}-{id(self):x}"
        self._proc_root = proc_root
        self._pids: list[int] = []
        self._cgroup: Path | None = None
        self._rss_exceeded = threading.Event()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._closed = False
        self._final_exceeded = False
        self.mode = self._setup(mode, roots)

    # ---- setup ------------------------------------------------------------------------------------------------
    def _setup(self, mode: str, roots: CgroupRoots | None) -> str:
        if mode == "off":
            return "off"
        if mode in ("auto", "cgroup2", "cgroup1"):
            roots = roots or CgroupRoots.discover(self._proc_root)
            attempts = {"auto": ("cgroup2", "cgroup1"), "cgroup2": ("cgroup2",), "cgroup1": ("cgroup1",)}[mode]
            reasons = []
            for kind in attempts:
                try:
                    if kind == "cgroup2" and roots.v2_dir is not None:
                        self._cgroup = self._make_v2(roots.v2_dir)
                        return "cgroup2"
                    if kind == "cgroup1" and roots.v1_dir is not None:
                        self._cgroup = self._make_v1(roots.v1_dir)
                        return "cgroup1"
                    reasons.append(f"{kind}: no writable memory controller")
                except OSError as exc:
                    reasons.append(f"{kind}: {exc}")
            if mode != "auto":
                raise MemoryCeilingError("MEMORY_MODE_UNAVAILABLE", f"{mode} is not usable here ({'; '.join(reasons)})")
            LOG.debug("no cgroup memory controller usable (%s); using the RSS watchdog", "; ".join(reasons))
        return "rss"

    def _make_v2(self, parent: Path) -> Path:
        # the child's memory.max only exists once the parent delegates the controller to its children
        subtree = parent / "cgroup.subtree_control"
        if "memory" not in subtree.read_text().split():
            subtree.write_text("+memory")
        cg = parent / self.name
        cg.mkdir(exist_ok=True)
        try:
            (cg / "memory.max").write_text(str(self.limit_mb * _MB))
            swap = cg / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")
        except OSError:
            _rmdir_quiet(cg)
            raise
        return cg

    def _make_v1(self, parent: Path) -> Path:
        cg = parent / self.name
        cg.mkdir(exist_ok=True)
        try:
            (cg / "memory.limit_in_bytes").write_text(str(self.limit_mb * _MB))
            memsw = cg / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                try:  # memory+swap = memory: no swapping past the ceiling (when swap accounting is on)
                    memsw.write_text(str(self.limit_mb * _MB))
                except OSError:
                    pass
        except OSError:
            _rmdir_quiet(cg)
            raise
        return cg

    # ---- API --------------------------------------------------------------------------------------------------
    def attach(self, pid: int) -> None:
        """Put a running process (and so its future children) under this ceiling."""
        if self._closed:
            raise MemoryCeilingError(
                "MEMORY_CEILING_CLOSED", f"Expected an open ceiling for attach({pid}) but it is closed"
            )
        self._pids.append(pid)
        if self._cgroup is not None:
            (self._cgroup / "cgroup.procs").write_text(str(pid))
        elif self.mode == "rss" and self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch_rss, name=f"rss-watchdog-{self.name}", daemon=True)
            self._watchdog.start()

    def exceeded(self) -> bool:
        """True once a process under this ceiling was killed (or refused memory) for passing the limit."""
        if self._closed:
            return self._final_exceeded
        if self.mode == "rss":
            return self._rss_exceeded.is_set()
        if self._cgroup is None:
            return False
        if self.mode == "cgroup2":
            return _read_kv(self._cgroup / "memory.events").get("oom_kill", 0) > 0
        ctl = _read_kv(self._cgroup / "memory.oom_control")
        return ctl.get("oom_kill", 0) > 0 or ctl.get("under_oom", 0) > 0

    def peak_mb(self) -> float | None:
        """Peak memory of the tree (cgroup) or of the attached process (VmHWM), in MB."""
        if self._cgroup is not None:
            name = "memory.peak" if self.mode == "cgroup2" else "memory.max_usage_in_bytes"
            try:
                return int((self._cgroup / name).read_text().strip()) / _MB
            except (OSError, ValueError):
                pass
        if self._pids:
            hwm = vm_kb(self._pids[-1], "VmHWM", self._proc_root)
            return None if hwm is None else hwm / 1024
        return None

    def close(self) -> None:
        """Stop watching, kill what is left in the cgroup and remove it. Idempotent."""
        if self._closed:
            return
        self._final_exceeded = self.exceeded()
        self._closed = True
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=1.0)
        if self._cgroup is not None:
            for _ in range(50):
                try:
                    pids = [int(p) for p in (self._cgroup / "cgroup.procs").read_text().split()]
                except (OSError, ValueError):
                    pids = []
                if not pids:
                    break
                for p in pids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                self._stop.wait(0.02)
            _rmdir_quiet(self._cgroup)

    def __enter__(self) -> MemoryCeiling:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- RSS watchdog -----------------------------------------------------------------------------------------
    def _watch_rss(self) -> None:
        limit_kb = self.limit_mb * 1024
        while not self._stop.is_set():
            for pid in list(self._pids):
                rss = vm_kb(pid, "VmRSS", self._proc_root)
                if rss is not None and rss > limit_kb:
                    LOG.info(
                        "pid %s passed its memory ceiling (%d MB > %d MB): killing it", pid, rss // 1024, self.limit_mb
                    )
                    self._rss_exceeded.set()
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            self._stop.wait(RSS_POLL_INTERVAL_S)


def remove_stale_cgroups(prefix: str, roots: CgroupRoots | None = None) -> int:
    """Remove empty cgroups named `<prefix><owner-pid>-...` whose owner process is gone; return how many."""
    roots = roots or CgroupRoots.discover()
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
                    pass  # still has tasks: leave it
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
