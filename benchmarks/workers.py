"""Start and talk to benchmark worker processes (Python variants and the sharp Node script), with deadlines and
optional memory ceilings (the executor's cgroup / RSS-watchdog mechanism)."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import expected

from . import imaging
from .errors import BenchError, BenchErrorCode

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
SHARP_WORKER = BENCH_DIR / "sharp" / "worker.js"
SHARP_MODULE = BENCH_DIR / "node_modules" / "sharp" / "package.json"
PYTHON_VARIANTS = ("pillow", "vips", "floor")
ALL_VARIANTS = ("pillow", "vips", "sharp", "floor")
BACKENDS = ("pillow", "vips")


def _load_memlimit() -> Any:
    """The executor's memory-ceiling module (harness/executor/local_executor/memlimit.py), importable without
    LocalStack; None when it is absent."""
    executor_dir = str(ROOT / "harness" / "executor")
    if executor_dir not in sys.path:
        sys.path.insert(0, executor_dir)
    try:
        from local_executor import memlimit
    except ImportError:
        return None
    return memlimit


def sharp_status(node: str | None = None) -> tuple[bool, str]:
    """(available, reason): node on PATH and sharp installed in benchmarks/node_modules."""
    node = node or shutil.which("node")
    if not node:
        return False, "sharp reference skipped: `node` is not on PATH (install Node.js >= 18, then `make bench-deps`)"
    if not SHARP_MODULE.exists():
        return False, "sharp reference skipped: benchmarks/node_modules/sharp is missing (run `make bench-deps`)"
    return True, "ok"


def encoder_config() -> dict[str, Any]:
    """Encoder settings handed to the sharp worker so that it matches our backends (see benchmarks/imaging.py)."""
    return {
        "jpeg": {
            "quality": imaging.JPEG_QUALITY,
            "chromaSubsampling": imaging.JPEG_SUBSAMPLING,
            "progressive": imaging.JPEG_PROGRESSIVE,
            "optimiseCoding": imaging.JPEG_OPTIMIZE_CODING,
            "mozjpeg": False,
        },
        "webp": {"quality": imaging.WEBP_QUALITY, "effort": imaging.WEBP_METHOD},
    }


def worker_env() -> dict[str, str]:
    """Single-threaded libraries, no operation caches, the project's packages importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "handlers")])
    env["VIPS_CONCURRENCY"] = "1"  # one libvips worker thread, like sharp.concurrency(1)
    env["UV_THREADPOOL_SIZE"] = "1"  # one sharp job at a time
    env["OMP_NUM_THREADS"] = "1"
    env.pop("VIPS_LEAK", None)
    return env


def worker_command(variant: str, options: dict[str, Any] | None = None) -> list[str]:
    if variant in PYTHON_VARIANTS:
        return [sys.executable, "-m", "benchmarks.worker", variant, json.dumps(options or {})]
    if variant == "sharp":
        ok, reason = sharp_status()
        if not ok:
            raise BenchError(BenchErrorCode.REFERENCE_MISSING, reason)
        return [shutil.which("node") or "node", str(SHARP_WORKER), json.dumps(encoder_config())]
    raise BenchError(BenchErrorCode.INVALID_ARGUMENT, expected(f"one of {'|'.join(ALL_VARIANTS)}", "variant", variant))


@dataclass(frozen=True, slots=True)
class Ready:
    variant: str
    pid: int
    versions: dict[str, str]
    baseline_hwm_kb: int | None


