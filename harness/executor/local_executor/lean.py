"""The lean request path: what a local pipeline does not need, cut from LocalStack at start-up (HARNESS_LEAN).

Measured with py-spy on this machine (see benchmarks/emulator): an SQS SendMessage spent ~60% of its CPU publishing a
CloudWatch metric about itself (an HTTP call from LocalStack to its own CloudWatch, stored in sqlite), and an S3 GET
of 2 MB ~50% handing 32 chunks of 64 KiB one by one from a WSGI worker thread to twisted's reactor. Every request also
ran analytics counters, the metric collector, CORS enforcement and a log line. This module changes none of the
core's files: the environment part is LocalStack configuration (set by harness/emulator.py before the process starts,
see ENVIRONMENT), the rest is applied from our on_infra_start hook (`apply`), before the gateway server is created:

- the gateway's handler chain without the steps a local, non-browser, non-analytics pipeline never uses;
- S3 object bodies streamed in chunks of S3_STREAM_CHUNK bytes (LocalStack: 64 KiB);
- twisted's socket writes up to SOCKET_SEND_LIMIT bytes per write-ready event (twisted: 128 KiB). Paired against
  MiniStack in `make bench-emulator` (3 runs each way, 2026-12-03), S3 GET of 2 MB went from 2.5-3.2x MiniStack's CPU
  per call to 2.0-2.4x;
- no POST form parsing in twisted's Request (LocalStack reads bodies through WSGI and never its `args`): it parsed
  the Content-Type of every POST through `email.message`, 31 us a request (timeit), ~3% of a lean SendMessage;
- no access-log line from twisted's HTTPFactory (with no log path it formats a combined-log line per request for
  twisted's legacy log, which nothing here observes: 2% of a SendMessage's samples in py-spy);
- no CloudWatch metrics per Lambda invocation (nothing reads them here; the logs still reach CloudWatch Logs);
- S3's Last-Modified string parsed back (dateutil, in the response serializer) once per distinct value;
- a response's Content-Type (the serializer's Accept / Content-Type negotiation) worked out once per distinct pair;
- requests that match no rule of the /_localstack or edge routers remembered as misses (per rule set);
- how twisted hands the response to the socket: lean_transport (gathered writes, one reactor call per response);
- LocalStack's own calls between services (the SQS poller, its Lambda sender, S3 notifications, the log shipper)
  answered by the provider in the calling thread, without serialising them twice: lean_clients.

HARNESS_LEAN=0 gives LocalStack's plain defaults (the bench's "before").
"""

from __future__ import annotations

import logging
import os
from typing import Any

from . import lean_clients, lean_transport

LOG = logging.getLogger("localstack.harness.local_executor.lean")

# LocalStack configuration the lean path sets (only where the user has not set the variable):
ENVIRONMENT = {
    # SQS publishes a CloudWatch metric per SendMessage/ReceiveMessage/DeleteMessage through a boto client
    "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
    # LocalStack's own clients (S3 notifications -> SQS, the event source poller, Lambda -> Logs) call the gateway
    # in-process instead of over HTTP through twisted
    "IN_MEMORY_CLIENT": "1",
}

# Handler-chain steps dropped (names of the objects in localstack.aws.handlers, or MetricHandler's bound methods):
DROPPED_REQUEST_HANDLERS = ("enforce_cors", "create_metric_handler_item", "record_parsed_request")
DROPPED_RESPONSE_HANDLERS = (
    "add_cors_response_headers",
    "log_response",
    "count_service_request",
    "update_metric_collection",
)

S3_STREAM_CHUNK = 4 * 1024 * 1024
# twisted sends at most SEND_LIMIT bytes per write-ready event (128 KiB): a 2 MB body took 16 reactor round trips
SOCKET_SEND_LIMIT = 4 * 1024 * 1024
# timestamp strings the response serializer has parsed, kept for the next response that carries the same one
TIMESTAMP_CACHE_SIZE = 4096
MIME_TYPE_CACHE_SIZE = 256  # (serializer, Accept, Content-Type) answers kept
ROUTE_MISS_CACHE_SIZE = 8192  # (Host, raw path, method) that matched no rule of a router
LEAN_DEFAULT = "1"  # HARNESS_LEAN when unset (harness/emulator.py passes it explicitly)


