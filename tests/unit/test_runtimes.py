"""Runtime records: what the executor plugin writes, harness.runtimes reads (one reader for emulator, chaos, load)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from common.errors import CodedError
from harness import emulator, runtimes
from harness.executor.local_executor import runtimes as plugin
from harness.runtimes import RuntimeRecord, read_records

DEAD_PID = 2**22 + 12345  # above pid_max: never alive


def plugin_record(executor_id: str, function_name: str, pid: int) -> plugin.RuntimeRecord:
    return plugin.RuntimeRecord(
        executor_id=executor_id,
        function_name=function_name,
        pid=pid,
        started_at=1.5,
        memory_mode="cgroup2",
        memory_limit_mb=256,
        localstack_pid=os.getppid(),
    )


def test_the_harness_names_the_same_fields_as_the_plugin_writes() -> None:
    assert tuple(f.name for f in dataclasses.fields(plugin.RuntimeRecord)) == runtimes.FIELDS


def test_a_record_written_by_the_plugin_parses_with_every_field(tmp_path: Path) -> None:
    # GIVEN a record written exactly as the executor plugin writes it when it starts an environment
    folder = runtimes.runtimes_dir(tmp_path)
    written = plugin_record("0a1b2c", "thumbs-fn", os.getpid())
    plugin.write_record(folder, written)
    # WHEN the harness reads the folder
    records = read_records(folder)
    # THEN it gets one frozen record with the same values
    assert records == [RuntimeRecord(**dataclasses.asdict(written))]
    with pytest.raises(dataclasses.FrozenInstanceError):
        records[0].pid = 1  # type: ignore[misc]


def test_the_plugin_s_json_document_parses_field_by_field(tmp_path: Path) -> None:
    doc = {
        "executor_id": "e1",
        "function_name": "fn",
        "pid": 42,
        "started_at": 1700000000.25,
        "memory_mode": "rss",
        "memory_limit_mb": 128,
        "localstack_pid": 7,
    }
    assert set(doc) == set(runtimes.FIELDS)
    record = RuntimeRecord.from_json(json.loads(json.dumps(doc)))
    assert dataclasses.asdict(record) == doc


def test_partial_broken_and_foreign_records(tmp_path: Path) -> None:
    folder = runtimes.runtimes_dir(tmp_path)
    folder.mkdir()
    (folder / "bare.json").write_text(f'{{"pid": {os.getpid()}}}')  # only a pid: still names a process
    (folder / "broken.json").write_text("{")
    (folder / "nopid.json").write_text('{"executor_id": "x", "function_name": "fn"}')
    (folder / "list.json").write_text("[1, 2]")
    (folder / "notes.txt").write_text("not a record")
    plugin.write_record(folder, plugin_record("other", "other-fn", DEAD_PID))

    records = read_records(folder)
    assert sorted(r.executor_id for r in records) == ["bare", "other"]
    bare = next(r for r in records if r.executor_id == "bare")
    assert (bare.pid, bare.function_name, bare.memory_mode) == (os.getpid(), "", None)
    assert [r.executor_id for r in read_records(folder, "other-fn")] == ["other"]
    assert read_records(tmp_path / "absent") == []


def test_records_come_oldest_first(tmp_path: Path) -> None:
    folder = runtimes.runtimes_dir(tmp_path)
    for n, name in enumerate(("b", "c", "a")):
        path = plugin.write_record(folder, plugin_record(name, "fn", os.getpid()))
        assert path is not None
        os.utime(path, (1000.0 + n, 1000.0 + n))
    assert [r.executor_id for r in read_records(folder)] == ["b", "c", "a"]


@pytest.mark.parametrize("doc", [{"executor_id": "x"}, {"pid": "abc"}, {"pid": None}, [1]])
def test_a_document_without_a_pid_is_a_coded_error(doc: object) -> None:
    with pytest.raises(CodedError) as info:
        RuntimeRecord.from_json(doc)  # type: ignore[arg-type]
    assert info.value.code == "RUNTIME_RECORD_INVALID" and "Expected" in info.value.message


def test_live_runtimes_keeps_only_live_processes_of_the_function(tmp_path: Path) -> None:
    folder = runtimes.runtimes_dir(tmp_path)
    plugin.write_record(folder, plugin_record("alive", "fn", os.getpid()))
    plugin.write_record(folder, plugin_record("dead", "fn", DEAD_PID))
    plugin.write_record(folder, plugin_record("elsewhere", "other", os.getpid()))
    assert [r.executor_id for r in emulator.live_runtimes(folder, "fn")] == ["alive"]
    assert sorted(r.executor_id for r in emulator.live_runtimes(folder)) == ["alive", "elsewhere"]
