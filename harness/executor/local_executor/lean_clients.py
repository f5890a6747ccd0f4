"""LocalStack's own clients, answered by the provider directly (part of the lean path, HARNESS_LEAN).

LocalStack's services talk to each other through boto3 clients: the SQS event source poller (ReceiveMessage,
DeleteMessageBatch), its Lambda sender (Invoke), S3's notifications (SendMessage) and Lambda's log shipper
(PutLogEvents). With IN_MEMORY_CLIENT the
request skips the socket, but nothing else: botocore serialises it, LocalStack's gateway parses it again and runs its
whole handler chain, the provider answers, the answer is serialised and botocore parses it back. In a steady load
run at 3 uploads/s those calls were a third of the emulator's CPU samples (py-spy), the providers' own work a third
of that.

For those operations (DIRECT_OPERATIONS) this module answers the call from the provider's dispatch table in the
calling thread, with the request context the gateway would have built (the same enrichers: internal call
parameters, region, account, trace context) and the operation's parameters as the caller passed them. It hooks
botocore's `before-call` event, which is how botocore itself lets a handler supply the response: the parameter
checks and every `provide-client-params` / `before-parameter-build` / `before-call` handler registered before it
(LocalStack's internal-call header, the poller's batch-size overrides) still run.

What the caller gets back is what botocore would have parsed: the result (copied, so neither side holds the
other's dicts: the poller renames message-attribute keys in place), ResponseMetadata, and a streaming body where the
operation has one. Anything but a success (a service error, an unexpected exception, a service that is not running
yet) is handed back to the usual path, which sends the call through the gateway, with botocore's retries and error
parsing, as if the direct answer had never been tried: the direct path only ever serves successes. A failed call is
so made once more than it would have been (botocore's retries of a 5xx repeat one too).
"""

from __future__ import annotations

import io
import logging
import threading
from typing import Any
from urllib.parse import urlsplit

LOG = logging.getLogger("localstack.harness.local_executor.lean_clients")

# botocore service name -> operations answered directly
DIRECT_OPERATIONS: dict[str, frozenset[str]] = {
    "sqs": frozenset({"ReceiveMessage", "DeleteMessageBatch", "SendMessage"}),
    "lambda": frozenset({"Invoke"}),
    # the log shipper; LocalStack's logs provider hands the call to moto, which parses the request's body itself
    "logs": frozenset({"PutLogEvents"}),
}
# operations whose (input) member is a stream the provider reads (`payload.read()`), and whose output member is a
# stream botocore hands out as a StreamingBody
STREAMING_INPUT: dict[tuple[str, str], str] = {("lambda", "Invoke"): "Payload"}
STREAMING_OUTPUT: dict[tuple[str, str], str] = {("lambda", "Invoke"): "Payload"}
PARAMS_KEY = "harness_direct_params"  # where the caller's parameters wait in botocore's request context

DIRECT_LOG = "internal call answered by the provider directly: %s.%s (the first; later ones are not logged)"
FALLBACK_LOG = "internal call %s.%s not answered directly (%s): the gateway answers it (the first of its kind)"

_announced: set[tuple[str, ...]] = set()
_announced_lock = threading.Lock()


def _first(*key: str) -> bool:
    """True the first time `key` is seen (what is logged once: the lean-path test looks for it in the log)."""
    with _announced_lock:
        if key in _announced:
            return False
        _announced.add(key)
        return True


def detached(value: Any) -> Any:
    """A copy of a request or response structure: dicts and lists copied all the way down, the rest shared (str,
    bytes, numbers, datetimes are immutable)."""
    if isinstance(value, dict):
        return {key: detached(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [detached(item) for item in value]
    return value


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_kwargs: Any) -> None:
    """before-parameter-build (registered last): the parameters as the operation's handler will see them."""
    context[PARAMS_KEY] = params


def _skeleton_handler(service: str, operation: str) -> Any:
    """The provider's handler of `operation`, or None while the service is not running (the usual path starts it)."""
    from localstack.services.plugins import SERVICE_PLUGINS, ServiceState

    if SERVICE_PLUGINS.get_state(service) != ServiceState.RUNNING:
        return None
    skeleton = getattr(SERVICE_PLUGINS.get_service(service), "skeleton", None)
    return None if skeleton is None else skeleton.dispatch_table.get(operation)


def _request(service: str, request_dict: dict[str, Any], access_key: str, region: str) -> Any:
    """The HTTP request the provider sees: the call's method, URL, headers and body as botocore serialised them,
    with the Authorization header a signed call would carry (the gateway reads the account and region from it).
    Native providers read the parsed parameters; moto-backed ones (logs) parse the body again."""
    from localstack.http import Request

    url, body = urlsplit(request_dict["url"]), request_dict.get("body")
    headers = dict(request_dict.get("headers") or {})
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/20160623/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=direct"
    )
    return Request(
        method=request_dict.get("method") or "POST",
        path=url.path or "/",
        query_string=url.query,
        headers={k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()},
        body=body.encode() if isinstance(body, str) else bytes(body or b""),
        scheme=url.scheme or "http",
        server=(url.hostname or "localhost.localstack.cloud", url.port or (443 if url.scheme == "https" else 80)),
    )


