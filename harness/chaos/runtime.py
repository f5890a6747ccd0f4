"""SIGKILL of live Lambda execution environments, found through the executor's records (harness.runtimes)."""

from __future__ import annotations

import os
import signal

from harness.emulator import live_runtimes
from harness.runtimes import RuntimeRecord

__all__ = ["RuntimeRecord", "live_runtimes", "sigkill"]


def sigkill(runtime: RuntimeRecord) -> bool:
    """SIGKILL one environment's process; False when it was already gone."""
    try:
        os.kill(runtime.pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
