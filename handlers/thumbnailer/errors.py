"""Error taxonomy of the thumbnailer: every failure is permanent or retryable and carries a stable code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Stable error codes (they appear in DLQ message attributes, logs and metrics; never rename)."""

    # permanent: retrying cannot help
    CORRUPT_IMAGE = "CORRUPT_IMAGE"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    TOO_MANY_PIXELS = "TOO_MANY_PIXELS"
    TOO_MANY_BYTES = "TOO_MANY_BYTES"
    EMPTY_INPUT = "EMPTY_INPUT"
    SOURCE_MISSING = "SOURCE_MISSING"
    ACCESS_DENIED = "ACCESS_DENIED"
    INVALID_EVENT = "INVALID_EVENT"
    INVALID_SPEC = "INVALID_SPEC"
    # configuration (raised at cold start; never per record)
    INVALID_CONFIG = "INVALID_CONFIG"
    UNKNOWN_BACKEND = "UNKNOWN_BACKEND"
    # retryable: a later attempt may succeed
    THROTTLED = "THROTTLED"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    TIMEOUT = "TIMEOUT"
    STORAGE_ERROR = "STORAGE_ERROR"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"  # MemoryError: another execution environment may have the memory
    # an exception outside decoding we did not classify (retried; reaches the DLQ with this code on the last receive)
    UNEXPECTED = "UNEXPECTED"


class ThumbnailError(Exception):
    """Base of every error we raise on purpose; `code` is stable, `message` is for humans."""

    code: ErrorCode = ErrorCode.UNEXPECTED
    retryable: bool = True

    def __init__(self, message: str, *, code: ErrorCode | str | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = ErrorCode(code)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "message": self.message}


class PermanentError(ThumbnailError):
    """Retrying cannot help: the record goes to the DLQ at once and is acknowledged."""

    retryable = False
    code = ErrorCode.CORRUPT_IMAGE


class RetryableError(ThumbnailError):
    """A later attempt may succeed: the record is reported in batchItemFailures."""

    retryable = True
    code = ErrorCode.UPSTREAM_ERROR


class CorruptImage(PermanentError):
    code = ErrorCode.CORRUPT_IMAGE


class UnsupportedFormat(PermanentError):
    code = ErrorCode.UNSUPPORTED_FORMAT


class TooManyPixels(PermanentError):
    code = ErrorCode.TOO_MANY_PIXELS


class TooManyBytes(PermanentError):
    code = ErrorCode.TOO_MANY_BYTES


class EmptyInput(PermanentError):
    code = ErrorCode.EMPTY_INPUT


class SourceMissing(PermanentError):
    code = ErrorCode.SOURCE_MISSING


class AccessDenied(PermanentError):
    code = ErrorCode.ACCESS_DENIED


class InvalidEvent(PermanentError):
    code = ErrorCode.INVALID_EVENT


class InvalidSpec(PermanentError):
    code = ErrorCode.INVALID_SPEC


class ConfigError(ThumbnailError):
    """Invalid settings: raised at cold start so a misconfigured function fails loudly, never per record."""

    code = ErrorCode.INVALID_CONFIG
    retryable = False

    def __init__(self, message: str, *, field: str = "", code: ErrorCode | str | None = None) -> None:
        super().__init__(message, code=code, field=field)
        self.field = field


class Throttled(RetryableError):
    code = ErrorCode.THROTTLED


class UpstreamError(RetryableError):
    code = ErrorCode.UPSTREAM_ERROR


class StorageTimeout(RetryableError):
    code = ErrorCode.TIMEOUT


class ResourceExhausted(RetryableError):
    code = ErrorCode.RESOURCE_EXHAUSTED


def exception_type(exc: BaseException) -> str:
    """`IndexError`, `struct.error`, `pyvips.error.Error`: the builtin name, else qualified by its module."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def cause_text(exc: BaseException) -> str:
    """`Type: first line of the message` (libvips errors span several lines)."""
    lines = str(exc).strip().splitlines()
    return f"{exception_type(exc)}: {lines[0]}" if lines else exception_type(exc)


def decode_failure(exc: Exception, fmt: str, who: str = "decoding") -> ThumbnailError:
    """Classify an exception raised while probing, decoding or transforming source bytes.

    It will repeat on the same bytes, whatever its type (IndexError, struct.error, zlib.error, an OSError or
    SyntaxError from a Pillow plugin, pyvips.Error, ...): permanent CORRUPT_IMAGE with the original type in the
    message. Only MemoryError stays retryable (RESOURCE_EXHAUSTED). Our own errors pass through unchanged.
    """
    if isinstance(exc, ThumbnailError):
        return exc
    if isinstance(exc, MemoryError):
        return ResourceExhausted(
            f"Expected enough memory to decode the {fmt.upper()} source but {who} raised {cause_text(exc)}"
        )
    return CorruptImage(
        f"Expected a decodable {fmt.upper()} for the source object but {who} raised {cause_text(exc)}",
        cause=exception_type(exc),
    )


@contextmanager
def decode_guard(fmt: str, who: str = "decoding") -> Iterator[None]:
    """Wrap the decode/transform phase: any Exception inside becomes `decode_failure(...)`, chained to its cause."""
    try:
        yield
    except ThumbnailError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure on the source bytes is classified, none escapes raw
        raise decode_failure(exc, fmt, who) from exc


def expected(what: str, for_: str, received: object) -> str:
    """The one shape of every validation message: "Expected X for Y but received Z"."""
    return f"Expected {what} for {for_} but received {received!r}"
