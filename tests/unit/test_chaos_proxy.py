"""Unit tests of the S3 fault proxy and fault rules, against an in-process fake S3 (no emulator)."""

from __future__ import annotations

import hashlib
import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from common.waiting import wait_until
from harness.chaos.errors import InvalidFaultSpec
from harness.chaos.faults import FaultInjector, FaultRule, S3Request
from harness.chaos.proxy import Exchange, FaultProxy, parse_attempt, parse_path


def _records(proxy: FaultProxy, method: str, count: int) -> list[Exchange] | None:
    """The proxy's records of `method` once there are `count` of them (it records after sending each response)."""
    found = [e for e in proxy.snapshot() if e.method == method]
    return found if len(found) >= count else None


class FakeS3(BaseHTTPRequestHandler):
    """Just enough path-style S3 for PUT/GET/HEAD of objects."""

    protocol_version = "HTTP/1.1"
    objects: dict[str, bytes] = {}

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def _reply(self, status: int, body: bytes = b"", extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.objects[self.path] = body
        self._reply(200, extra={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})

    def do_GET(self) -> None:
        if self.path not in self.objects:
            body = b"<Error><Code>NoSuchKey</Code><Message>missing</Message></Error>"
            self._reply(404, body, {"Content-Type": "application/xml"})
            return
        body = self.objects[self.path]
        self._reply(200, body, {"ETag": f'"{hashlib.md5(body).hexdigest()}"'})

    def do_HEAD(self) -> None:
        if self.path not in self.objects:
            self._reply(404)
            return
        body = self.objects[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
        self.end_headers()


@pytest.fixture
def upstream() -> Iterator[str]:
    FakeS3.objects = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeS3)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: str) -> Iterator[FaultProxy]:
    with FaultProxy(upstream) as running:
        yield running


def s3_client(endpoint: str, max_attempts: int = 3):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            retries={"mode": "standard", "total_max_attempts": max_attempts}, connect_timeout=5, read_timeout=10
        ),
    )


def test_proxy_forwards_put_get_head_unchanged(proxy: FaultProxy) -> None:
    s3 = s3_client(proxy.endpoint)
    s3.put_object(Bucket="b", Key="uploads/a b/x.jpg", Body=b"hello-image")
    assert s3.get_object(Bucket="b", Key="uploads/a b/x.jpg")["Body"].read() == b"hello-image"
    assert s3.head_object(Bucket="b", Key="uploads/a b/x.jpg")["ContentLength"] == len(b"hello-image")
    # the proxy records an exchange once its response is sent, so the client can be a moment ahead of the record
    puts = wait_until(lambda: [e for e in proxy.snapshot() if e.method == "PUT"], 5.0, what="the PUT's record")
    assert [(e.bucket, e.key, e.status) for e in puts] == [("b", "uploads/a b/x.jpg", 200)]
    assert puts[0].body_sha256 is not None and puts[0].injected is None


def test_slowdown_count_is_retried_by_the_client_then_succeeds(proxy: FaultProxy) -> None:
    proxy.set_rules([FaultRule(method="GET", error="SlowDown", count=1)])
    s3 = s3_client(proxy.endpoint)
    s3.put_object(Bucket="b", Key="k", Body=b"x")
    assert s3.get_object(Bucket="b", Key="k")["Body"].read() == b"x"
    gets = wait_until(lambda: _records(proxy, "GET", 2), 5.0, what="both GETs' records")
    assert [(e.status, e.injected, e.attempt) for e in gets] == [(503, "SlowDown", 1), (200, None, 2)]
    assert gets[0].invocation_id and gets[0].invocation_id == gets[1].invocation_id
    assert proxy.injected_by_code() == {"SlowDown": 1}


def test_access_denied_on_put_reaches_the_client_with_its_code(proxy: FaultProxy) -> None:
    proxy.set_rules([FaultRule.parse("PUT:AccessDenied:prefix=thumbnails/")])
    s3 = s3_client(proxy.endpoint)
    s3.put_object(Bucket="b", Key="uploads/ok", Body=b"x")
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="b", Key="thumbnails/small/x.jpg", Body=b"y")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    proxy.clear_faults()  # the "fix"
    s3.put_object(Bucket="b", Key="thumbnails/small/x.jpg", Body=b"y")
    assert FakeS3.objects["/b/thumbnails/small/x.jpg"] == b"y"


def test_internal_error_per_key_fails_first_requests_of_each_key(proxy: FaultProxy) -> None:
    proxy.set_rules([FaultRule(method="GET", error="InternalError", per_key=2)])
    s3 = s3_client(proxy.endpoint, max_attempts=1)
    s3.put_object(Bucket="b", Key="k1", Body=b"1")
    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            s3.get_object(Bucket="b", Key="k1")
        assert caught.value.response["Error"]["Code"] == "InternalError"
    assert s3.get_object(Bucket="b", Key="k1")["Body"].read() == b"1"


