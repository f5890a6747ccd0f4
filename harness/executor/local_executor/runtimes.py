"""Records of live execution environments in <HARNESS_HOME>/runtimes/<executor_id>.json (read by load/chaos tools)."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RuntimeRecord:
    executor_id: str
    function_name: str
    pid: int
    started_at: float  # epoch seconds
    memory_mode: str
    memory_limit_mb: int
    localstack_pid: int


def write_json_atomic(path: Path, data: dict[str, Any]) -> Path:
    """Write `data` as JSON to `path` through a temp file of the writing thread's own, then rename it into place:
    readers see the old or the new file, never a partial one, and two threads writing one path at once (two
    environments of a function starting together in LocalStack's process) never rename each other's temp file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.tmp{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
    return path


def write_record(folder: Path | None, record: RuntimeRecord) -> Path | None:
    """Write (atomically) the record of one live environment; None when there is no state folder."""
    if folder is None:
        return None
    return write_json_atomic(folder / f"{record.executor_id}.json", asdict(record))


def remove_record(folder: Path | None, executor_id: str) -> None:
    if folder is not None:
        (folder / f"{executor_id}.json").unlink(missing_ok=True)


def read_records(folder: Path) -> list[RuntimeRecord]:
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(RuntimeRecord(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return records


def pid_alive(pid: int) -> bool:
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


def sweep_stale(folder: Path | None) -> int:
    """Remove records whose LocalStack is gone (left by a crash); return how many were removed."""
    if folder is None or not folder.exists():
        return 0
    removed = 0
    for record in read_records(folder):
        if record.localstack_pid != os.getpid() and not pid_alive(record.localstack_pid):
            (folder / f"{record.executor_id}.json").unlink(missing_ok=True)
            removed += 1
    return removed
