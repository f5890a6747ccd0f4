"""The local-process Lambda executor against the real embedded LocalStack: results, errors, timeouts, crashes, memory"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.waiting import wait_until
from harness import emulator as emu
from harness.runtimes import RuntimeRecord, read_records, runtimes_dir
from harness.settings import HarnessSettings
from tests.lambdas import create_function, unique_name

BEHAVIOURS = """
import json, logging, os, sys, time

COLD_START_PID = os.getpid()
INVOCATIONS = 0
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("fn")


def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    action = event.get("action", "echo")
    print(f"marker={event.get('marker', '-')} action={action}")
    log.info("logged through logging")
    if action == "raise":
        raise ValueError("expected failure: " + event.get("marker", ""))
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        sys.stdout.flush()
        os._exit(event.get("code", 1))
    if action == "alloc":
        block = bytearray(event["mb"] * 1024 * 1024)
        block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page
        return {"allocated_mb": len(block) // (1024 * 1024)}
    return {
        "echo": event.get("value"),
        "pid": os.getpid(),
        "cold_start_pid": COLD_START_PID,
        "invocations": INVOCATIONS,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
    }
"""


def invoke(lam: Any, name: str, event: dict) -> tuple[dict, str | None, str]:
    """Synchronous invoke: (payload, FunctionError, tail of the log)."""
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    payload = json.loads(resp["Payload"].read() or b"null")
    return payload, resp.get("FunctionError"), base64.b64decode(resp.get("LogResult", "")).decode(errors="replace")


def runtime_records(settings: HarnessSettings, function_name: str) -> list[RuntimeRecord]:
    return read_records(runtimes_dir(settings.home), function_name)


@pytest.fixture(scope="module")
def lam(aws: Callable[..., Any]) -> Any:
    return aws("lambda")


@pytest.fixture(scope="module")
def embedded(emulator: emu.EmulatorHandle, harness_settings: HarnessSettings) -> HarnessSettings:
    if harness_settings.emulator != "embedded" or harness_settings.endpoint_override:
        pytest.skip("needs the embedded emulator (the runtime records live in its HARNESS_HOME)")
    return harness_settings


def delete_log_group(logs_client: Any, function_name: str) -> None:
    try:
        logs_client.delete_log_group(logGroupName=f"/aws/lambda/{function_name}")
    except logs_client.exceptions.ResourceNotFoundException:
        pass


@pytest.fixture()
def function(lam: Any, aws: Callable[..., Any]) -> Any:
    """Factory: create a function from BEHAVIOURS (or given source); it and its log group are deleted afterwards."""
    created: list[str] = []

    def make(prefix: str, *, source: str = BEHAVIOURS, **kwargs: Any) -> str:
        name = unique_name(prefix)
        create_function(lam, name, source, **kwargs)
        created.append(name)
        return name

    yield make
    logs_client = aws("logs")
    for name in created:
        lam.delete_function(FunctionName=name)
        delete_log_group(logs_client, name)


def test_sync_invoke_returns_the_result_and_keeps_cold_start_state(lam: Any, function: Any) -> None:
    name = function("exec-ok", timeout=5, memory=256)

    first, error, logs = invoke(lam, name, {"value": 42})
    second, _, _ = invoke(lam, name, {"value": "again"})

    assert error is None, first
    assert first["echo"] == 42 and second["echo"] == "again"
    assert first["function_name"] == name and first["memory_limit_in_mb"] == "256"
    assert 0 < first["remaining_ms"] <= 5000
    # the same environment served both: module globals survived, as on Lambda
    assert second["cold_start_pid"] == first["cold_start_pid"] and second["invocations"] == 2
    assert f"START RequestId: {first['request_id']}" in logs
    assert "Max Memory Used:" in logs and "Init Duration:" in logs


def test_raising_function_gives_function_error_with_the_error_document(lam: Any, function: Any) -> None:
    name = function("exec-raise")

    payload, error, logs = invoke(lam, name, {"action": "raise", "marker": "m1"})

    assert error == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "expected failure: m1"
    assert payload["stackTrace"] and "app.py" in payload["stackTrace"][-1]
    assert "[ERROR] ValueError: expected failure: m1" in logs


def test_sleeping_past_the_timeout_gives_sandbox_timedout_then_a_fresh_runtime(lam: Any, function: Any) -> None:
    name = function("exec-timeout", timeout=1)
    before, _, _ = invoke(lam, name, {})

    t0 = time.monotonic()
    payload, error, logs = invoke(lam, name, {"action": "sleep", "seconds": 30})
    elapsed = time.monotonic() - t0
    after, after_error, _ = invoke(lam, name, {})

    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert "Task timed out after 1.00 seconds" in logs
    assert 1.0 <= elapsed < 10, f"timeout answered after {elapsed:.1f}s (the handler sleeps 30s)"
    assert after_error is None and after["cold_start_pid"] != before["cold_start_pid"]


def test_sigkilled_runtime_gives_exit_error_at_once_and_the_next_invoke_works(
    lam: Any, function: Any, embedded: HarnessSettings
) -> None:
    name = function("exec-kill", timeout=60)
    warm, _, _ = invoke(lam, name, {})
    records = runtime_records(embedded, name)
    assert [r.pid for r in records] == [warm["pid"]]

    result: dict[str, Any] = {}

    def call() -> None:
        result["value"] = invoke(lam, name, {"action": "sleep", "seconds": 40, "marker": "to-be-killed"})
        result["at"] = time.monotonic()

    caller = threading.Thread(target=call)
    caller.start()
    # kill it mid-invocation (once the handler has started: its marker is in the environment's log)
    wait_until(lambda: _handler_started(embedded, warm["pid"]), 20, what="handler to start sleeping")
    killed_at = time.monotonic()
    os.kill(warm["pid"], signal.SIGKILL)
    caller.join(timeout=30)
    assert not caller.is_alive(), "the invocation of a killed runtime did not return"
    payload, error, _ = result["value"]
    latency = result["at"] - killed_at
    after, after_error, _ = invoke(lam, name, {})

    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "signal: killed" in payload["errorMessage"]
    assert latency < 5, f"crash reported after {latency:.2f}s (the handler would sleep 40s)"
    assert after_error is None and after["pid"] != warm["pid"]
    assert [r.pid for r in runtime_records(embedded, name)] == [after["pid"]]


def _handler_started(settings: HarnessSettings, pid: int) -> bool:
    """True once the runtime with this pid printed the 'to-be-killed' marker into its environment's log file."""
    try:
        targets = [Path(os.readlink(fd)) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        log = next(t for t in targets if t.name == "runtime.log")
        return "marker=to-be-killed" in log.read_text(errors="replace")
    except (OSError, StopIteration):
        return False


def test_os_exit_gives_exit_error_and_the_next_invoke_works(lam: Any, function: Any) -> None:
    name = function("exec-exit")

    payload, error, logs = invoke(lam, name, {"action": "exit", "code": 3})
    after, after_error, _ = invoke(lam, name, {"value": 1})

    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in payload["errorMessage"]
    assert "Runtime.ExitError" in logs
    assert after_error is None and after["echo"] == 1


def test_a_code_folder_removed_under_a_live_function_is_unzipped_again_at_the_next_start(
    lam: Any, function: Any, embedded: HarnessSettings
) -> None:
    # GIVEN a warm function whose unzipped code folder then disappears (LocalStack removes a code's folder when it
    # believes no version uses it; an environment starting at that moment found no folder: FileNotFoundError)
    name = function("exec-codedir")
    warm, _, _ = invoke(lam, name, {})
    task_root = Path(warm["task_root"])
    assert (task_root / "app.py").is_file()
    shutil.rmtree(task_root)
    # WHEN its runtime exits and the next invocation starts a new one
    _, exit_error, _ = invoke(lam, name, {"action": "exit", "code": 3})
    after, after_error, _ = invoke(lam, name, {"value": "back"})
    # THEN that start unzips the code again and the function answers
    assert exit_error == "Unhandled"
    assert after_error is None, after
    assert after["echo"] == "back" and after["pid"] != warm["pid"]
    assert (task_root / "app.py").is_file()


def test_import_error_gives_runtime_import_module_error(lam: Any, function: Any) -> None:
    name = function(
        "exec-import", source="import module_that_does_not_exist\n\ndef handler(event, context):\n    return 1\n"
    )

    payload, error, _ = invoke(lam, name, {})

    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert payload["errorMessage"] == "Unable to import module 'app': No module named 'module_that_does_not_exist'"


def test_logs_reach_cloudwatch_logs(lam: Any, function: Any, aws: Callable[..., Any]) -> None:
    name = function("exec-logs")
    marker = unique_name("log-marker")
    logs_client = aws("logs")

    invoke(lam, name, {"marker": marker})

    def found() -> list[str]:
        try:
            events = logs_client.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs_client.exceptions.ResourceNotFoundException:
            return []
        messages = [e["message"] for e in events]
        return messages if any(marker in m for m in messages) else []

    messages = wait_until(found, 20, what=f"log events of {name}")
    assert any("logged through logging" in m for m in messages)
    assert any(m.startswith("REPORT RequestId:") for m in messages)


def test_allocating_beyond_memory_size_fails_that_invocation_and_the_emulator_carries_on(
    lam: Any, function: Any, harness_settings: HarnessSettings
) -> None:
    name = function("exec-oom", memory=128, timeout=20)

    within, within_error, _ = invoke(lam, name, {"action": "alloc", "mb": 16})
    payload, error, logs = invoke(lam, name, {"action": "alloc", "mb": 512})
    after, after_error, _ = invoke(lam, name, {"value": "still here"})

    assert within_error is None and within == {"allocated_mb": 16}
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert "Runtime.OutOfMemory" in logs
    assert after_error is None and after["echo"] == "still here"
    assert emu.health(harness_settings.endpoint) is not None


def test_stopping_an_environment_removes_its_runtime_record(
    lam: Any, embedded: HarnessSettings, aws: Callable[..., Any]
) -> None:
    name = unique_name("exec-record")
    create_function(lam, name, BEHAVIOURS)
    first, _, _ = invoke(lam, name, {})
    records = runtime_records(embedded, name)

    lam.delete_function(FunctionName=name)
    delete_log_group(aws("logs"), name)

    assert [r.pid for r in records] == [first["pid"]]
    assert records[0].memory_mode in ("cgroup2", "cgroup1", "rss")
    wait_until(lambda: not runtime_records(embedded, name), 15, what="runtime record removed")
    wait_until(lambda: not _running(first["pid"]), 15, what=f"runtime {first['pid']} gone")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
