"""Benchmark worker process for one Python variant (pillow | vips | floor): loads inputs, times jobs, reports memory.

Run by benchmarks.workers (never by hand): `python -m benchmarks.worker <variant> '<json options>'`.
Protocol: one JSON object per line on stdin/stdout, the same as benchmarks/sharp/worker.js:
  -> {"op":"load","id":ID,"path":P}           <- {"ok":true}
  -> {"op":"run","id":ID,"save_dir":D|null}
     <- {"ok":true,"wall_ms","cpu_ms","outputs":[{name,width,height,format,bytes,path?}]}
  -> {"op":"mem"}                             <- {"ok":true,"hwm_kb","rss_kb"}
  -> {"op":"exit"}
The first line written is {"ready":true,"variant":...,"versions":{...},"pid":N,"hwm_kb","rss_kb"} once the backend's
libraries are imported (so the baseline memory includes them).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

VARIANTS = ("pillow", "vips", "floor")
Output = tuple[str, int, int, str, bytes]  # name, width, height, format, data


def mem() -> dict[str, int | None]:
    out: dict[str, int | None] = {"hwm_kb": None, "rss_kb": None}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["hwm_kb"] = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return out


class Job:
    """One variant's job: prepare(id, data) once per input (untimed), run(id) is what gets timed."""

    def __init__(self, variant: str, options: dict[str, Any]) -> None:
        from thumbnailer.resizers import ResizeSpec

        self.variant = variant
        self.spec = ResizeSpec()
        self.inputs: dict[str, bytes] = {}
        self.prepared: dict[str, Any] = {}
        self.versions: dict[str, str] = {"python": sys.version.split()[0]}
        self.last_phases: dict[str, float] | None = None  # the resizer's own phase timings of the last run
        if variant == "floor":
            import PIL

            from . import imaging

            self._imaging = imaging
            self.versions["pillow"] = PIL.__version__
            self._run: Callable[[str], list[Output]] = self._run_floor
        elif variant in ("pillow", "vips"):
            from thumbnailer.resizers import get_resizer

            self.resizer = get_resizer(variant, **options.get("resizer_options", {}))
            self._run = self._run_resizer
            if variant == "pillow":
                import PIL

                self.versions["pillow"] = PIL.__version__
            else:
                import pyvips  # the resizer module imported it already; only read its version here

                self.versions["pyvips"] = getattr(pyvips, "__version__", "?")
                self.versions["libvips"] = "%d.%d.%d" % tuple(pyvips.version(i) for i in range(3))
        else:
            raise ValueError(f"Expected one of {'|'.join(VARIANTS)} for variant but received {variant!r}")

    def load(self, input_id: str, path: str) -> None:
        data = Path(path).read_bytes()
        self.inputs[input_id] = data
        if self.variant == "floor":
            self.prepared[input_id] = self._imaging.FloorJob(data, self.spec)

    def run(self, input_id: str) -> list[Output]:
        return self._run(input_id)

    def _run_resizer(self, input_id: str) -> list[Output]:
        # A fresh bytes object, as if just read from S3: one copy of the input, as the sharp worker's Buffer.from(data)
        # (benchmarks/sharp/worker.js). bytes(memoryview(x)) copies once; bytes(bytearray(x)) copied twice, inside the
        # timed region (on the 17 MB RGBA PNG one more memcpy, ~1.3 ms, and up to ~8k page faults a job when the
        # freed copies were trimmed from the heap), and bytes(x) of a bytes object would not copy at all.
        data = bytes(memoryview(self.inputs[input_id]))
        result = self.resizer.resize(data, self.spec)
        t = result.timings
        self.last_phases = {"decode_ms": t.decode_ms, "resize_ms": t.resize_ms, "encode_ms": t.encode_ms}
        return [(t.name, t.width, t.height, t.format, t.data) for t in result.outputs]

    def _run_floor(self, input_id: str) -> list[Output]:
        return self.prepared[input_id].run()


def handle(job: Job, req: dict[str, Any]) -> dict[str, Any]:
    op = req.get("op")
    if op == "load":
        job.load(str(req["id"]), str(req["path"]))
        return {"ok": True}
    if op == "run":
        input_id = str(req["id"])
        if input_id not in job.inputs:
            return {
                "ok": False,
                "error": {
                    "code": "BENCH_INVALID_ARGUMENT",
                    "message": f"Expected a loaded input id for run but received {input_id!r}",
                },
            }
        c0 = time.process_time_ns()
        t0 = time.perf_counter_ns()
        outs = job.run(input_id)
        t1 = time.perf_counter_ns()
        c1 = time.process_time_ns()
        records = []
        for name, w, h, fmt, data in outs:
            rec: dict[str, Any] = {"name": name, "width": w, "height": h, "format": fmt, "bytes": len(data)}
            if req.get("save_dir"):
                p = Path(req["save_dir"]) / f"{name}.{'jpg' if fmt == 'jpeg' else fmt}"
                p.write_bytes(data)
                rec["path"] = str(p)
            records.append(rec)
        res = {"ok": True, "wall_ms": (t1 - t0) / 1e6, "cpu_ms": (c1 - c0) / 1e6, "outputs": records}
        if job.last_phases is not None:
            res["phases"] = job.last_phases
        return res
    if op == "mem":
        return {"ok": True, **mem()}
    return {
        "ok": False,
        "error": {"code": "BENCH_INVALID_ARGUMENT", "message": f"Expected op load|run|mem|exit but received {op!r}"},
    }


def _send(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    variant = argv[0] if argv else ""
    options = json.loads(argv[1]) if len(argv) > 1 else {}
    try:
        job = Job(variant, options)
    except Exception as exc:  # report why the worker cannot start, in the protocol, then stop
        _send({"ready": False, "error": {"code": getattr(exc, "code", "BENCH_WORKER_FAILED"), "message": str(exc)}})
        return 3
    _send({"ready": True, "variant": variant, "versions": job.versions, "pid": os.getpid(), **mem()})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
        except json.JSONDecodeError:
            _send(
                {
                    "ok": False,
                    "error": {
                        "code": "BENCH_INVALID_ARGUMENT",
                        "message": f"Expected one JSON object per line but received {line[:80]!r}",
                    },
                }
            )
            continue
        if req.get("op") == "exit":
            break
        try:
            res = handle(job, req)
        except MemoryError as exc:
            res = {"ok": False, "error": {"code": "BENCH_OUT_OF_MEMORY", "message": f"MemoryError: {exc}"}}
        except Exception as exc:  # a failing job is a result to record, not a reason to stop the worker
            code = str(getattr(exc, "code", "BENCH_WORKER_FAILED"))
            msg = str(exc)
            if "out of memory" in msg.lower() or "cannot allocate" in msg.lower():
                code = "BENCH_OUT_OF_MEMORY"
            res = {"ok": False, "error": {"code": code, "message": f"{type(exc).__name__}: {msg}"}}
        _send(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
