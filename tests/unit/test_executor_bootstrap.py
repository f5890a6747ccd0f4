"""The executor's runtime script against a fake LocalStack endpoint: ready/error, 202 on invoke, logs then result."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.waiting import wait_until
from harness.executor.local_executor import bootstrap

BOOTSTRAP = Path(bootstrap.__file__)
RUNTIME_ID = "0123456789abcdef"


class FakeLocalStack:
    """Records the POSTs a runtime makes to /_localstack_lambda/<id>/..."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes]] = []
        calls = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                calls.append((self.path, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/_localstack_lambda/{RUNTIME_ID}"

    def paths(self) -> list[str]:
        return [p for p, _ in self.posts]

    def body(self, suffix: str) -> bytes:
        return next(b for p, b in self.posts if p.endswith(suffix))


@pytest.fixture()
def fake() -> Iterator[FakeLocalStack]:
    f = FakeLocalStack()
    yield f
    f.server.shutdown()


def start_runtime(
    fake: FakeLocalStack, code: Path, source: str, *, parent_pid: int | None = None, handler: str = "app.handler"
) -> tuple[subprocess.Popen, int]:
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(textwrap.dedent(source))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LOCALSTACK_RUNTIME_ENDPOINT": fake.endpoint,
        "LOCALSTACK_RUNTIME_ID": RUNTIME_ID,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(code),
        "HARNESS_RUNTIME_LISTEN_FD": str(sock.fileno()),
        "HARNESS_PARENT_PID": str(parent_pid or os.getpid()),
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "7",
    }
    proc = subprocess.Popen(
        [sys.executable, str(BOOTSTRAP)],
        cwd=code,
        env=env,
        pass_fds=(sock.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sock.close()
    return proc, port


def post_invoke(port: int, request_id: str, event: object) -> int:
    body = json.dumps({"invoke-id": request_id, "invoked-function-arn": "arn:fn", "payload": json.dumps(event)})
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invoke", data=body.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status


HANDLER = """
import os
CALLS = []
def handler(event, context):
    CALLS.append(event)
    print("seen", event, context.function_name, context.memory_limit_in_mb)
    os.write(2, b"written to fd 2 below Python\\n")  # as a C extension or a child process would
    if event.get("fail"):
        raise KeyError("missing")
    return {"calls": len(CALLS), "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 7000}
"""


def test_runtime_reports_ready_answers_202_and_posts_logs_before_the_result(
    fake: FakeLocalStack, tmp_path: Path
) -> None:
    proc, port = start_runtime(fake, tmp_path / "code", HANDLER)
    try:
        wait_until(lambda: any(p.endswith(f"/status/{RUNTIME_ID}/ready") for p in fake.paths()), 20, what="ready")

        assert post_invoke(port, "req-1", {"n": 1}) == 202
        wait_until(lambda: any(p.endswith("/invocations/req-1/response") for p in fake.paths()), 10, what="response")
        assert post_invoke(port, "req-2", {"fail": True}) == 202
        wait_until(lambda: any(p.endswith("/invocations/req-2/error") for p in fake.paths()), 10, what="error")

        paths = fake.paths()
        assert paths.index(f"/_localstack_lambda/{RUNTIME_ID}/invocations/req-1/logs") < paths.index(
            f"/_localstack_lambda/{RUNTIME_ID}/invocations/req-1/response"
        )
        assert json.loads(fake.body("/req-1/response")) == {"calls": 1, "remaining_ok": True}
        logs = json.loads(fake.body("/req-1/logs"))["logs"]
        assert "START RequestId: req-1" in logs and "seen {'n': 1} fn 256" in logs
        assert "REPORT RequestId: req-1" in logs and "Max Memory Used:" in logs and "Init Duration:" in logs
        assert "written to fd 2 below Python" in logs
        error = json.loads(fake.body("/req-2/error"))
        assert error["errorType"] == "KeyError" and error["errorMessage"] == "'missing'"
        assert error["requestId"] == "req-2" and error["stackTrace"]
        assert "Init Duration" not in json.loads(fake.body("/req-2/logs"))["logs"]  # only on the cold start
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    ("source", "handler", "error_type", "message"),
    [
        (
            "import no_such_module_here\n",
            "app.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'no_such_module_here'",
        ),
        (
            "def other(e, c):\n    return 1\n",
            "app.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
        ),
        (
            "def handler(e, c):\n    return 1\n",
            "apphandler",
            "Runtime.MalformedHandlerName",
            "Bad handler 'apphandler'",
        ),
        (
            "def handler(e, c)\n    return 1\n",
            "app.handler",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'app'",
        ),
        ("raise RuntimeError('at import')\n", "app.handler", "RuntimeError", "at import"),
    ],
    ids=["import-error", "handler-missing", "malformed-handler", "syntax-error", "raises-at-import"],
)
def test_init_failures_are_reported_as_status_error_with_the_aws_error_type(
    fake: FakeLocalStack, tmp_path: Path, source: str, handler: str, error_type: str, message: str
) -> None:
    proc, _ = start_runtime(fake, tmp_path / "code", source, handler=handler)
    try:
        returncode = proc.wait(timeout=20)
    finally:
        proc.kill()

    assert returncode == 1
    doc = json.loads(fake.body(f"/status/{RUNTIME_ID}/error"))
    assert doc["errorType"] == error_type
    assert doc["errorMessage"].startswith(message)


def test_runtime_kills_itself_when_its_parent_is_gone(fake: FakeLocalStack, tmp_path: Path) -> None:
    # GIVEN a runtime told its parent is a pid that is not its parent (as after LocalStack died and it was reparented)
    proc, _ = start_runtime(fake, tmp_path / "code", HANDLER, parent_pid=os.getpid() + 1_000_000)

    # THEN its watchdog kills its process group
    returncode = proc.wait(timeout=10)
    assert returncode != 0
