"""Run the fuzz corpus through one backend in a watched subprocess: crashes, hangs and RSS are caught per input."""

from __future__ import annotations

import argparse
import io
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.paths import HANDLERS_DIR, ROOT

STARTUP_TIMEOUT_S = 120.0  # the worker generates the corpus itself (~3 s) before the first input
POLL_S = 0.25
INJECT_ENV = "FUZZ_INJECT"


@dataclass
class FuzzReport:
    """What one backend did with the corpus: outcome per input, failures of the run itself, time and memory."""

    backend: str
    outcomes: dict[str, str] = field(default_factory=dict)  # mutant name -> OK | error code
    retryable: set[str] = field(default_factory=set)  # names that ended with a retryable error
    failures: list[str] = field(default_factory=list)  # crash / hang / RSS / bad output, each naming its input
    formats: dict[str, str] = field(default_factory=dict)  # name -> format
    peak_rss_mb: float = 0.0  # max VmHWM over the worker processes
    wall_s: float = 0.0
    workers: int = 0
    slowest: tuple[str, float] = ("", 0.0)

    def counts(self) -> dict[str, dict[str, int]]:
        """format -> outcome -> count."""
        out: dict[str, Counter[str]] = {}
        for name, outcome in self.outcomes.items():
            out.setdefault(self.formats[name], Counter())[outcome] += 1
        return {fmt: dict(sorted(c.items())) for fmt, c in sorted(out.items())}

    def summary(self) -> str:
        by_code = Counter(self.outcomes.values())
        return (
            f"{self.backend}: {len(self.outcomes)} mutants in {self.wall_s:.1f} s, "
            f"peak RSS {self.peak_rss_mb:.0f} MB, "
            f"{self.workers} worker(s), slowest {self.slowest[0]} {self.slowest[1]:.0f} ms; "
            f"outcomes {dict(sorted(by_code.items()))}; per format {self.counts()}"
        )


def _rss_kb(pid: int, field_name: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HANDLERS_DIR)])
    env["VIPS_CONCURRENCY"] = env.get("VIPS_CONCURRENCY", "1")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_corpus(backend: str, *, seed: int, per_format: int, deadline_s: float, rss_limit_mb: float) -> FuzzReport:
    """Every mutant through `backend`; a crash, a hang past `deadline_s` or RSS over the limit is recorded against
    the input being processed, and a fresh worker continues with the next one."""
    report = FuzzReport(backend)
    t0 = time.monotonic()
    start = 0
    total: int | None = None
    while total is None or start < total:
        report.workers += 1
        with tempfile.TemporaryFile() as stderr:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.contract.fuzzing",
                    "--backend",
                    backend,
                    "--seed",
                    str(seed),
                    "--per-format",
                    str(per_format),
                    "--start",
                    str(start),
                ],
                cwd=ROOT,
                env=_env(),
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
            total, start = _watch(proc, report, start, total, deadline_s, rss_limit_mb, stderr)
        if report.workers > 50:
            report.failures.append("more than 50 worker restarts: giving up")
            break
    report.wall_s = time.monotonic() - t0
    return report