def enabled(env: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """HARNESS_LEAN: '1' or '0' (unset: LEAN_DEFAULT)."""
    value = (os.environ if env is None else env).get("HARNESS_LEAN", LEAN_DEFAULT).strip().lower()
    return value not in ("0", "false", "no", "off")


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The LocalStack variables to add to `env` for the lean path ({} when HARNESS_LEAN=0); a value set wins."""
    env = dict(os.environ if env is None else env)
    if not enabled(env):
        return {}
    return {key: value for key, value in ENVIRONMENT.items() if key not in env}


def _handler_name(handler: object) -> str:
    from localstack.aws import handlers

    for name in (*DROPPED_REQUEST_HANDLERS, *DROPPED_RESPONSE_HANDLERS):
        if getattr(handlers, name, None) is handler:
            return name
    return getattr(handler, "__name__", "")  # bound methods of the MetricHandler


def _prune_chain() -> list[str]:
    from localstack.runtime import get_current_runtime

    gateway = get_current_runtime().components.gateway  # created (cached) here; the server is created later
    dropped: list[str] = []
    for attr, names in (
        ("request_handlers", DROPPED_REQUEST_HANDLERS),
        ("response_handlers", DROPPED_RESPONSE_HANDLERS),
    ):
        chain = getattr(gateway, attr)
        keep = [h for h in chain if _handler_name(h) not in names]
        dropped += [_handler_name(h) for h in chain if _handler_name(h) in names]
        chain[:] = keep
    return dropped


def _large_s3_chunks() -> None:
    from localstack.services.s3.storage import ephemeral

    ephemeral.S3_CHUNK_SIZE = S3_STREAM_CHUNK  # module global read at each call (reads, writes, checksums)


def _large_socket_writes() -> None:
    from twisted.internet import abstract

    abstract.FileDescriptor.SEND_LIMIT = SOCKET_SEND_LIMIT  # class attribute read by every doWrite/writeSomeData


def _no_form_parsing() -> None:
    from rolo.serving import twisted as rolo_twisted

    cls = rolo_twisted.TwistedRequestAdapter
    original_init = cls.__init__

    def __init__(self, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False  # twisted's own flag (its constructor argument), read per request

    cls.__init__ = __init__  # type: ignore[method-assign]


def _no_access_log() -> None:
    from rolo.serving.twisted import TwistedGateway

    def log(self: object, request: object) -> None:
        return None

    TwistedGateway.log = log  # type: ignore[method-assign]


def _no_lambda_metrics() -> None:
    from localstack.services.lambda_.invocation import version_manager

    def skip(*_args: object, **_kwargs: object) -> None:
        return None

    version_manager.record_cw_metric_invocation = skip
    version_manager.record_cw_metric_error = skip


def _remember(cache: dict[Any, Any], key: Any, limit: int, compute: Any) -> Any:
    """`cache[key]`, computed by `compute()` the first time; the cache is emptied when it holds `limit` answers."""
    hit = cache.get(key)
    if hit is None:
        hit = compute()
        if len(cache) >= limit:
            cache.clear()
        cache[key] = hit
    return hit


def _memoized_header_timestamps() -> None:
    """S3 keeps an object's LastModified as an RFC 1123 string; LocalStack's serializer parses it back with dateutil
    (botocore's parse_to_aware_datetime, ~0.1 ms) on every GET/HEAD before formatting it again. The same string
    always parses to the same (immutable) datetime: remember it."""
    from localstack.aws.protocol import serializer

    original = serializer.parse_to_aware_datetime
    cache: dict[str, object] = {}

    def parse_to_aware_datetime(value: object) -> object:
        if type(value) is not str:
            return original(value)
        return _remember(cache, value, TIMESTAMP_CACHE_SIZE, lambda: original(value))

    serializer.parse_to_aware_datetime = parse_to_aware_datetime


def _memoized_response_mime_types() -> None:
    """Every response's serializer picks its Content-Type by parsing the request's Accept header (or its
    Content-Type) with werkzeug's MIMEAccept and matching it against the types it supports: ~0.1 ms of pure
    Python per request whose answer depends only on those two headers and the serializer class. Remember it per
    (class, supported types, Accept, Content-Type). Only LocalStack's DEBUG lines about the fallback (logged while
    the answer is worked out) then appear once per distinct pair instead of per request."""
    from localstack.aws.protocol.serializer import ResponseSerializer

    original = ResponseSerializer._get_mime_type
    cache: dict[tuple[object, ...], str] = {}

    def _get_mime_type(self: object, headers: object) -> str:
        if not headers:
            return original(self, headers)
        key = (
            type(self),
            tuple(self.SUPPORTED_MIME_TYPES),  # type: ignore[attr-defined]
            headers.get("Accept"),  # type: ignore[attr-defined]
            headers.get("Content-Type"),  # type: ignore[attr-defined]
        )
        return str(_remember(cache, key, MIME_TYPE_CACHE_SIZE, lambda: original(self, headers)))

    ResponseSerializer._get_mime_type = _get_mime_type  # type: ignore[method-assign]


def _remembered_route_misses(router: Any) -> None:
    """Two routers see every request before the AWS parser: LocalStack's /_localstack resources and the edge ROUTER
    (SQS queue URLs, Lambda function URLs, S3 websites...). Almost every request matches neither, and finding that
    out (werkzeug's matcher, then a NotFound) cost ~100 us of a SendMessage. A miss depends only on the router's
    rules, the Host, the raw path and the method; the router replaces its url_map on every add/remove, so misses
    are remembered per url_map object. A hit, or a NotFound raised by a matched endpoint, goes the usual way."""
    from rolo.request import get_raw_path
    from werkzeug.exceptions import NotFound

    state: dict[str, Any] = {"map": None, "misses": set()}

    def dispatch(request: Any) -> Any:  # rolo's Router.dispatch, with the miss remembered
        url_map = router.url_map
        host, path, method = request.host, get_raw_path(request), request.method
        key = (host, path, method)
        if state["map"] is url_map and key in state["misses"]:
            raise NotFound()
        try:
            handler, args = url_map.bind(server_name=host).match(path, method=method)
        except NotFound:
            if state["map"] is not url_map:
                state["map"], state["misses"] = url_map, set()
            if len(state["misses"]) >= ROUTE_MISS_CACHE_SIZE:
                state["misses"].clear()
            state["misses"].add(key)
            raise
        args.pop("__host__", None)
        return router.dispatcher(request, handler, args)

    router.dispatch = dispatch


def _routers_remember_misses() -> None:
    from localstack.services.edge import ROUTER
    from localstack.services.internal import get_internal_apis

    for router in (get_internal_apis(), ROUTER):
        _remembered_route_misses(router)


def apply() -> list[str]:
    """Apply the in-process part of the lean path (no-op when HARNESS_LEAN=0); returns what was changed."""
    if not enabled():
        LOG.info("lean request path off (HARNESS_LEAN=0): LocalStack defaults")
        return []
    changes = [f"dropped handler {name}" for name in _prune_chain()]
    _large_s3_chunks()
    changes.append(f"S3 stream chunk {S3_STREAM_CHUNK} bytes")
    _large_socket_writes()
    changes.append(f"socket writes up to {SOCKET_SEND_LIMIT} bytes")
    _no_form_parsing()
    changes.append("no POST form parsing in twisted")
    _no_access_log()
    changes.append("no twisted access-log line")
    _no_lambda_metrics()
    changes.append("no CloudWatch metrics per Lambda invocation")
    _memoized_header_timestamps()
    changes.append("timestamp headers parsed once per distinct value")
    _memoized_response_mime_types()
    changes.append("response Content-Type chosen once per distinct Accept/Content-Type")
    _routers_remember_misses()
    changes.append("route misses of the /_localstack and edge routers remembered per rule set")
    changes += lean_transport.apply()
    changes += lean_clients.apply()
    changes += [f"{key}={os.environ.get(key)}" for key in ENVIRONMENT]
    LOG.info("lean request path: %s", "; ".join(changes))
    return changes
