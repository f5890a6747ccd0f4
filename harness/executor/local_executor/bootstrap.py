"""Lambda runtime for one local execution environment: loads the handler, speaks LocalStack's executor protocol.

Runs under the function's interpreter (HARNESS_LAMBDA_PYTHON), so it uses the standard library only. Protocol:
POST <endpoint>/status/<id>/ready (or /error with an AWS error document) after init; answer POST /invoke with 202 at
once, run the handler, POST <endpoint>/invocations/<request-id>/logs, then /response or /error.
"""

from __future__ import annotations

import codecs
import http.server
import importlib
import json
import logging
import math
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PARENT_POLL_S = 0.25


@dataclass(frozen=True)
class RuntimeConfig:
    """What the executor hands this runtime through its environment (the only place it is read)."""

    endpoint: str
    runtime_id: str
    handler: str
    task_root: str
    listen_fd: int
    parent_pid: int
    function_name: str
    function_version: str
    memory_mb: str
    timeout_s: float
    log_group: str
    log_stream: str
    spawned_at: float  # epoch seconds at which the executor started this process (for Init Duration)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RuntimeConfig:
        env = dict(os.environ if env is None else env)
        return cls(
            endpoint=env["LOCALSTACK_RUNTIME_ENDPOINT"].rstrip("/"),
            runtime_id=env["LOCALSTACK_RUNTIME_ID"],
            handler=env.get("_HANDLER", ""),
            task_root=env.get("LAMBDA_TASK_ROOT") or os.getcwd(),
            listen_fd=int(env["HARNESS_RUNTIME_LISTEN_FD"]),
            parent_pid=int(env.get("HARNESS_PARENT_PID") or os.getppid()),
            function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            function_version=env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            memory_mb=str(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            timeout_s=float(env.get("AWS_LAMBDA_FUNCTION_TIMEOUT") or 3),
            log_group=env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream=env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            spawned_at=float(env.get("HARNESS_SPAWNED_AT") or time.time()),
        )


# ---- the handler's view ---------------------------------------------------------------------------------------
class LambdaContext:
    """The `context` argument, with the attributes and method AWS's Python runtime provides."""

    def __init__(self, cfg: RuntimeConfig, request_id: str, invoked_arn: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = cfg.function_name
        self.function_version = cfg.function_version
        self.memory_limit_in_mb = cfg.memory_mb  # a string, as on AWS
        self.log_group_name = cfg.log_group
        self.log_stream_name = cfg.log_stream
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(aws_request_id={self.aws_request_id!r}, function_name={self.function_name!r})"


class OutputCapture:
    """Captures everything written to fd 1 and 2 (print, logging, C extensions, child processes) through a pipe.

    A reader thread copies the bytes to the environment's log file (the original fd 1) and to the sink of the
    current invocation. `sync()` writes a marker into the pipe and waits until the reader has passed it, so all
    output written before the call is in the sink when the invocation's logs are posted.
    """

    MARK = b"\x00HARNESS-SYNC-"
    SYNC_TIMEOUT_S = 2.0

    def __init__(self, sink: LogSink) -> None:
        self.sink = sink
        self._log_fd = os.dup(1)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._read_fd = read_fd
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._seen = 0
        self._sent = 0
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, name="output-capture", daemon=True).start()

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        try:
            os.write(self._log_fd, data)
        except OSError:
            pass
        self.sink.add(self._decoder.decode(data))

    def _pump(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while True:
                i = buf.find(self.MARK)
                if i < 0:
                    # keep what could be the start of a marker split across two reads
                    keep = len(buf)
                    for k in range(1, len(self.MARK)):
                        if buf.endswith(self.MARK[:k]):
                            keep = len(buf) - k
                    self._emit(buf[:keep])
                    buf = buf[keep:]
                    break
                j = buf.find(b"\x00", i + len(self.MARK))
                if j < 0:
                    self._emit(buf[:i])
                    buf = buf[i:]
                    break
                self._emit(buf[:i])
                seq = int(buf[i + len(self.MARK) : j] or 0)
                buf = buf[j + 1 :]
                with self._cond:
                    self._seen = max(self._seen, seq)
                    self._cond.notify_all()

    def sync(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        with self._cond:
            self._sent += 1
            seq = self._sent
        os.write(1, self.MARK + str(seq).encode() + b"\x00")
        with self._cond:
            self._cond.wait_for(lambda: self._seen >= seq, timeout=self.SYNC_TIMEOUT_S)


class LogSink:
    """Collects what the function writes during one invocation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []

    def add(self, text: str) -> None:
        with self._lock:
            self._parts.append(text)

    def take(self) -> str:
        with self._lock:
            text = "".join(self._parts)
            self._parts = []
        return text


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


_REQUEST_ID = _RequestIdFilter()


def _install_logging() -> None:
    """Root-logger handler in the format of AWS's Python runtime: [LEVEL]\\ttimestamp\\trequest-id\\tmessage."""

    class _Stdout(logging.StreamHandler):
        def emit(self, record: logging.LogRecord) -> None:
            self.stream = sys.stdout  # resolve at emit time: our capturing stream
            super().emit(record)

    handler = _Stdout(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_REQUEST_ID)
    handler.terminator = ""
    root = logging.getLogger()
    root.addHandler(handler)


# ---- error documents ------------------------------------------------------------------------------------------
def error_document(error_type: str, message: str, stack: list[str] | None = None, request_id: str = "") -> dict:
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack or []}


def _stack_of(exc: BaseException, skip: int = 0) -> list[str]:
    frames = traceback.extract_tb(exc.__traceback__)[skip:]
    return traceback.format_list(frames)


class InitFault(Exception):
    def __init__(self, error_type: str, message: str, stack: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack or []


def load_handler(handler: str, task_root: str) -> Callable[[Any, Any], Any]:
    """Import `module.function` (module may be a dotted path or use '/') the way AWS's Python runtime does."""
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as exc:
        raise InitFault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': {exc}") from exc
    modname = modname.replace("/", ".")
    if modname.split(".")[0] in sys.builtin_module_names:
        raise InitFault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {modname} as a handler module",
        )
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:
        raise InitFault("Runtime.ImportModuleError", f"Unable to import module '{modname}': {exc}") from exc
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise InitFault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {exc}", trace) from exc
    except Exception as exc:  # an exception raised by the module's top-level code
        raise InitFault(type(exc).__name__, str(exc), _stack_of(exc)) from exc
    try:
        func = getattr(module, fname)
    except AttributeError as exc:
        raise InitFault("Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'") from exc
    if not callable(func):
        raise InitFault("Runtime.HandlerNotFound", f"Handler '{fname}' on module '{modname}' is not callable")
    return func


def max_memory_used_mb() -> int:
    """Peak RSS of this process (VmHWM; ru_maxrss would report the parent's peak carried across exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return math.ceil(int(line.split()[1]) / 1024)
    except (OSError, ValueError, IndexError):
        pass
    return 0


# ---- talking to LocalStack ------------------------------------------------------------------------------------
class Callback:
    """POSTs to the executor endpoint inside LocalStack (no proxies: loopback only)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> None:
        req = urllib.request.Request(
            self.endpoint + path, data=body, method="POST", headers={"Content-Type": content_type}
        )
        with self._opener.open(req, timeout=30) as resp:
            resp.read()


class _InvokeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, inbox: queue.Queue[dict]) -> None:
        self.inbox = inbox
        super().__init__(sock.getsockname()[:2], _InvokeHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock


class _InvokeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/invoke":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            invocation = json.loads(body or b"{}")
        except ValueError:
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.inbox.put(invocation)  # type: ignore[attr-defined]
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server API)
        pass


def _watch_parent(parent_pid: int) -> None:
    """Die with LocalStack: when our parent goes away, kill our whole process group (us and our children)."""
    while True:
        if os.getppid() != parent_pid:
            try:
                os.killpg(os.getpgid(0), signal.SIGKILL)
            finally:
                os._exit(137)
        time.sleep(PARENT_POLL_S)


# ---- the loop -------------------------------------------------------------------------------------------------
class Runtime:
    def __init__(self, cfg: RuntimeConfig) -> None:
        self.cfg = cfg
        self.callback = Callback(cfg.endpoint)
        self.sink = LogSink()
        self.inbox: queue.Queue[dict] = queue.Queue()
        self.handler: Callable[[Any, Any], Any] | None = None
        self.init_ms: float | None = None
        self.capture: OutputCapture | None = None

    def init(self) -> bool:
        self.capture = OutputCapture(self.sink)
        _install_logging()
        try:
            self.handler = load_handler(self.cfg.handler, self.cfg.task_root)
        except InitFault as fault:
            doc = error_document(fault.error_type, fault.message, fault.stack)
            sys.stdout.write(f"[ERROR] {fault.error_type}: {fault.message}\n")
            self.capture.sync()
            self.callback.post(f"/status/{self.cfg.runtime_id}/error", json.dumps(doc).encode())
            return False
        self.init_ms = max(0.0, time.time() - self.cfg.spawned_at) * 1000  # interpreter start + imports, as on AWS
        # init output stays in the sink: it belongs to the first invocation's log, as on AWS
        sock = socket.socket(fileno=self.cfg.listen_fd)
        server = _InvokeServer(sock, self.inbox)
        threading.Thread(target=server.serve_forever, name="invoke-server", daemon=True).start()
        self.callback.post(f"/status/{self.cfg.runtime_id}/ready", b"{}")
        return True

    def serve(self) -> None:
        while True:
            self.run_one(self.inbox.get())

    def run_one(self, invocation: dict) -> None:
        request_id = str(invocation.get("invoke-id") or "")
        started_ms = int(time.time() * 1000)
        deadline_ms = started_ms + int(self.cfg.timeout_s * 1000)
        if invocation.get("trace-id"):
            os.environ["_X_AMZN_TRACE_ID"] = str(invocation["trace-id"])
        _REQUEST_ID.request_id = request_id
        context = LambdaContext(self.cfg, request_id, str(invocation.get("invoked-function-arn") or ""), deadline_ms)
        sys.stdout.write(f"START RequestId: {request_id} Version: {self.cfg.function_version}\n")
        t0 = time.perf_counter()
        is_error = False
        try:
            raw = invocation.get("payload")
            event = json.loads(raw) if raw not in (None, "") else {}
            assert self.handler is not None
            result = self.handler(event, context)
            try:
                body = json.dumps(result).encode()
            except (TypeError, ValueError) as exc:
                is_error = True
                body = json.dumps(
                    error_document("Runtime.MarshalError", f"Unable to marshal response: {exc}", request_id=request_id)
                ).encode()
        except Exception as exc:  # the function's error: report it as AWS's runtime does
            is_error = True
            doc = error_document(type(exc).__name__, str(exc), _stack_of(exc, skip=1), request_id)
            sys.stdout.write(
                f"[ERROR] {doc['errorType']}: {doc['errorMessage']}\nTraceback (most recent call last):\n"
                + "".join(doc["stackTrace"])
            )
            body = json.dumps(doc).encode()
        duration_ms = (time.perf_counter() - t0) * 1000
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {self.cfg.memory_mb} MB\t"
            f"Max Memory Used: {max_memory_used_mb()} MB"
        )
        if self.init_ms is not None:
            report += f"\tInit Duration: {self.init_ms:.2f} ms"
            self.init_ms = None
        if is_error:
            report += "\tStatus: error"
        sys.stdout.write(f"END RequestId: {request_id}\n{report}\n")
        assert self.capture is not None
        self.capture.sync()
        logs = self.sink.take()
        _REQUEST_ID.request_id = ""
        base = f"/invocations/{request_id}"
        self.callback.post(base + "/logs", json.dumps({"logs": logs}).encode())
        self.callback.post(base + ("/error" if is_error else "/response"), body)


def main() -> int:
    cfg = RuntimeConfig.from_env()
    threading.Thread(target=_watch_parent, args=(cfg.parent_pid,), name="parent-watchdog", daemon=True).start()
    # the bootstrap's own folder must not shadow the function's modules
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    runtime = Runtime(cfg)
    try:
        if not runtime.init():
            return 1
        runtime.serve()
    except Exception:  # noqa: BLE001 (last resort: leave the reason in the environment's log)
        traceback.print_exc()
        if runtime.capture is not None:
            runtime.capture.sync()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
