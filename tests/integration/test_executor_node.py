"""Node.js functions (nodejs20.x, nodejs22.x) on the local-process executor of the embedded LocalStack.

Each function is a plain index.js zip made here, outside the project's code: results, error documents, the callback
form, timeouts, crashes, the memory ceiling, CloudWatch logs, environment and credentials, MaximumConcurrency.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from common.waiting import wait_until
from harness import emulator as emu
from harness.settings import HarnessSettings
from tests.lambdas import LAMBDA_ROLE, create_function, unique_name, zip_sources

RUNTIMES = ("nodejs20.x", "nodejs22.x")

BEHAVIOURS = """
const COLD_START_PID = process.pid;
let invocations = 0;

function burn(mb) {
  const blocks = [];
  for (let i = 0; i < mb; i++) blocks.push(Buffer.alloc(1024 * 1024, 1)); // filled: every page resident
  return blocks.length;
}

exports.handler = async (event, context) => {
  invocations += 1;
  const action = event.action || 'echo';
  console.log(`marker=${event.marker || '-'} action=${action}`);
  if (action === 'raise') throw new RangeError('expected failure: ' + (event.marker || ''));
  if (action === 'sleep') await new Promise((resolve) => setTimeout(resolve, event.seconds * 1000));
  if (action === 'exit') {
    setTimeout(() => process.exit(event.code), event.afterMs || 0);
    return new Promise(() => {}); // never settles: only the exit ends this invocation
  }
  if (action === 'throw-later') {
    setTimeout(() => { throw new Error('thrown outside the handler'); }, 50);
    return new Promise(() => {});
  }
  if (action === 'buffers') return { allocatedMb: burn(event.mb) };
  if (action === 'heap') {
    const keep = [];
    for (;;) keep.push({ text: 'x'.repeat(64) + keep.length, n: keep.length });
  }
  if (action === 'env') return process.env;
  if (action === 'fetch') {
    const res = await fetch(`${process.env.AWS_ENDPOINT_URL}/_localstack/health`);
    return { status: res.status, services: Object.keys((await res.json()).services || {}).length };
  }
  return {
    echo: event.value,
    node: process.version,
    pid: process.pid,
    coldStartPid: COLD_START_PID,
    invocations,
    requestId: context.awsRequestId,
    functionName: context.functionName,
    memoryLimitInMB: context.memoryLimitInMB,
    remainingMs: context.getRemainingTimeInMillis(),
  };
};
"""

CALLBACK = """
exports.handler = (event, context, callback) => {
  setTimeout(() => {
    if (event.fail) callback(new TypeError('callback error'));
    else callback(null, { via: 'callback', got: event.value });
  }, 20);
};
"""


def invoke(lam: Any, name: str, event: dict) -> tuple[Any, str | None, str]:
    """Synchronous invoke: (payload, FunctionError, tail of the log)."""
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    payload = json.loads(resp["Payload"].read() or b"null")
    return payload, resp.get("FunctionError"), base64.b64decode(resp.get("LogResult", "")).decode(errors="replace")


def create_node_function(
    lam: Any,
    name: str,
    source: str,
    *,
    runtime: str,
    timeout: int = 10,
    memory: int = 256,
    env: dict[str, str] | None = None,
) -> str:
    resp = lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=LAMBDA_ROLE,
        Handler="index.handler",
        Code={"ZipFile": zip_sources({"index.js": source})},
        Timeout=timeout,
        MemorySize=memory,
        Environment={"Variables": env or {}},
    )
    wait_until(
        lambda: lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active",
        60,
        what=f"function {name} Active",
    )
    return str(resp["FunctionArn"])


@pytest.fixture(scope="module")
def lam(aws: Callable[..., Any]) -> Any:
    return aws("lambda")


@pytest.fixture(scope="module")
def embedded(emulator: emu.EmulatorHandle, harness_settings: HarnessSettings) -> HarnessSettings:
    if harness_settings.emulator != "embedded" or harness_settings.endpoint_override:
        pytest.skip("needs the embedded emulator (the runtime records live in its HARNESS_HOME)")
    return harness_settings


@pytest.fixture()
def function(lam: Any, aws: Callable[..., Any]) -> Iterator[Callable[..., str]]:
    """Factory: a Node.js function from BEHAVIOURS (or given source); it and its log group are deleted afterwards."""
    created: list[str] = []

    def make(prefix: str, *, runtime: str = "nodejs20.x", source: str = BEHAVIOURS, **kwargs: Any) -> str:
        name = unique_name(prefix)
        create_node_function(lam, name, source, runtime=runtime, **kwargs)
        created.append(name)
        return name

    yield make
    logs_client = aws("logs")
    for name in created:
        lam.delete_function(FunctionName=name)
        try:
            logs_client.delete_log_group(logGroupName=f"/aws/lambda/{name}")
        except logs_client.exceptions.ResourceNotFoundException:
            pass


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_plain_index_js_runs_on_its_runtime_and_keeps_cold_start_state(lam: Any, function: Any, runtime: str) -> None:
    name = function("node-ok", runtime=runtime, timeout=5, memory=256)

    first, error, logs = invoke(lam, name, {"value": 42})
    second, _, _ = invoke(lam, name, {"value": "again"})

    assert error is None, first
    assert first["node"].startswith(f"v{runtime[6:8]}."), f"{runtime} ran on node {first['node']}"
    assert first["echo"] == 42 and second["echo"] == "again"
    assert first["functionName"] == name and first["memoryLimitInMB"] == "256"
    assert 0 < first["remainingMs"] <= 5000
    assert second["coldStartPid"] == first["coldStartPid"] and second["invocations"] == 2
    assert f"START RequestId: {first['requestId']}" in logs
    assert f"\t{first['requestId']}\tINFO\tmarker=- action=echo" in logs
    assert "Max Memory Used:" in logs and "Init Duration:" in logs


def test_a_thrown_error_gives_function_error_with_the_lambda_error_document(lam: Any, function: Any) -> None:
    name = function("node-raise")

    payload, error, logs = invoke(lam, name, {"action": "raise", "marker": "m1"})

    assert error == "Unhandled"
    assert payload["errorType"] == "RangeError"
    assert payload["errorMessage"] == "expected failure: m1"
    assert payload["trace"][0] == "RangeError: expected failure: m1" and "index.js" in payload["trace"][1]
    assert "ERROR\tInvoke Error \t" in logs and '"errorType":"RangeError"' in logs


def test_the_callback_form_answers_with_its_result_or_its_error(lam: Any, function: Any) -> None:
    name = function("node-callback", source=CALLBACK)

    ok, ok_error, _ = invoke(lam, name, {"value": 7})
    failed, error, _ = invoke(lam, name, {"fail": True})

    assert ok_error is None and ok == {"via": "callback", "got": 7}
    assert error == "Unhandled" and failed["errorType"] == "TypeError" and failed["errorMessage"] == "callback error"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_process_exit_is_reported_as_exit_error_within_seconds_and_the_next_invoke_is_fresh(
    lam: Any, function: Any, runtime: str
) -> None:
    # GIVEN a function whose timeout is a minute, warm
    name = function("node-exit", runtime=runtime, timeout=60)
    warm, _, _ = invoke(lam, name, {})

    # WHEN an invocation calls process.exit(3) and never answers
    t0 = time.monotonic()
    payload, error, logs = invoke(lam, name, {"action": "exit", "code": 3, "afterMs": 100})
    latency = time.monotonic() - t0
    after, after_error, _ = invoke(lam, name, {"value": 1})

    # THEN the invocation fails at once (not after 60 s) and the next one runs in a new process
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in payload["errorMessage"]
    assert "Runtime.ExitError" in logs
    assert latency < 5, f"process.exit reported after {latency:.2f}s"
    assert after_error is None and after["echo"] == 1 and after["pid"] != warm["pid"]


def test_an_exception_thrown_outside_the_handler_is_an_exit_error(lam: Any, function: Any) -> None:
    name = function("node-uncaught", timeout=60)

    t0 = time.monotonic()
    payload, error, logs = invoke(lam, name, {"action": "throw-later"})
    latency = time.monotonic() - t0
    after, after_error, _ = invoke(lam, name, {"value": "next"})

    assert error == "Unhandled" and payload["errorType"] == "Runtime.ExitError"
    assert "exit status 1" in payload["errorMessage"]
    assert "thrown outside the handler" in logs
    assert latency < 5, f"uncaught exception reported after {latency:.2f}s"
    assert after_error is None and after["echo"] == "next"


def test_sigkilled_runtime_gives_exit_error_at_once(lam: Any, function: Any, embedded: HarnessSettings) -> None:
    name = function("node-kill", timeout=60)
    warm, _, _ = invoke(lam, name, {})
    result: dict[str, Any] = {}

    def call() -> None:
        result["value"] = invoke(lam, name, {"action": "sleep", "seconds": 40, "marker": "to-be-killed"})
        result["at"] = time.monotonic()

    caller = threading.Thread(target=call)
    caller.start()
    wait_until(lambda: _handler_started(warm["pid"]), 20, what="handler to start sleeping")
    killed_at = time.monotonic()
    os.kill(warm["pid"], signal.SIGKILL)
    caller.join(timeout=30)
    assert not caller.is_alive(), "the invocation of a killed runtime did not return"
    payload, error, _ = result["value"]
    latency = result["at"] - killed_at
    after, after_error, _ = invoke(lam, name, {})

    assert error == "Unhandled" and payload["errorType"] == "Runtime.ExitError"
    assert "signal: killed" in payload["errorMessage"]
    assert latency < 5, f"crash reported after {latency:.2f}s (the handler would sleep 40s)"
    assert after_error is None and after["pid"] != warm["pid"]


def _handler_started(pid: int) -> bool:
    """True once the runtime with this pid logged the 'to-be-killed' marker into its environment's log file."""
    try:
        targets = [Path(os.readlink(fd)) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        log = next(t for t in targets if t.name == "runtime.log")
        return "marker=to-be-killed" in log.read_text(errors="replace")
    except (OSError, StopIteration):
        return False


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_running_past_the_timeout_gives_sandbox_timedout_then_a_fresh_runtime(
    lam: Any, function: Any, runtime: str
) -> None:
    name = function("node-timeout", runtime=runtime, timeout=1)
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
    assert after_error is None and after["coldStartPid"] != before["coldStartPid"]


@pytest.mark.parametrize(
    ("action", "node_options"),
    [("buffers", ""), ("heap", ""), ("heap", "--max-old-space-size=48")],
    ids=["buffers", "heap", "v8-heap-limit"],
)
def test_allocating_beyond_memory_size_fails_that_invocation_with_out_of_memory(
    lam: Any, function: Any, harness_settings: HarnessSettings, action: str, node_options: str
) -> None:
    # buffers: off-heap memory, stopped by the memory ceiling; heap: JS objects, stopped by whichever comes first of
    # the ceiling and V8's own limit (--max-old-space-size from MemorySize); v8-heap-limit: V8 aborts at a limit the
    # function set itself, far below the ceiling. All three are Runtime.OutOfMemory.
    env = {"NODE_OPTIONS": node_options} if node_options else {}
    name = function("node-oom", memory=128 if not node_options else 512, timeout=30, env=env)

    within, within_error, _ = invoke(lam, name, {"action": "buffers", "mb": 16})
    payload, error, logs = invoke(lam, name, {"action": action, "mb": 512})
    after, after_error, _ = invoke(lam, name, {"value": "still here"})

    assert within_error is None and within == {"allocatedMb": 16}
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory", payload
    assert "Runtime.OutOfMemory" in logs
    assert after_error is None and after["echo"] == "still here"
    assert emu.health(harness_settings.endpoint) is not None


def test_logs_and_the_report_line_reach_cloudwatch_logs(lam: Any, function: Any, aws: Callable[..., Any]) -> None:
    name = function("node-logs", runtime="nodejs22.x")
    marker = unique_name("log-marker")
    logs_client = aws("logs")

    invoke(lam, name, {"marker": marker})

    def found() -> list[str]:
        try:
            events = logs_client.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs_client.exceptions.ResourceNotFoundException:
            return []
        messages = [e["message"] for e in events]
        return messages if any(m.startswith("REPORT RequestId:") for m in messages) else []

    messages = wait_until(found, 20, what=f"log events of {name}")
    assert any(f"marker={marker}" in m for m in messages)
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any("Max Memory Used:" in m for m in messages if m.startswith("REPORT"))


def test_environment_and_credentials_match_what_a_python_function_gets(
    lam: Any, function: Any, aws: Callable[..., Any]
) -> None:
    # GIVEN the same configuration on a Python and a Node.js function
    env = {"MY_SETTING": "from-config"}
    node = function("node-env", env=env, runtime="nodejs22.x")
    python = unique_name("py-env")
    create_function(lam, python, "import os\ndef handler(event, context):\n    return dict(os.environ)\n", env=env)
    try:
        py_env, _, _ = invoke(lam, python, {})
    finally:
        lam.delete_function(FunctionName=python)
    node_env, error, _ = invoke(lam, node, {"action": "env"})
    reached, reach_error, _ = invoke(lam, node, {"action": "fetch"})

    # THEN the Node.js function sees the same AWS_* variables (credentials are per function: same shape, own values)
    assert error is None and node_env["MY_SETTING"] == "from-config"
    aws_keys = {k for k in py_env if k.startswith("AWS_")}
    assert {k for k in node_env if k.startswith("AWS_")} == aws_keys
    assert aws_keys >= {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_LAMBDA_FUNCTION_NAME",
    }
    for key in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_TIMEOUT",
        "AWS_LAMBDA_FUNCTION_VERSION",
    ):
        assert node_env[key] == py_env[key], key
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert node_env[key] and len(node_env[key]) == len(py_env[key]), key
    assert node_env["AWS_LAMBDA_FUNCTION_NAME"] == node
    assert node_env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{node}"
    assert node_env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs22.x"
    assert node_env["_HANDLER"] == "index.handler" and node_env["TZ"] == ":UTC"
    # AWS_ENDPOINT_URL reaches the emulator from inside the function (what the AWS SDK v3 uses)
    assert reach_error is None and reached["status"] == 200 and reached["services"] > 0


