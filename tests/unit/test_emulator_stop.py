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


def test_the_stop_waits_on_the_marker_the_plugin_writes() -> None:
    # the plugin runs in the emulator's venv and cannot be imported here: read its constants from its source
    import ast
    from pathlib import Path

    from harness import emulator as emulator_module

    source = Path(emulator_module.__file__).parent / "executor" / "local_executor" / "persistence.py"
    tree = ast.parse(source.read_text())
    assigned = {
        t.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert '/ "persist"' in source.read_text()  # the plugin's state folder under HARNESS_HOME
    assert f"persist/{assigned['SAVING_MARKER']}" == emulator_module.SAVING_MARKER
