"""The handler/observer contract: thumbnail metadata keys, log-line fields, DLQ message fields, the output-key rule.

The handler writes these; the harness (load, chaos, arm64 checks) reads them by importing this module as
`thumbnailer.contract`. Stdlib only, so both sides (and the Lambda zip) can import it. Renaming a value here is a
wire change: thumbnails and DLQ messages written before it will no longer be read the same way.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote, unquote

# ---- key layout --------------------------------------------------------------------------------------------------
DEFAULT_INPUT_PREFIX: Final = "uploads/"
DEFAULT_OUTPUT_PREFIX: Final = "thumbnails/"
# output format -> file extension appended to the source key
EXTENSIONS: Final[dict[str, str]] = {"jpeg": "jpg", "webp": "webp", "png": "png", "avif": "avif"}


def output_stem(
    source_key: str, size: str, *, input_prefix: str = DEFAULT_INPUT_PREFIX, output_prefix: str = DEFAULT_OUTPUT_PREFIX
) -> str:
    """`uploads/a/x.jpg`, `small` -> `thumbnails/small/a/x.jpg` (the output key without its extension).

    Also maps a source key *prefix* (`uploads/<run>/`) to the prefix of its thumbnails of one size.
    """
    path = source_key
    if input_prefix and path.startswith(input_prefix):
        path = path[len(input_prefix) :]
    return f"{output_prefix}{size}/{path}"


def output_key(
    source_key: str,
    size: str,
    fmt: str,
    *,
    input_prefix: str = DEFAULT_INPUT_PREFIX,
    output_prefix: str = DEFAULT_OUTPUT_PREFIX,
) -> str:
    """`uploads/a/x.jpg` -> `thumbnails/<size>/a/x.jpg.<ext>`: full path kept (no collisions), deterministic."""
    return f"{output_stem(source_key, size, input_prefix=input_prefix, output_prefix=output_prefix)}.{EXTENSIONS[fmt]}"


def source_of(
    thumbnail_key: str, *, input_prefix: str = DEFAULT_INPUT_PREFIX, output_prefix: str = DEFAULT_OUTPUT_PREFIX
) -> tuple[str, str] | None:
    """The inverse of output_key: `thumbnails/<size>/<path>.<ext>` -> (size, `uploads/<path>`); None outside it."""
    if not thumbnail_key.startswith(output_prefix):
        return None
    size, _, rest = thumbnail_key[len(output_prefix) :].partition("/")
    if not rest or "." not in rest:
        return None
    return size, input_prefix + rest.rsplit(".", 1)[0]


# ---- object metadata (x-amz-meta-*; S3 lower-cases the names) ----------------------------------------------------
META_RUN_ID: Final = "run-id"  # set by whoever uploads the source; thumbnails copy it
META_SOURCE_BUCKET: Final = "source-bucket"
META_SOURCE_KEY: Final = "source-key"  # percent-encoded UTF-8 (S3 metadata is ASCII): encode/decode_source_key
META_SOURCE_ETAG: Final = "source-etag"
META_SOURCE_VERSION_ID: Final = "source-version-id"
META_BACKEND: Final = "backend"
META_HANDLER_START_MS: Final = "handler-start-ms"  # epoch ms when the invocation (batch) started
META_RESIZE_MS: Final = "resize-ms"  # decode + resize + encode of every size, ms with one decimal
META_TOTAL_MS: Final = "total-ms"  # fetch + resize of this object, ms with one decimal (output PUTs not included)
META_THUMBNAIL_SIZE: Final = "thumbnail-size"
META_WIDTH: Final = "width"
META_HEIGHT: Final = "height"


def encode_source_key(key: str) -> str:
    return quote(key, safe="/")


def decode_source_key(value: str) -> str:
    return unquote(value)


# ---- the handler's JSON log line (one per SQS record; Powertools adds timestamp, level, message) -----------------
LOG_MESSAGE: Final = "thumbnail record"
LOG_MESSAGE_ID: Final = "message_id"
LOG_RECEIVE_COUNT: Final = "receive_count"
LOG_BACKEND: Final = "backend"
LOG_SIZES: Final = "sizes"
LOG_REQUEST_ID: Final = "request_id"
LOG_SENT_TIMESTAMP: Final = "sent_timestamp"  # SQS SentTimestamp, epoch ms
LOG_FIRST_RECEIVE_MS: Final = "first_receive_ms"  # SQS ApproximateFirstReceiveTimestamp, epoch ms
LOG_OUTCOME: Final = "outcome"
LOG_BUCKET: Final = "bucket"
LOG_KEY: Final = "key"  # the decoded source key
LOG_RUN_ID: Final = "run_id"
LOG_CODE: Final = "code"  # error code of a failed object
LOG_ERROR: Final = "error"
LOG_OBJECTS: Final = "objects"  # per-object items when one record names several objects
LOG_RECORD_MS: Final = "record_ms"
LOG_RESIZE_MS: Final = "resize_ms"  # the resizer's wall time for an object (decode, resize, encode)
LOG_RESIZE_CPU_MS: Final = "resize_cpu_ms"  # its CPU time (process CPU of the resize call)
LOG_S3_CPU_MS: Final = "s3_cpu_ms"  # CPU of the S3 client for an object: its GET and its PUTs (thread CPU)
LOG_TIMESTAMP: Final = "timestamp"  # written by Powertools: when the record was done
# outcome values
OUTCOME_OK: Final = "ok"
OUTCOME_SKIPPED: Final = "skipped"
OUTCOME_RETRY: Final = "retry"
OUTCOME_DLQ: Final = "dlq"

# ---- the DLQ message the handler sends for a permanent failure (or the last allowed receive) ---------------------
DLQ_SOURCE: Final = "source"  # {"bucket", "key", "version_id", "etag"} or null (unparseable record)
DLQ_ERROR: Final = "error"  # {"code", "message", "retryable"}
DLQ_ERROR_CODE: Final = "code"
DLQ_ERROR_MESSAGE: Final = "message"
DLQ_RUN_ID: Final = "run_id"
DLQ_ORIGINAL: Final = "original"  # the SQS record body (parsed JSON, or the text when it is not JSON)
# message attributes (strings; empty ones are not sent)
ATTR_ERROR_CODE: Final = "error_code"
ATTR_ERROR_MESSAGE: Final = "error_message"
ATTR_RUN_ID: Final = "run_id"


def dead_letter_body(
    *,
    source: dict[str, Any] | None,
    code: str,
    message: str,
    retryable: bool,
    run_id: str,
    backend: str,
    message_id: str,
    receive_count: int,
    failed_at_ms: int,
    original: Any,
) -> dict[str, Any]:
    """The DLQ message body (sent as JSON) naming the source object, the error and the original record."""
    return {
        DLQ_SOURCE: source,
        DLQ_ERROR: {DLQ_ERROR_CODE: code, DLQ_ERROR_MESSAGE: message, "retryable": retryable},
        DLQ_RUN_ID: run_id,
        "backend": backend,
        "message_id": message_id,
        "receive_count": receive_count,
        "failed_at_ms": failed_at_ms,
        DLQ_ORIGINAL: original,
    }


def dead_letter_attributes(code: str, message: str, run_id: str) -> dict[str, str]:
    """The DLQ message attributes: what a consumer can filter on without parsing the body."""
    return {ATTR_ERROR_CODE: code, ATTR_ERROR_MESSAGE: message, ATTR_RUN_ID: run_id}
