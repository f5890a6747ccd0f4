"""HTTP fault proxy on 127.0.0.1 in front of the emulator's S3: forwards requests, injects faults, records traffic."""

from __future__ import annotations

import hashlib
import http.client
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from harness.chaos.faults import FaultInjector, FaultRule, S3Request, s3_error_body

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
UPSTREAM_TIMEOUT_S = 60.0
CLIENT_GONE = 499  # recorded status when the client disconnected before the answer was written


@dataclass(frozen=True)
class Exchange:
    """One request seen by the proxy and what happened to it."""

    at: float  # epoch seconds when the request arrived
    method: str
    bucket: str
    key: str
    status: int  # what the client got (0 = upstream unreachable, answered 502; 499 = client gone before the answer)
    injected: str | None  # S3 error code injected, or None
    delayed_s: float
    invocation_id: str  # botocore's amz-sdk-invocation-id: constant across client retries of one call
    attempt: int  # botocore's attempt number (1 = first try)
    body_sha256: str | None  # PUT bodies only
    body_bytes: int


def parse_path(path: str) -> tuple[str, str]:
    """Path-style '/bucket/key?query' -> (bucket, key) with the key URL-decoded ('' for bucket operations)."""
    raw = urlsplit(path).path
    bucket, _, key = raw.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


def parse_attempt(header: str | None) -> int:
    """botocore sends 'amz-sdk-request: attempt=2; max=5'."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt" and value.isdigit():
            return int(value)
    return 1


class _QuietServer(ThreadingHTTPServer):
    """Counts broken client connections instead of printing their tracebacks."""

    proxy: FaultProxy

    def handle_error(self, request: object, client_address: object) -> None:
        with self.proxy._lock:
            self.proxy.client_errors += 1


class FaultProxy:
    """A threaded HTTP proxy: `with FaultProxy(upstream) as proxy:` then point clients at `proxy.endpoint`.

    Faults come from `proxy.injector` (swap rules at run time with `set_rules`/`clear`); every exchange is recorded
    in `proxy.exchanges` (bounded), and `on_exchange` callbacks see each one (used to trigger actions mid-batch).
    """

    def __init__(
        self, upstream: str, *, injector: FaultInjector | None = None, port: int = 0, max_records: int = 200_000
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"Expected an http://host:port URL for upstream but received {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.injector = injector or FaultInjector()
        self.exchanges: deque[Exchange] = deque(maxlen=max_records)
        self.on_exchange: list[Callable[[Exchange], None]] = []
        self.upstream_errors = 0
        self.client_errors = 0  # connections that broke while being read (e.g. a runtime SIGKILLed mid-request)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _QuietServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._server.proxy = self
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- faults and records ---------------------------------------------------------------------------------
    def set_rules(self, rules: list[FaultRule] | tuple[FaultRule, ...]) -> None:
        self.injector.set_rules(tuple(rules))

    def clear_faults(self) -> None:
        self.injector.clear()

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def injected_by_code(self) -> Counter[str]:
        return Counter(e.injected for e in self.snapshot() if e.injected)

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)
            callbacks = list(self.on_exchange)
        for callback in callbacks:
            try:
                callback(exchange)
            except Exception:  # a faulty observer must not break the proxied request
                pass

    # ---- request handling -----------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "ChaosFaultProxy"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence stderr logging
                return

            def _read_body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    chunks = []
                    while True:
                        size_line = self.rfile.readline().split(b";", 1)[0].strip()
                        size = int(size_line or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, *, head: bool) -> None:
                self.send_response(status)
                has_length = False
                for name, value in headers:
                    if name.lower() == "content-length":
                        if not head:
                            continue
                        has_length = True
                    self.send_header(name, value)
                if not head or not has_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head and body:
                    self.wfile.write(body)

            def _handle(self) -> None:
                arrived = time.time()
                method = self.command
                body = self._read_body()
                bucket, key = parse_path(self.path)
                call_id = self.headers.get("amz-sdk-invocation-id") or uuid.uuid4().hex
                decision = proxy.injector.decide(S3Request(method=method, bucket=bucket, key=key, call_id=call_id))
                if decision.delay_s > 0:
                    proxy._stopping.wait(decision.delay_s)  # the injected stall itself, interruptible on stop
                status = 0
                try:
                    if decision.error:
                        status = decision.status
                        request_id = uuid.uuid4().hex[:16].upper()
                        payload = s3_error_body(decision.error, f"/{bucket}/{key}", request_id)
                        self._send(
                            status,
                            [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)],
                            payload,
                            head=method == "HEAD",
                        )
                    else:
                        status = self._forward(method, body)
                except OSError:  # the client went away (e.g. its runtime was killed or timed out during a stall)
                    self.close_connection = True
                    status = status or CLIENT_GONE
                proxy._record(
                    Exchange(
                        at=arrived,
                        method=method,
                        bucket=bucket,
                        key=key,
                        status=status,
                        injected=decision.error,
                        delayed_s=decision.delay_s,
                        invocation_id=call_id,
                        attempt=parse_attempt(self.headers.get("amz-sdk-request")),
                        body_sha256=hashlib.sha256(body).hexdigest() if method == "PUT" and key else None,
                        body_bytes=len(body),
                    )
                )

            def _forward(self, method: str, body: bytes) -> int:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if body or method in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT_S)
                try:
                    conn.request(method, self.path, body=body or None, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                except OSError:
                    with proxy._lock:
                        proxy.upstream_errors += 1
                    self._send(502, [("Content-Type", "text/plain")], b"upstream unreachable", head=method == "HEAD")
                    return 0
                finally:
                    conn.close()
                out = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                if method == "HEAD" and response.getheader("Content-Length") is not None:
                    out.append(("Content-Length", response.getheader("Content-Length") or "0"))
                try:
                    self._send(response.status, out, payload, head=method == "HEAD")
                except OSError:
                    self.close_connection = True
                    return CLIENT_GONE
                return response.status

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _handle

        return Handler
