"""A one-line progress bar for a terminal stream (stderr by the CLI); no-op-safe on non-TTY streams."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from harness.load.generator import Progress


class ProgressBar:
    """Renders Progress snapshots as `[#####.....] 512/1000 ok 510 failed 2 12.3/s 41s`, at most `hz` times a second."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30, hz: float = 5.0) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = 1.0 / hz
        self._last = 0.0
        self._lock = threading.Lock()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def render(self, p: Progress) -> str:
        done = p.accepted + p.failed
        frac = done / p.planned if p.planned else 1.0
        filled = int(self.width * frac)
        rate = p.accepted / p.elapsed_s if p.elapsed_s > 0 else 0.0
        return (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{p.planned} "
                f"ok {p.accepted} failed {p.failed} {rate:.1f}/s {p.elapsed_s:.0f}s")

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        final = p.accepted + p.failed >= p.planned
        with self._lock:
            interval = self.min_interval if self.tty else 10.0
            if not final and now - self._last < interval:
                return
            self._last = now
            self.stream.write(("\r" if self.tty else "") + self.render(p) + ("" if self.tty and not final else "\n"))
            self.stream.flush()
