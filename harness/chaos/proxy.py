"""HTTP fault proxy on 127.0.0.1 in front of the emulator's S3: forwards requests, injects faults, records traffic.

It can also hold each object GET/PUT for the time S3 in a region would take (LatencyModel: first-byte latency plus
bytes / bandwidth), so that a local pipeline waits for S3 as it does in AWS (`make bench-pipeline`).
"""

from __future__ import annotations

import hashlib
import http.client
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from common.errors import CodedError, expected
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


# ---- S3 latency model (issue 16) ------------------------------------------------------------------------------
# Defaults for S3 in the same region as the function. What is published, and where:
# - AWS whitepaper "Best Practices Design Patterns: Optimizing Amazon S3 Performance", section "Timeouts and Retries
#   for Latency-Sensitive Applications" (docs.aws.amazon.com/whitepapers/latest/s3-optimizing-performance-best-
#   practices/timeouts-and-retries-for-latency-sensitive-applications.html): for small requests (under 512 KB)
#   "median latencies are often in the range of tens of milliseconds" (it then advises retrying a GET or PUT after 2 s).
#   The first-byte defaults below (30 ms GET, 50 ms PUT) are points inside that "tens of milliseconds" range; the split
#   between GET and PUT (a PUT is acknowledged after the write is durable) is OUR ASSUMPTION, not a published figure.
#   The often-quoted "100-200 ms first-byte latency" of the S3 performance guide could not be found in the docs
#   available to this project, so it is not used as a default (pass --s3-get-first-byte-ms 150 to model it).
# - Bandwidth: AWS publishes no per-connection S3 throughput for Lambda. The EC2 user guide ("Amazon EC2 instance
#   network bandwidth") caps a single flow at 5 Gbit/s outside a placement group, an upper bound, not a Lambda
#   figure. The defaults (90 MB/s GET, 60 MB/s PUT per connection) are OUR ASSUMPTION, in line with commonly reported
#   single-stream S3 throughput; for thumbnails (a few hundred KB) the first-byte term dominates anyway.
DEFAULT_GET_FIRST_BYTE_MS = 30.0
DEFAULT_PUT_FIRST_BYTE_MS = 50.0
DEFAULT_GET_MB_PER_S = 90.0
DEFAULT_PUT_MB_PER_S = 60.0
LATENCY_SOURCES = (
    "first byte: AWS whitepaper 'Optimizing Amazon S3 Performance', 'Timeouts and Retries for Latency-Sensitive "
    "Applications': small requests (< 512 KB) have median latencies 'in the range of tens of milliseconds'; the "
    "GET/PUT values inside that range are an assumption",
    "bandwidth: not published for Lambda (EC2's single-flow cap of 5 Gbit/s is only an upper bound): an assumption",
)
MB = 1_000_000  # bandwidth in decimal megabytes per second, as network figures are quoted


class LatencyModelError(CodedError):
    """An invalid latency model setting (INVALID_LATENCY_MODEL)."""


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Time S3 takes for one object request: first-byte latency + bytes / bandwidth (GET: response body; PUT: request
    body). HEAD and other object calls take the GET first byte only; bucket-level calls (LIST) are not delayed."""

    get_first_byte_ms: float = DEFAULT_GET_FIRST_BYTE_MS
    get_mb_per_s: float = DEFAULT_GET_MB_PER_S
    put_first_byte_ms: float = DEFAULT_PUT_FIRST_BYTE_MS
    put_mb_per_s: float = DEFAULT_PUT_MB_PER_S

    def __post_init__(self) -> None:
        for name in ("get_first_byte_ms", "put_first_byte_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 60_000:
                raise LatencyModelError("INVALID_LATENCY_MODEL", expected("a number of ms 0..60000", name, v))
        for name in ("get_mb_per_s", "put_mb_per_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 100_000:
                raise LatencyModelError("INVALID_LATENCY_MODEL", expected("a bandwidth in MB/s > 0", name, v))

    def delay_s(self, method: str, key: str, request_bytes: int, response_bytes: int) -> float:
        """Seconds to hold this request: 0 for bucket-level calls (no key)."""
        if not key:
            return 0.0
        if method == "PUT":
            return self.put_first_byte_ms / 1000.0 + request_bytes / (self.put_mb_per_s * MB)
        if method == "GET":
            return self.get_first_byte_ms / 1000.0 + response_bytes / (self.get_mb_per_s * MB)
        return self.get_first_byte_ms / 1000.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> LatencyModel:
        """From a mapping of field names (unknown names: INVALID_LATENCY_MODEL)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise LatencyModelError(
                "INVALID_LATENCY_MODEL", expected(f"fields among {', '.join(sorted(known))}", "latency model", unknown)
            )
        return cls(**values)  # type: ignore[arg-type]


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
        self,
        upstream: str,
        *,
        injector: FaultInjector | None = None,
        port: int = 0,
        max_records: int = 200_000,
        latency: LatencyModel | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"Expected an http://host:port URL for upstream but received {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.injector = injector or FaultInjector()
        self.latency = latency  # None: no S3 time added (faults only); swap at run time with set_latency
        self.latency_s_total = 0.0  # seconds of modeled S3 time added so far
        self.exchanges: deque[Exchange] = deque(maxlen=max_records)
        self.on_exchange: list[Callable[[Exchange], None]] = []
        self.upstream_errors = 0
        self.client_errors = 0  # connections that broke while being read (e.g. a runtime SIGKILLed mid-request)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0  # requests being handled now (a stalled one is recorded only when its stall ends)
        self._last_activity = time.monotonic()  # when a request last arrived or ended
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

    def set_latency(self, latency: LatencyModel | None) -> None:
        self.latency = latency

    def _hold_for_latency(self, method: str, key: str, request_bytes: int, response_bytes: int) -> float:
        """Wait the modeled S3 time of this request (interruptible on stop); the seconds waited."""
        model = self.latency
        if model is None:
            return 0.0
        delay = model.delay_s(method, key, request_bytes, response_bytes)
        if delay > 0:
            self._stopping.wait(delay)
            with self._lock:
                self.latency_s_total += delay
        return delay

    def clear_faults(self) -> None:
        self.injector.clear()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def wait_quiet(self, quiet_s: float, timeout_s: float) -> bool:
        """Wait until no request has been handled for `quiet_s` seconds, so that every exchange so far is recorded:
        an injected stall is recorded when it ends, which can be after the run it belongs to settled, and a late
        delivery writes its thumbnails only after its stalled read. False if `timeout_s` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while True:
                now = time.monotonic()
                quiet_for = now - self._last_activity
                if not self._in_flight and quiet_for >= quiet_s:
                    return True
                if now >= deadline:
                    return False
                wait = quiet_s - quiet_for if not self._in_flight else deadline - now
                self._idle.wait(max(0.01, min(wait, deadline - now)))

    def _enter(self) -> None:
        with self._idle:
            self._in_flight += 1
            self._last_activity = time.monotonic()
            self._idle.notify_all()

    def _leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._last_activity = time.monotonic()
            self._idle.notify_all()

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
                proxy._enter()
                try:
                    self._handle_one()
                finally:
                    proxy._leave()

            def _handle_one(self) -> None:
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
                    proxy._hold_for_latency(method, parse_path(self.path)[1], len(body), len(payload))
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
