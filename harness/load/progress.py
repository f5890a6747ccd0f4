"""The upload progress bar of the load CLI (rich): live on a terminal, a plain line every few seconds elsewhere."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
from rich.progress import Progress as RichProgress

from harness.load.generator import Progress

NON_TTY_WIDTH = 120  # CI logs and files: wide enough that a row never wraps


class ProgressBar:
    """Renders generator Progress snapshots as `label ━━━━━━╸    512/1000 ok 510 failed 2 12.3/s 41s`.

    On a terminal rich keeps the bar live (at most `hz` refreshes a second) and leaves it on screen when done. On
    anything else (CI logs, a pipe, a file) the same row is printed as a plain line (no colour, no control codes)
    at most every `log_interval_s` and once when the last upload is done. Safe to call from several threads.
    """

    def __init__(
        self, label: str, stream: TextIO | None = None, *, hz: float = 5.0, log_interval_s: float = 10.0
    ) -> None:
        self.label = label
        file = stream if stream is not None else sys.stderr
        self.console = Console(file=file, highlight=False)
        self.tty = self.console.is_terminal and not self.console.is_dumb_terminal
        if not self.tty:
            self.console = Console(file=file, highlight=False, width=NON_TTY_WIDTH, color_system=None)
        self.log_interval_s = log_interval_s
        self._bar = RichProgress(
            TextColumn("{task.description}", markup=False),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("ok {task.fields[ok]} failed {task.fields[failed]}", markup=False),
            TextColumn("{task.fields[rate]:.1f}/s", markup=False),
            TextColumn("{task.fields[elapsed]:.0f}s", markup=False),
            console=self.console,
            auto_refresh=self.tty,
            refresh_per_second=hz,
            transient=False,
        )
        self._task: TaskID | None = None
        self._lock = threading.Lock()
        self._last_line = 0.0
        self._printed_last = True
        self._closed = False

    def __call__(self, p: Progress) -> None:
        done = p.accepted + p.failed
        final = done >= p.planned
        rate = p.accepted / p.elapsed_s if p.elapsed_s > 0 else 0.0
        with self._lock:
            if self._closed:
                return
            if self._task is None:
                self._task = self._bar.add_task(self.label, total=p.planned, ok=0, failed=0, rate=0.0, elapsed=0.0)
                if self.tty:
                    self._bar.start()
            self._bar.update(
                self._task,
                total=p.planned,
                completed=done,
                ok=p.accepted,
                failed=p.failed,
                rate=rate,
                elapsed=p.elapsed_s,
            )
            if self.tty:
                if final:
                    self._close()
                return
            now = time.monotonic()
            self._printed_last = False
            if final or not self._last_line or now - self._last_line >= self.log_interval_s:
                self._last_line = now
                self._print_row()
            if final:
                self._closed = True

    def _print_row(self) -> None:
        self.console.print(self._bar.make_tasks_table(self._bar.tasks))
        self._printed_last = True

    def _close(self) -> None:
        self._closed = True
        if self.tty:
            self._bar.stop()  # leaves the last rendering on screen and ends its line
        elif not self._printed_last:
            self._print_row()

    def close(self) -> None:
        """End the bar (a run stopped before its last upload): stop the live display, or print the last row."""
        with self._lock:
            if not self._closed and self._task is not None:
                self._close()
            self._closed = True