class Worker:
    """One worker process. Requests block until the answer or the deadline; a dead or late worker raises BenchError.

    With `ceiling_mb`, the process starts as a tiny shell that waits until it has been put under the memory ceiling
    and then execs the worker, so every byte the worker allocates counts against the ceiling.
    """

    def __init__(
        self,
        variant: str,
        *,
        options: dict[str, Any] | None = None,
        ceiling_mb: int | None = None,
        start_timeout_s: float = 60.0,
        memlimit_mode: str = "auto",
    ) -> None:
        self.variant = variant
        self.ceiling_mb = ceiling_mb
        self.ceiling: Any = None
        self._buf = b""
        self._stderr = tempfile.TemporaryFile()
        cmd = worker_command(variant, options)
        if ceiling_mb is not None:
            memlimit = _load_memlimit()
            if memlimit is None:
                raise BenchError(
                    BenchErrorCode.WORKER_FAILED,
                    "Expected harness/executor/local_executor/memlimit.py for memory ceilings but it is not importable",
                )
            self.ceiling = memlimit.MemoryCeiling(
                ceiling_mb, name=f"bench-{variant}-{os.getpid()}-{id(self):x}", mode=memlimit_mode
            )
            cmd = ["/bin/sh", "-c", 'read _go && exec "$0" "$@"', *cmd]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=worker_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        if self.ceiling is not None:
            self.ceiling.attach(self.proc.pid)
            self._write({"go": True})
        first = self._read_line(start_timeout_s, "worker start")
        if not first.get("ready"):
            err = first.get("error") or {}
            self.close()
            code = (
                BenchErrorCode(err["code"])
                if err.get("code") in BenchErrorCode._value2member_map_
                else BenchErrorCode.WORKER_FAILED
            )
            raise BenchError(code, f"{variant} worker could not start: {err.get('message', first)}")
        self.ready = Ready(variant, int(first["pid"]), dict(first.get("versions") or {}), first.get("hwm_kb"))

    @property
    def mode(self) -> str:
        return "none" if self.ceiling is None else str(self.ceiling.mode)

    def _write(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._died("writing a request") from exc

    def _read_line(self, timeout_s: float, what: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise BenchError(
                    BenchErrorCode.WORKER_TIMEOUT,
                    f"{self.variant} worker gave no answer to {what} within {timeout_s:.0f} s",
                )
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise self._died(what)
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            return dict(json.loads(line))
        except (json.JSONDecodeError, ValueError) as exc:
            raise BenchError(
                BenchErrorCode.WORKER_FAILED,
                expected("one JSON object per line", f"{self.variant} worker output", line[:120]),
            ) from exc

    def _died(self, what: str) -> BenchError:
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        oom = (self.ceiling is not None and self.ceiling.exceeded()) or rc == -signal.SIGKILL
        tail = self.stderr_tail()
        where = f" under a {self.ceiling_mb} MB ceiling" if self.ceiling_mb else ""
        msg = f"{self.variant} worker died{where} during {what} (exit {rc})" + (f": {tail}" if tail else "")
        self.close()
        return BenchError(BenchErrorCode.OUT_OF_MEMORY if oom else BenchErrorCode.WORKER_DIED, msg)

    def stderr_tail(self, limit: int = 300) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return text[-limit:].replace("\n", " | ")

    def request(self, obj: dict[str, Any], timeout_s: float = 120.0) -> dict[str, Any]:
        self._write(obj)
        res = self._read_line(timeout_s, str(obj.get("op")))
        if not res.get("ok"):
            err = res.get("error") or {}
            code = err.get("code", BenchErrorCode.WORKER_FAILED)
            bcode = BenchErrorCode(code) if code in BenchErrorCode._value2member_map_ else BenchErrorCode.WORKER_FAILED
            if self.ceiling is not None and self.ceiling.exceeded():
                bcode = BenchErrorCode.OUT_OF_MEMORY
            raise BenchError(bcode, f"{self.variant}: [{code}] {err.get('message', res)}")
        return res

    def load(self, input_id: str, path: Path, timeout_s: float = 120.0) -> None:
        self.request({"op": "load", "id": input_id, "path": str(path)}, timeout_s)

    def run(self, input_id: str, save_dir: Path | None = None, timeout_s: float = 120.0) -> dict[str, Any]:
        return self.request({"op": "run", "id": input_id, "save_dir": str(save_dir) if save_dir else None}, timeout_s)

    def mem(self) -> dict[str, Any]:
        return self.request({"op": "mem"}, 30.0)

    def peak_mb(self) -> float | None:
        return None if self.ceiling is None else self.ceiling.peak_mb()

    def close(self) -> None:
        """Ask the worker to exit, then make sure it is gone (it is our own child: killed by its pid only)."""
        if self.proc.poll() is None:
            try:
                self._write_quiet({"op": "exit"})
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if self.ceiling is not None:
            self.ceiling.close()
        try:
            self._stderr.close()
        except OSError:
            pass

    def _write_quiet(self, obj: dict[str, Any]) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
