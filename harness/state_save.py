"""The emulator's state save as a stop sees it: the marker the executor plugin keeps while saving, the wait's bound."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from common.waiting import WaitTimeout, wait_until

# A large S3 (thousands of objects after a soak) takes longer to save than a stop's grace period, and a SIGKILL then
# loses the save: a stop that sees this file under HARNESS_HOME (the executor plugin's persistence.SAVING_MARKER in
# its persist/ folder) waits for it to go, at most SAVE_TIMEOUT_S (embedded mode: harness.emulator; docker mode:
# harness.docker_emulator, through the state mount).
SAVING_MARKER = "persist/.saving"
SAVE_TIMEOUT_S = 600.0


def wait_for_exit_or_save(
    running: Callable[[], bool], saving: Path | None, *, grace: float, save_timeout: float = SAVE_TIMEOUT_S
) -> float:
    """After the stop signal: wait `grace` s for `running()` to turn false; then, while `saving` exists, up to
    `save_timeout` s for the save to end and `grace` s more for the exit. Returns the seconds waited beyond the grace
    for the save (0.0: none). The caller kills what still runs."""
    try:
        wait_until(lambda: not running(), grace, interval=0.1, what="the emulator to exit")
        return 0.0
    except WaitTimeout:
        pass
    if saving is None or not saving.exists():
        return 0.0
    t0 = time.monotonic()
    try:
        wait_until(lambda: not running() or not saving.exists(), save_timeout, interval=0.2, what="the state save")
        wait_until(lambda: not running(), grace, interval=0.1, what="the emulator to exit")
    except WaitTimeout:
        pass
    return time.monotonic() - t0
