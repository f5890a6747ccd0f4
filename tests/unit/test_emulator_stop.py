"""Stopping the embedded emulator: a state save in progress is waited for, a hung process is still killed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from common.waiting import wait_until
from harness import emulator

# a process that, on SIGTERM, "saves its state" for `save_s` seconds (the marker present meanwhile), then exits
SAVER = textwrap.dedent(
    """
    import os, signal, sys, time
    marker, done, save_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    def on_term(*_):
        open(marker, "w").close()
        time.sleep(save_s)
        open(done, "w").close()
        os.unlink(marker)
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    open(done + ".ready", "w").close()
    while True:
        time.sleep(0.05)
    """
)


def _start(tmp_path: Path, save_s: float) -> tuple[subprocess.Popen, Path, Path]:
    marker, done = tmp_path / ".saving", tmp_path / "saved"
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(marker), str(done), str(save_s)], start_new_session=True)
    wait_until(lambda: (tmp_path / "saved.ready").exists(), 10.0, interval=0.02, what="the saver to start")
    return proc, marker, done


def test_a_save_longer_than_the_grace_period_is_waited_for(tmp_path: Path) -> None:
    proc, marker, done = _start(tmp_path, save_s=2.0)
    waited = emulator._terminate_group(proc.pid, timeout=0.5, saving=marker)
    assert proc.wait(timeout=5) == 0  # exited by itself, not SIGKILLed (-9)
    assert done.exists() and not marker.exists()
    assert waited > 0


def test_without_a_save_marker_the_grace_period_ends_in_sigkill(tmp_path: Path) -> None:
    proc, marker, done = _start(tmp_path, save_s=2.0)
    emulator._terminate_group(proc.pid, timeout=0.5, saving=tmp_path / "another-marker")
    assert proc.wait(timeout=5) == -9
    assert not done.exists()
