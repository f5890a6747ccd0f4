"""SIGKILL of live Lambda execution environments, found through the executor's records in HARNESS_HOME/runtimes."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Runtime:
    """One live execution environment as recorded by the executor plugin."""

    executor_id: str
    function_name: str
    pid: int


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def live_runtimes(runtimes_dir: Path, function_name: str | None = None) -> list[Runtime]:
    """Environments whose process is alive, optionally only those of one function (oldest record first)."""
    out: list[Runtime] = []
    if not runtimes_dir.is_dir():
        return out
    for path in sorted(runtimes_dir.glob("*.json"), key=lambda p: p.stat().st_mtime if p.exists() else 0):
        try:
            doc = json.loads(path.read_text())
            runtime = Runtime(str(doc.get("executor_id") or path.stem), str(doc.get("function_name", "")),
                              int(doc["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if function_name and runtime.function_name != function_name:
            continue
        if _alive(runtime.pid):
            out.append(runtime)
    return out


def sigkill(runtime: Runtime) -> bool:
    """SIGKILL one environment's process; False when it was already gone."""
    try:
        os.kill(runtime.pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