# ---- MaximumConcurrency with a Node.js function (the mapping side is runtime-independent) ----------------------
RECORDER = """
const fs = require('fs');
const path = require('path');
exports.handler = async (event) => {
  const start = Date.now() / 1000;
  await new Promise((resolve) => setTimeout(resolve, Number(process.env.WORK_MS)));
  const end = Date.now() / 1000;
  for (const record of event.Records) {
    const id = JSON.parse(record.body).id;
    const line = JSON.stringify({ id, pid: process.pid, start, end });
    fs.writeFileSync(path.join(process.env.RESULTS_DIR, `${id}.json`), line);
  }
};
"""


def _shared_folder(settings: HarnessSettings, tmp_path: Path, name: str) -> tuple[Path, str]:
    """A folder this test and the function's runtimes both see, as (path here, path for the function): tmp_path, or
    in docker mode one under the container's state mount."""
    if settings.emulator == "docker" and not settings.endpoint_override:
        from harness import docker_emulator

        host = docker_emulator.state_dir(settings) / "test-results" / name
        host.mkdir(parents=True)
        return host, docker_emulator.container_path(settings, host)
    results = tmp_path / "results"
    results.mkdir()
    return results, str(results)


def test_maximum_concurrency_two_runs_two_node_environments_at_once_never_more(
    lam: Any, aws: Callable[..., Any], function: Any, tmp_path: Path, harness_settings: HarnessSettings
) -> None:
    # GIVEN a mapping with MaximumConcurrency 2 onto a Node.js function that takes a while per batch (it records
    # each message into a folder: runtimes run on this host)
    sqs = aws("sqs")
    run = unique_name("node-conc")
    url = sqs.create_queue(QueueName=run, Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    results, results_there = _shared_folder(harness_settings, tmp_path, run)
    name = function("node-conc", source=RECORDER, timeout=3, env={"RESULTS_DIR": results_there, "WORK_MS": "400"})
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=1, ScalingConfig={"MaximumConcurrency": 2}
    )["UUID"]
    try:
        wait_until(lambda: lam.get_event_source_mapping(UUID=mapping)["State"] == "Enabled", 30, what="mapping")

        # WHEN 12 messages arrive at once
        for i in range(0, 12, 10):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "MessageBody": json.dumps({"id": f"m-{n}"})} for n in range(i, min(i + 10, 12))
                ],
            )
        wait_until(lambda: len(list(results.glob("*.json"))) == 12, 60, what="12 messages processed")
    finally:
        lam.delete_event_source_mapping(UUID=mapping)
        sqs.delete_queue(QueueUrl=url)
    records = [json.loads(p.read_text()) for p in results.glob("*.json")]

    # THEN batches ran in two environments at the same time, and never in more than two
    assert sorted(r["id"] for r in records) == sorted(f"m-{i}" for i in range(12))
    edges = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak == 2, f"at most {peak} batches overlapped"
    assert len({r["pid"] for r in records}) == 2