def _context(service: str, protocol: str, operation: str, request: Any, service_request: dict[str, Any]) -> Any:
    """The RequestContext the gateway's chain would have built, from the same enrichers; `protocol` is the one
    botocore serialised the call in."""
    from localstack.aws import handlers
    from localstack.aws.api import RequestContext
    from localstack.aws.spec import load_service

    context = RequestContext(request)
    context.service = load_service(service)
    context.protocol = protocol
    context.operation = context.service.operation_model(operation)
    for enricher in (
        handlers.add_internal_request_params,
        handlers.add_region_from_header,
        handlers.rewrite_region,
        handlers.add_account_id,
        handlers.parse_trace_context,
    ):
        enricher(None, context, None)
    context.service_request = service_request
    return context


def _credentials(request_signer: Any) -> tuple[str, str] | None:
    credentials = getattr(request_signer, "_credentials", None)
    region = getattr(request_signer, "_region_name", None)
    if credentials is None or not region:
        return None
    frozen = credentials.get_frozen_credentials() if hasattr(credentials, "get_frozen_credentials") else credentials
    return frozen.access_key, region


def _answer(service: str, operation: str, result: dict[str, Any] | None, request_id: str) -> tuple[Any, dict[str, Any]]:
    """(HTTP response, parsed response) as botocore's before-call contract wants them."""
    from botocore.awsrequest import AWSResponse
    from botocore.response import StreamingBody

    parsed = detached(result or {})
    stream_member = STREAMING_OUTPUT.get((service, operation))
    if stream_member is not None:
        body = parsed.get(stream_member) or b""
        body = body.encode() if isinstance(body, str) else bytes(body)
        parsed[stream_member] = StreamingBody(io.BytesIO(body), len(body))
    status = int(parsed.get("StatusCode") or 200) if service == "lambda" else 200
    headers = {"x-amzn-requestid": request_id}
    parsed["ResponseMetadata"] = {
        "RequestId": request_id,
        "HTTPStatusCode": status,
        "HTTPHeaders": headers,
        "RetryAttempts": 0,
    }
    return AWSResponse(url="", status_code=status, headers=headers, raw=None), parsed


def _dispatch(
    model: Any, params: dict[str, Any], request_signer: Any, context: dict[str, Any], **_kwargs: Any
) -> tuple[Any, dict[str, Any]] | None:
    """before-call (registered last): answer from the provider, or None for the usual path."""
    caller_params = context.pop(PARAMS_KEY, None)
    service, operation = model.service_model.service_name, model.name
    if caller_params is None or operation not in DIRECT_OPERATIONS.get(service, ()):
        return None
    handler = _skeleton_handler(service, operation)
    identity = _credentials(request_signer)
    if handler is None or identity is None:
        return None
    service_request = detached(caller_params)
    stream_member = STREAMING_INPUT.get((service, operation))
    if stream_member is not None and stream_member in service_request:
        body = service_request[stream_member]
        service_request[stream_member] = io.BytesIO(body.encode() if isinstance(body, str) else bytes(body))
    try:
        request = _request(service, params, *identity)
        request_context = _context(service, model.service_model.protocol, operation, request, service_request)
        result = handler(request_context, service_request)
    except Exception as error:  # a ServiceException or anything else: the gateway's path answers it
        kind = getattr(error, "code", None) or type(error).__name__
        if _first(service, operation, kind):
            LOG.info(FALLBACK_LOG, service, operation, kind)
        LOG.debug("%s.%s: direct answer failed: %r", service, operation, error)
        return None
    if _first(service, operation):
        LOG.info(DIRECT_LOG, service, operation)
    return _answer(service, operation, result, request_context.request_id)


def register(client: Any) -> Any:
    """Hook an internal client (one of InternalClientFactory's) for the direct answers; other services untouched."""
    service = client.meta.service_model.service_name
    operations = DIRECT_OPERATIONS.get(service)
    if not operations:
        return client
    events, event_id = client.meta.events, client.meta.service_model.service_id.hyphenize()  # logs: cloudwatch-logs
    for operation in operations:
        events.register_last(f"before-parameter-build.{event_id}.{operation}", _keep_params)
        events.register_last(f"before-call.{event_id}.{operation}", _dispatch)
    return client


def apply() -> list[str]:
    """Make LocalStack's internal clients, from now on, answer DIRECT_OPERATIONS from the providers."""
    from localstack.aws.connect import InternalClientFactory

    original = InternalClientFactory._get_client_post_hook
    if getattr(original, "_harness_direct", False):
        return []

    def _get_client_post_hook(self: Any, client: Any) -> Any:
        return register(original(self, client))

    _get_client_post_hook._harness_direct = True  # type: ignore[attr-defined]
    InternalClientFactory._get_client_post_hook = _get_client_post_hook  # type: ignore[method-assign]
    listed = ", ".join(f"{s}.{op}" for s, ops in sorted(DIRECT_OPERATIONS.items()) for op in sorted(ops))
    return [f"internal calls answered by the provider: {listed}"]
