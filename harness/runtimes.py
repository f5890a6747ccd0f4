"""Reads the executor plugin's records of Lambda execution environments: `$HARNESS_HOME/runtimes/<executor_id>.json`.

The plugin (harness/executor/local_executor/runtimes.py) writes them; it runs in the emulator venv and cannot import
this module, so the record's fields are spelled twice: here, for every reader in the harness and its tests, and in
the plugin's writer. tests/unit/test_runtimes.py writes a record with the plugin's own writer and parses it here.
Whether a recorded process is still alive is the emulator's business (harness.emulator.live_runtimes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from common.errors import CodedError, expected

RUNTIMES_DIRNAME = "runtimes"


class RuntimeRecordInvalid(CodedError, ValueError):
    """A runtime record document does not name a process (code RUNTIME_RECORD_INVALID)."""


@dataclass(frozen=True)
class RuntimeRecord:
    """One execution environment as the plugin recorded it. Only `pid` is required: a record without the other
    fields (an older plugin, a hand-written one) still names a process; `executor_id` falls back to the file name."""

    executor_id: str
    function_name: str
    pid: int
    started_at: float | None = None  # epoch seconds
    memory_mode: str | None = None  # cgroup2 | cgroup1 | rss | off
    memory_limit_mb: int | None = None
    localstack_pid: int | None = None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, executor_id: str = "") -> RuntimeRecord:
        """Parse one record document; RuntimeRecordInvalid when it does not name a process."""
        if not isinstance(doc, Mapping):
            raise RuntimeRecordInvalid("RUNTIME_RECORD_INVALID", expected("a JSON object", "a runtime record", doc))
        try:
            pid = int(doc["pid"])
        except (KeyError, TypeError, ValueError):
            raise RuntimeRecordInvalid(
                "RUNTIME_RECORD_INVALID", expected("an integer pid", "a runtime record", doc.get("pid"))
            ) from None
        return cls(
            executor_id=str(doc.get("executor_id") or executor_id),
            function_name=str(doc.get("function_name") or ""),
            pid=pid,
            started_at=_optional(doc, "started_at", float),
            memory_mode=_optional(doc, "memory_mode", str),
            memory_limit_mb=_optional(doc, "memory_limit_mb", int),
            localstack_pid=_optional(doc, "localstack_pid", int),
        )


# The field names of a record, in the plugin's order (the one place the harness side names them).
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RuntimeRecord))


def _optional(doc: Mapping[str, Any], name: str, kind: type) -> Any:
    value = doc.get(name)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def runtimes_dir(home: Path) -> Path:
    """The folder the plugin writes its records to, under a HARNESS_HOME."""
    return home / RUNTIMES_DIRNAME


def read_record(path: Path) -> RuntimeRecord | None:
    """One record file; None when it is gone, half-written or not a record (the plugin replaces files atomically,
    but a record can vanish between listing and reading)."""
    try:
        return RuntimeRecord.from_json(json.loads(path.read_text()), executor_id=path.stem)
    except (OSError, ValueError):
        return None


def read_records(folder: Path, function_name: str | None = None) -> list[RuntimeRecord]:
    """Every parseable record in `folder` (oldest file first), optionally only those of one function."""
    if not folder.is_dir():
        return []

    def age(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    out = []
    for path in sorted(folder.glob("*.json"), key=lambda p: (age(p), p.name)):
        record = read_record(path)
        if record is not None and (not function_name or record.function_name == function_name):
            out.append(record)
    return out