def test_delay_is_recorded_and_request_still_forwarded(proxy: FaultProxy) -> None:
    proxy.set_rules([FaultRule.parse("GET:delay=0.2")])
    s3 = s3_client(proxy.endpoint)
    s3.put_object(Bucket="b", Key="k", Body=b"x")
    assert s3.get_object(Bucket="b", Key="k")["Body"].read() == b"x"
    get = wait_until(
        lambda: next((e for e in proxy.snapshot() if e.method == "GET"), None), 5.0, what="the GET's record"
    )
    assert get.delayed_s == pytest.approx(0.2) and get.status == 200 and get.injected is None


def test_chunked_request_bodies_are_decoded_before_forwarding(proxy: FaultProxy) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request(
        "PUT", "/b/chunked", body=iter([b"abc", b"defg"]), encode_chunked=True, headers={"Transfer-Encoding": "chunked"}
    )
    assert conn.getresponse().status == 200
    conn.close()
    assert FakeS3.objects["/b/chunked"] == b"abcdefg"


def test_unreachable_upstream_answers_502_and_is_counted() -> None:
    with FaultProxy("http://127.0.0.1:9") as proxy:  # discard port: nothing listens
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.request("GET", "/b/k")
        assert conn.getresponse().status == 502
        conn.close()
        assert proxy.upstream_errors == 1


def test_rate_is_deterministic_for_a_seed_and_near_the_rate() -> None:
    def fired(seed: int) -> list[bool]:
        injector = FaultInjector(rules=(FaultRule(method="GET", error="SlowDown", rate=0.3),), seed=seed)
        return [injector.decide(S3Request("GET", "b", f"k{i}")).error is not None for i in range(1000)]

    assert fired(1) == fired(1)
    assert 250 <= sum(fired(1)) <= 350


def test_rules_match_objects_only_and_respect_count_and_bucket() -> None:
    injector = FaultInjector(rules=(FaultRule(method="PUT", error="AccessDenied", count=2, bucket="out"),))
    assert injector.decide(S3Request("PUT", "out", "")).error is None  # bucket operation, not an object
    assert injector.decide(S3Request("PUT", "in", "k")).error is None
    assert [injector.decide(S3Request("PUT", "out", f"k{i}")).error for i in range(3)] == [
        "AccessDenied",
        "AccessDenied",
        None,
    ]
    assert injector.injected == {"PUT:AccessDenied": 2}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("GET", "METHOD:ERROR"),
        ("GET:Nope", "for error"),
        ("FETCH:SlowDown", "for method"),
        ("GET:SlowDown:rate=2", "rate in (0, 1]"),
        ("GET:SlowDown:count=0", "positive integer for count"),
        ("GET:SlowDown:colour=red", "but received 'colour'"),
        ("GET:SlowDown:rate=x", "Expected numbers"),
    ],
)
def test_bad_fault_specs_get_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidFaultSpec, match="Expected") as caught:
        FaultRule.parse(spec)
    assert message in str(caught.value)
    assert caught.value.code == "INVALID_FAULT_SPEC"


def test_path_and_attempt_parsing() -> None:
    assert parse_path("/bucket/uploads/a%20b/x.jpg?x-id=GetObject") == ("bucket", "uploads/a b/x.jpg")
    assert parse_path("/bucket?list-type=2") == ("bucket", "")
    assert parse_attempt("attempt=3; max=5") == 3
    assert parse_attempt(None) == 1


def test_a_client_that_disconnects_during_a_stall_is_still_recorded(proxy: FaultProxy) -> None:
    from harness.chaos.proxy import CLIENT_GONE

    FakeS3.objects["/b/slow"] = b"x"
    proxy.set_rules([FaultRule.parse("GET:delay=0.5")])
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("GET", "/b/slow")
    conn.sock.shutdown(2)  # the runtime "timed out": gone before the answer
    conn.close()
    recorded = wait_until(lambda: [e for e in proxy.snapshot() if e.key == "slow"], 5.0, what="the exchange")
    assert recorded[0].delayed_s == 0.5 and recorded[0].status in (200, CLIENT_GONE)


def test_wait_quiet_returns_only_once_a_stalled_exchange_is_recorded(proxy: FaultProxy) -> None:
    """A run settles while the proxy still holds a stalled read of it (the client gave up, or a second delivery is
    still waiting): its evidence is read only after `wait_quiet`, which must not return before that read is recorded."""
    FakeS3.objects["/b/stalled"] = b"x"
    proxy.set_rules([FaultRule.parse("GET:delay=1.0")])
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("GET", "/b/stalled")
    wait_until(lambda: proxy.in_flight == 1, 5.0, interval=0.01, what="the stalled GET to be in flight")
    conn.sock.shutdown(2)  # gone before the answer, like a runtime killed at its timeout
    conn.close()
    assert not [e for e in proxy.snapshot() if e.key == "stalled"]  # held: not recorded yet
    assert not proxy.wait_quiet(0.1, 0.3)  # still stalled: the deadline passes first
    assert proxy.wait_quiet(0.2, 5.0)
    assert proxy.in_flight == 0
    assert [e.delayed_s for e in proxy.snapshot() if e.key == "stalled"] == [1.0]
