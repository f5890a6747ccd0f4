"""The executor's Node.js runtime script against a fake LocalStack endpoint, and how a node binary is chosen."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import stat
import subprocess
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.waiting import wait_until
from harness.executor.local_executor import languages
from harness.executor.local_executor.languages import RuntimeUnavailable

NODE = shutil.which("node")
RUNTIME_ID = "fedcba9876543210"
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed (make node-runtimes)")


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

    def has(self, suffix: str) -> bool:
        return any(p.endswith(suffix) for p in self.paths())

    def body(self, suffix: str) -> bytes:
        return next(b for p, b in self.posts if p.endswith(suffix))


@pytest.fixture()
def fake() -> Iterator[FakeLocalStack]:
    f = FakeLocalStack()
    yield f
    f.server.shutdown()


class NodeRuntime:
    """A node_bootstrap.js process serving one function folder, its output going to a log file (as the executor
    does it)."""

    def __init__(
        self,
        fake: FakeLocalStack,
        code: Path,
        files: dict[str, str],
        *,
        handler: str = "index.handler",
        parent_pid: int | None = None,
        memory_mb: int = 256,
    ) -> None:
        assert NODE is not None
        code.mkdir(exist_ok=True)
        for name, source in files.items():
            (code / name).parent.mkdir(parents=True, exist_ok=True)
            (code / name).write_text(textwrap.dedent(source))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        self.port = sock.getsockname()[1]
        self.log = code.parent / "runtime.log"
        launch = languages.launch_for(
            "nodejs20.x",
            memory_mb,
            python=Path("/nonexistent"),
            node_overrides={},
            node_root=code.parent / "no-node-root",
        )
        env = {
            **launch.env,
            "LOCALSTACK_RUNTIME_ENDPOINT": fake.endpoint,
            "LOCALSTACK_RUNTIME_ID": RUNTIME_ID,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(code),
            "HARNESS_RUNTIME_LISTEN_FD": str(sock.fileno()),
            "HARNESS_PARENT_PID": str(parent_pid or os.getpid()),
            "HARNESS_RUNTIME_LOG": str(self.log),
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": "7",
            "MY_SETTING": "from-the-function-config",
        }
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                list(launch.argv),
                cwd=code,
                env=env,
                pass_fds=(sock.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        sock.close()

    def invoke(self, request_id: str, event: object) -> int:
        body = json.dumps({"invoke-id": request_id, "invoked-function-arn": "arn:fn", "payload": json.dumps(event)})
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/invoke", data=body.encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture()
def runtimes() -> Iterator[list[NodeRuntime]]:
    started: list[NodeRuntime] = []
    yield started
    for runtime in started:
        runtime.close()


def start(runtimes: list[NodeRuntime], *args: object, **kwargs: object) -> NodeRuntime:
    runtime = NodeRuntime(*args, **kwargs)  # type: ignore[arg-type]
    runtimes.append(runtime)
    return runtime


COMMONJS = """
const { execSync } = require('child_process');
let calls = 0;
console.log('init output belongs to the first invocation');
exports.handler = async (event, context) => {
  calls += 1;
  console.log('seen', JSON.stringify(event), context.functionName, context.memoryLimitInMB);
  execSync('echo written by a child process', { stdio: 'inherit' });
  if (event.fail) throw new TypeError('bad input: ' + event.fail);
  return { calls, remainingOk: context.getRemainingTimeInMillis() > 0 && context.getRemainingTimeInMillis() <= 7000,
           setting: process.env.MY_SETTING, execEnv: process.env.AWS_EXECUTION_ENV };
};
"""


@needs_node
def test_runtime_reports_ready_answers_202_and_posts_logs_before_the_result(
    fake: FakeLocalStack, tmp_path: Path, runtimes: list[NodeRuntime]
) -> None:
    rt = start(runtimes, fake, tmp_path / "code", {"index.js": COMMONJS})
    wait_until(lambda: fake.has(f"/status/{RUNTIME_ID}/ready"), 20, what="ready")

    assert rt.invoke("req-1", {"n": 1}) == 202
    wait_until(lambda: fake.has("/invocations/req-1/response"), 10, what="response")
    assert rt.invoke("req-2", {"fail": "x"}) == 202
    wait_until(lambda: fake.has("/invocations/req-2/error"), 10, what="error")

    paths = fake.paths()
    assert paths.index(f"/_localstack_lambda/{RUNTIME_ID}/invocations/req-1/logs") < paths.index(
        f"/_localstack_lambda/{RUNTIME_ID}/invocations/req-1/response"
    )
    assert json.loads(fake.body("/req-1/response")) == {
        "calls": 1,
        "remainingOk": True,
        "setting": "from-the-function-config",
        "execEnv": "AWS_Lambda_nodejs20.x",
    }
    logs = json.loads(fake.body("/req-1/logs"))["logs"]
    assert "init output belongs to the first invocation" in logs
    assert "START RequestId: req-1" in logs
    assert '\treq-1\tINFO\tseen {"n":1} fn 256' in logs  # AWS's console format: time, request id, level, message
    assert "written by a child process" in logs
    assert "REPORT RequestId: req-1" in logs and "Max Memory Used:" in logs and "Init Duration:" in logs
    error = json.loads(fake.body("/req-2/error"))
    assert error["errorType"] == "TypeError" and error["errorMessage"] == "bad input: x"
    assert error["trace"][0] == "TypeError: bad input: x" and "index.js" in error["trace"][1]
    second = json.loads(fake.body("/req-2/logs"))["logs"]
    assert "Init Duration" not in second and "init output" not in second and "Status: error" in second
    assert '\treq-2\tERROR\tInvoke Error \t{"errorType":"TypeError"' in second


@needs_node
@pytest.mark.parametrize(
    ("files", "handler", "event", "expected"),
    [
        (
            {
                "index.js": "exports.handler = (event, context, callback) => {\n"
                "  setTimeout(() => callback(null, { via: 'callback', got: event.v }), 10);\n};\n"
            },
            "index.handler",
            {"v": 1},
            {"via": "callback", "got": 1},
        ),
        (
            {"index.js": "exports.handler = (event) => ({ via: 'sync', got: event.v });\n"},
            "index.handler",
            {"v": 2},
            {"via": "sync", "got": 2},
        ),
        (
            {
                "index.mjs": "const started = await Promise.resolve('top-level await');\n"
                "export const handler = async (event) => ({ via: 'esm', started, got: event.v });\n"
            },
            "index.handler",
            {"v": 3},
            {"via": "esm", "started": "top-level await", "got": 3},
        ),
        (
            {"package.json": '{"type": "module"}', "src/app.js": "export const run = async () => 'esm .js';\n"},
            "src/app.run",
            {},
            "esm .js",
        ),
        (
            {"lib/fns.js": "module.exports = { nested: { handler: async () => null } };\n"},
            "lib/fns.nested.handler",
            {},
            None,
        ),
    ],
    ids=["callback", "synchronous", "esm-mjs", "esm-package-type", "nested-handler-path"],
)
def test_handler_forms(
    fake: FakeLocalStack,
    tmp_path: Path,
    runtimes: list[NodeRuntime],
    files: dict[str, str],
    handler: str,
    event: dict,
    expected: object,
) -> None:
    rt = start(runtimes, fake, tmp_path / "code", files, handler=handler)
    wait_until(lambda: fake.has(f"/status/{RUNTIME_ID}/ready"), 20, what="ready")

    rt.invoke("req-1", event)

    wait_until(lambda: fake.has("/invocations/req-1/response"), 10, what="response")
    assert json.loads(fake.body("/req-1/response")) == expected


@needs_node
def test_callback_error_and_thrown_non_errors_give_error_documents(
    fake: FakeLocalStack, tmp_path: Path, runtimes: list[NodeRuntime]
) -> None:
    source = """
    exports.handler = (event, context, callback) => {
      if (event.kind === 'callback') return callback(new RangeError('too far'));
      throw 'a plain string';
    };
    """
    rt = start(runtimes, fake, tmp_path / "code", {"index.js": source})
    wait_until(lambda: fake.has(f"/status/{RUNTIME_ID}/ready"), 20, what="ready")

    rt.invoke("req-1", {"kind": "callback"})
    wait_until(lambda: fake.has("/invocations/req-1/error"), 10, what="error 1")
    rt.invoke("req-2", {"kind": "string"})
    wait_until(lambda: fake.has("/invocations/req-2/error"), 10, what="error 2")

    first = json.loads(fake.body("/req-1/error"))
    assert (first["errorType"], first["errorMessage"]) == ("RangeError", "too far") and first["trace"]
    assert json.loads(fake.body("/req-2/error")) == {
        "errorType": "string",
        "errorMessage": "a plain string",
        "trace": [],
    }


@needs_node
@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"other.js": "exports.handler = async () => 1;\n"},
            "index.handler",
            "Runtime.ImportModuleError",
            "Error: Cannot find module 'index'",
        ),
        (
            {"index.js": "require('no-such-package-here');\n"},
            "index.handler",
            "Runtime.ImportModuleError",
            "Error: Cannot find module 'no-such-package-here'",
        ),
        (
            {"index.js": "exports.other = async () => 1;\n"},
            "index.handler",
            "Runtime.HandlerNotFound",
            "index.handler is undefined or not exported",
        ),
        (
            {"index.js": "exports.handler = async () => 1;\n"},
            "indexhandler",
            "Runtime.MalformedHandlerName",
            "Bad handler indexhandler",
        ),
        (
            {"index.js": "exports.handler = async () => {\n"},
            "index.handler",
            "Runtime.UserCodeSyntaxError",
            "SyntaxError: ",
        ),
        ({"index.js": "throw new RangeError('at load');\n"}, "index.handler", "RangeError", "at load"),
    ],
    ids=[
        "module-missing",
        "dependency-missing",
        "handler-missing",
        "malformed-handler",
        "syntax-error",
        "throws-at-load",
    ],
)
def test_init_failures_are_reported_as_status_error_with_the_aws_error_type(
    fake: FakeLocalStack,
    tmp_path: Path,
    runtimes: list[NodeRuntime],
    files: dict[str, str],
    handler: str,
    error_type: str,
    message: str,
) -> None:
    rt = start(runtimes, fake, tmp_path / "code", files, handler=handler)

    returncode = rt.proc.wait(timeout=20)

    assert returncode == 1
    doc = json.loads(fake.body(f"/status/{RUNTIME_ID}/error"))
    assert doc["errorType"] == error_type
    assert doc["errorMessage"].startswith(message)


@needs_node
def test_process_exit_inside_the_handler_ends_the_runtime_with_its_code(
    fake: FakeLocalStack, tmp_path: Path, runtimes: list[NodeRuntime]
) -> None:
    # the executor turns the exit into Runtime.ExitError; here: the process really ends, with the handler's code
    source = "exports.handler = async () => { console.log('about to exit'); process.exit(3); };\n"
    rt = start(runtimes, fake, tmp_path / "code", {"index.js": source})
    wait_until(lambda: fake.has(f"/status/{RUNTIME_ID}/ready"), 20, what="ready")

    rt.invoke("req-1", {})

    assert rt.proc.wait(timeout=10) == 3
    assert not fake.has("/invocations/req-1/response") and "about to exit" in rt.log.read_text()


@needs_node
def test_an_exception_thrown_outside_the_handler_s_promise_ends_the_runtime(
    fake: FakeLocalStack, tmp_path: Path, runtimes: list[NodeRuntime]
) -> None:
    source = (
        "exports.handler = async () => { setTimeout(() => { throw new Error('late'); }, 5); "
        "return new Promise(() => {}); };\n"
    )
    rt = start(runtimes, fake, tmp_path / "code", {"index.js": source})
    wait_until(lambda: fake.has(f"/status/{RUNTIME_ID}/ready"), 20, what="ready")

    rt.invoke("req-1", {})

    assert rt.proc.wait(timeout=10) != 0
    assert "Error: late" in rt.log.read_text()


@needs_node
def test_runtime_kills_itself_when_its_parent_is_gone(
    fake: FakeLocalStack, tmp_path: Path, runtimes: list[NodeRuntime]
) -> None:
    # GIVEN a runtime told its parent is a pid that is not its parent (as after LocalStack died and it was reparented)
    rt = start(runtimes, fake, tmp_path / "code", {"index.js": COMMONJS}, parent_pid=os.getpid() + 1_000_000)

    # THEN its watchdog kills its process group
    assert rt.proc.wait(timeout=10) != 0


# ---- choosing the node binary ----------------------------------------------------------------------------------
def fake_node(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho v{version}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_node_make_installed_wins_over_path_and_an_override_over_both(tmp_path: Path) -> None:
    on_path = fake_node(tmp_path / "bin" / "node", "20.1.0")
    installed = fake_node(tmp_path / "root" / "22" / "node_modules" / ".bin" / "node", "22.3.0")
    override = fake_node(tmp_path / "custom" / "node", "22.9.9")

    assert languages.find_node(22, {}, tmp_path / "root", str(on_path.parent)) == (
        languages.NodeBinary(installed, "22.3.0"),
        True,
    )
    assert languages.find_node(22, {22: override}, tmp_path / "root", str(on_path.parent))[0].path == override
    assert languages.find_node(20, {}, tmp_path / "root", str(on_path.parent)) == (
        languages.NodeBinary(on_path, "20.1.0"),
        True,
    )


def test_without_the_named_major_the_runtime_runs_on_another_node_and_says_so(tmp_path: Path) -> None:
    on_path = fake_node(tmp_path / "bin" / "node", "20.1.0")

    binary, exact = languages.find_node(22, {}, tmp_path / "root", str(on_path.parent))

    assert binary.path == on_path and exact is False


def test_missing_node_and_a_missing_override_are_coded_errors(tmp_path: Path) -> None:
    with pytest.raises(RuntimeUnavailable, match="NODE_NOT_FOUND: Expected a node binary for nodejs22.x"):
        languages.find_node(22, {}, tmp_path / "root", str(tmp_path / "empty"))
    with pytest.raises(RuntimeUnavailable, match="Expected a node binary at HARNESS_LAMBDA_NODE22 but received"):
        languages.find_node(22, {22: tmp_path / "nope"}, tmp_path / "root", str(tmp_path / "empty"))


def test_supported_runtimes_and_heap_flags() -> None:
    for runtime in ("python3.13", "nodejs20.x", "nodejs22.x"):
        languages.check_supported(runtime)
    with pytest.raises(RuntimeUnavailable, match="UNSUPPORTED_RUNTIME: .* but received 'java21'"):
        languages.check_supported("java21")
    assert languages.node_major("nodejs22.x") == 22 and languages.node_major("python3.13") is None
    # a tenth of MemorySize for the young generation (half of it per semi-space), the rest for the old one
    assert languages.node_heap_flags(1024) == ("--max-semi-space-size=51", "--max-old-space-size=922")
    assert languages.node_heap_flags(128) == ("--max-semi-space-size=6", "--max-old-space-size=116")
