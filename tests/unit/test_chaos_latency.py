"""Unit tests of the S3 latency model of the fault proxy: the arithmetic, and that the proxy holds a request for it."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.chaos.proxy import (
    DEFAULT_GET_FIRST_BYTE_MS,
    DEFAULT_PUT_FIRST_BYTE_MS,
    MB,
    FaultProxy,
    LatencyModel,
    LatencyModelError,
)

BODY = b"x" * 500_000


def test_get_is_first_byte_plus_response_bytes_over_bandwidth() -> None:
    m = LatencyModel(get_first_byte_ms=20, get_mb_per_s=50, put_first_byte_ms=40, put_mb_per_s=25)
    assert m.delay_s("GET", "k", 0, 5 * MB) == pytest.approx(0.020 + 0.1)
    assert m.delay_s("GET", "k", 123, 0) == pytest.approx(0.020)  # a GET's request body does not count


def test_put_is_first_byte_plus_request_bytes_over_bandwidth() -> None:
    m = LatencyModel(get_first_byte_ms=20, get_mb_per_s=50, put_first_byte_ms=40, put_mb_per_s=25)
    assert m.delay_s("PUT", "k", 1 * MB, 999) == pytest.approx(0.040 + 0.04)


def test_head_takes_the_first_byte_and_bucket_calls_are_not_delayed() -> None:
    m = LatencyModel()
    assert m.delay_s("HEAD", "k", 0, 0) == pytest.approx(DEFAULT_GET_FIRST_BYTE_MS / 1000)
    assert m.delay_s("GET", "", 0, 10 * MB) == 0.0  # LIST (no key)
    assert LatencyModel().delay_s("PUT", "k", 0, 0) == pytest.approx(DEFAULT_PUT_FIRST_BYTE_MS / 1000)


@pytest.mark.parametrize(
    "fields",
    [{"get_first_byte_ms": -1}, {"put_mb_per_s": 0}, {"get_mb_per_s": True}, {"put_first_byte_ms": "5"}],
)
def test_invalid_settings_have_a_stable_code(fields: dict[str, object]) -> None:
    with pytest.raises(LatencyModelError) as info:
        LatencyModel(**fields)  # type: ignore[arg-type]
    assert info.value.code == "INVALID_LATENCY_MODEL"


def test_from_mapping_rejects_unknown_fields() -> None:
    assert LatencyModel.from_mapping({"get_first_byte_ms": 7}).get_first_byte_ms == 7
    with pytest.raises(LatencyModelError):
        LatencyModel.from_mapping({"first_byte": 7})


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def do_PUT(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _request(proxy: FaultProxy, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    try:
        t0 = time.perf_counter()
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, time.perf_counter() - t0
    finally:
        conn.close()


def test_the_proxy_holds_each_object_request_for_the_model(upstream: str) -> None:
    model = LatencyModel(get_first_byte_ms=60, get_mb_per_s=5, put_first_byte_ms=80, put_mb_per_s=10)
    with FaultProxy(upstream, latency=model) as proxy:
        status, data, took = _request(proxy, "GET", "/bucket/key.jpg")
        assert status == 200 and data == BODY
        get_delay = 0.060 + len(BODY) / (5 * MB)  # 0.16 s
        assert took >= get_delay  # held at least that long (a lower bound: the machine may add, never subtract)
        status, _, took = _request(proxy, "PUT", "/bucket/out.jpg", body=b"y" * 200_000)
        put_delay = 0.080 + 200_000 / (10 * MB)
        assert status == 200 and took >= put_delay
        assert proxy.latency_s_total == pytest.approx(get_delay + put_delay)


def test_without_a_model_nothing_is_added_and_the_model_can_be_swapped(upstream: str) -> None:
    with FaultProxy(upstream) as proxy:
        assert _request(proxy, "GET", "/bucket/key.jpg")[0] == 200
        assert proxy.latency_s_total == 0.0
        proxy.set_latency(LatencyModel(get_first_byte_ms=10, get_mb_per_s=1000))
        _request(proxy, "GET", "/bucket/")  # bucket-level: not delayed
        assert proxy.latency_s_total == 0.0
        _request(proxy, "GET", "/bucket/key.jpg")
        assert proxy.latency_s_total == pytest.approx(0.010 + len(BODY) / (1000 * MB))
