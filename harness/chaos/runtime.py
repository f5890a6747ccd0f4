"""SIGKILL of live Lambda execution environments, found through the executor's records in HARNESS_HOME/runtimes."""

from __future__ import annotations

import os
import signal

from harness.emulator import Runtime, live_runtimes

__all__ = ["Runtime", "live_runtimes", "sigkill"]


def sigkill(runtime: Runtime) -> bool:
    """SIGKILL one environment's process; False when it was already gone."""
    try:
        os.kill(runtime.pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