def _watch(
    proc: subprocess.Popen[bytes],
    report: FuzzReport,
    start: int,
    total: int | None,
    deadline_s: float,
    rss_limit_mb: float,
    stderr: Any,
) -> tuple[int | None, int]:
    """Read one worker's events until it ends; returns (corpus size, index to restart from).

    Raw reads of the pipe (never a buffered readline, whose buffer select() cannot see), lines split here.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    state = _WorkerState(start)
    last = last_rss_check = time.monotonic()
    pending = b""

    def stop(reason: str) -> tuple[int | None, int]:
        proc.kill()
        proc.wait()
        name = state.current[1] if state.current else f"(before input #{state.next_index})"
        tail = _tail(stderr)
        report.failures.append(f"{reason}: {name}" + (f" | stderr: {tail}" if tail else ""))
        return state.total if state.total is not None else total, state.restart_at()

    state.total = total
    try:
        while True:
            ready = sel.select(POLL_S)
            now = time.monotonic()
            if ready:
                data = os.read(fd, 1 << 16)
                if not data:  # EOF: the worker ended
                    code = proc.wait()
                    if code != 0:
                        sig = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                        return stop(f"worker died ({sig})")
                    return state.total, state.total if state.total is not None else state.next_index
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        state.apply(json.loads(line), report)
                last = now
            if not ready or now - last_rss_check >= POLL_S:  # after the pending lines: `current` is up to date
                last_rss_check = now
                state.peak_kb = max(state.peak_kb, _rss_kb(proc.pid, "VmHWM"))
                if state.peak_kb / 1024 > rss_limit_mb:
                    return stop(f"RSS {state.peak_kb / 1024:.0f} MB over the {rss_limit_mb:.0f} MB limit")
            limit = deadline_s if state.current else STARTUP_TIMEOUT_S
            if not ready and now - last > limit:
                return stop(f"no result within {limit:.0f} s (hang)")
    finally:
        report.peak_rss_mb = max(report.peak_rss_mb, state.peak_kb / 1024)
        sel.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@dataclass
class _WorkerState:
    """Where one worker is: the input in progress, the next index, the corpus size, its peak RSS."""

    next_index: int
    total: int | None = None
    current: tuple[int, str] | None = None
    peak_kb: int = 0

    def restart_at(self) -> int:
        return self.current[0] + 1 if self.current else self.next_index

    def apply(self, event: dict[str, Any], report: FuzzReport) -> None:
        kind = event["event"]
        if kind == "corpus":
            self.total = int(event["total"])
        elif kind == "start":
            self.current = (int(event["i"]), str(event["name"]))
            report.formats[self.current[1]] = str(event["format"])
        elif kind == "done":
            name = str(event["name"])
            report.outcomes[name] = str(event["outcome"])
            if event.get("retryable"):
                report.retryable.add(name)
            if event.get("bad_output"):
                report.failures.append(f"bad output: {name}: {event['bad_output']}")
            if float(event["ms"]) > report.slowest[1]:
                report.slowest = (name, float(event["ms"]))
            self.next_index = int(event["i"]) + 1
            self.current = None
        elif kind == "end":
            self.peak_kb = max(self.peak_kb, int(event["vmhwm_kb"]))


def _tail(stderr: Any, limit: int = 400) -> str:
    try:
        stderr.seek(0)
        text = stderr.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
    return " / ".join(text.strip().splitlines()[-3:])[-limit:]


# ---- the worker (runs in the subprocess) -------------------------------------------------------------------------
def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _check_outputs(result: Any) -> str:
    """'' when every thumbnail decodes to its stated size, else what is wrong."""
    from PIL import Image

    for thumb in result.outputs:
        try:
            im = Image.open(io.BytesIO(thumb.data))
            im.load()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return f"{thumb.name} does not decode: {exc!r}"
        if im.size != (thumb.width, thumb.height) or not (1 <= thumb.width <= 1024 and 1 <= thumb.height <= 1024):
            return f"{thumb.name} is {im.size}, stated {thumb.width}x{thumb.height}"
    return "" if result.outputs else "no outputs"


def _misbehave(kind: str) -> None:
    if kind == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == "hang":
        time.sleep(3600)
    elif kind == "rss":
        hog = bytearray(400 * 1024 * 1024)  # zero-filled pages are touched: RSS grows by 400 MB
        for k in range(0, len(hog), 4096):
            hog[k] = 1
        time.sleep(3600)


def worker(backend: str, seed: int, per_format: int, start: int) -> int:
    from fixtures.fuzz import generate
    from thumbnailer.errors import ThumbnailError
    from thumbnailer.resizers import ResizeSpec, get_resizer

    warnings.simplefilter("ignore")
    corpus = generate(seed, per_format)
    # the runner's own test: FUZZ_INJECT="crash:<name>,hang:<name>,rss:<name>" makes the worker misbehave there
    parts = [p.partition(":") for p in os.environ.get(INJECT_ENV, "").split(",") if p]
    inject = {name: kind for kind, _, name in parts}
    resizer = get_resizer(backend, threads=1) if backend == "vips" else get_resizer(backend)
    spec = ResizeSpec()
    _emit(event="corpus", total=len(corpus))
    for i in range(start, len(corpus)):
        m = corpus[i]
        _emit(event="start", i=i, name=m.name, format=m.format)
        t = time.perf_counter()
        if inject.get(m.name):
            _misbehave(inject[m.name])
        bad = ""
        try:
            result = resizer.resize(m.data, spec)
            outcome, retryable = "OK", False
            bad = _check_outputs(result)
        except ThumbnailError as exc:
            outcome, retryable = str(exc.code), exc.retryable
        except Exception as exc:  # noqa: BLE001 - an unclassified exception is what the test looks for
            outcome, retryable = f"UNCLASSIFIED {type(exc).__name__}: {exc}"[:200], True
        _emit(
            event="done",
            i=i,
            name=m.name,
            outcome=outcome,
            retryable=retryable,
            bad_output=bad,
            ms=round((time.perf_counter() - t) * 1000, 1),
        )
    _emit(event="end", vmhwm_kb=_rss_kb(os.getpid(), "VmHWM"))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--per-format", type=int, required=True)
    ap.add_argument("--start", type=int, default=0)
    args = ap.parse_args(argv)
    return worker(args.backend, args.seed, args.per_format, args.start)


if __name__ == "__main__":
    raise SystemExit(main())
