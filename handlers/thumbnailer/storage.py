"""The only boto3 user of the thumbnailer: S3 object store and SQS dead-letter sink, SDK errors mapped to ours."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .errors import (
    AccessDenied,
    InvalidEvent,
    SourceMissing,
    StorageTimeout,
    Throttled,
    ThumbnailError,
    TooManyBytes,
    UpstreamError,
)
from .pipeline import SourceObject

# Retries inside the SDK stay short: SQS redelivery is the outer retry loop.
# parameter_validation=False: botocore's client-side check of every call's parameters against the service model
# (a walk of the input shape per call) is skipped. Every parameter is built here from typed values (str bucket, key,
# metadata; bytes bodies); S3/SQS validate them anyway, and an invalid one still ends as a coded error (ClientError
# -> map_error) instead of ParamValidationError (BotoCoreError -> map_error): same codes, same retry decision.
# Checksums are left at botocore's defaults (CRC32 on PUT, validated on GET): they cost ~0.05 ms a call.
SDK_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30, parameter_validation=False
)
# boto3.client() builds on boto3's default session, which is not thread-safe: with overlap on, the first invocation's
# fetchers and uploaders would otherwise build the client at the same time. One lock for every adapter's first use.
_CLIENT_LOCK = threading.Lock()


THROTTLING_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestThrottled",
    "ProvisionedThroughputExceededException",
}
MISSING_CODES = {"NoSuchKey", "NoSuchVersion", "NotFound", "404", "NoSuchBucket"}
DENIED_CODES = {"AccessDenied", "403", "Forbidden", "InvalidObjectState", "AllAccessDisabled"}
MAX_ATTRIBUTE_CHARS = 1024


def map_error(exc: Exception, action: str) -> ThumbnailError:
    """A botocore/boto3 exception -> our error with a stable code (permanent or retryable)."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        got = f"{code or 'HTTP'} ({status or '?'})" + (f": {err['Message']}" if err.get("Message") else "")
        msg = f"Expected a successful {action} but received {got}"
        if code in THROTTLING_CODES or status == 429 or (status == 503 and code in ("SlowDown", "ServiceUnavailable")):
            return Throttled(msg)
        if code in MISSING_CODES or status == 404:
            return SourceMissing(f"Expected an existing object for {action} but received {got}")
        if code in DENIED_CODES or status == 403:
            return AccessDenied(f"Expected access for {action} but received {got}")
        if code in ("InvalidArgument", "InvalidRequest") and action.startswith("get"):
            return InvalidEvent(msg)
        if status >= 500 or code in ("InternalError", "ServiceUnavailable"):
            return UpstreamError(msg)
        return UpstreamError(msg)
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return StorageTimeout(f"Expected a response for {action} but received a timeout: {exc}")
    if isinstance(exc, (BotoConnectionError, BotoCoreError)):
        return UpstreamError(f"Expected a connection for {action} but received {type(exc).__name__}: {exc}")
    return UpstreamError(f"Expected a successful {action} but received {type(exc).__name__}: {exc}")


class S3Store:
    """ObjectStore over boto3 S3 (endpoint from AWS_ENDPOINT_URL when set, as boto3 does itself)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            with _CLIENT_LOCK:
                if self._client is None:
                    self._client = boto3.client("s3", config=SDK_CONFIG)
        return self._client

    def get(self, bucket: str, key: str, *, version_id: str = "", max_bytes: int | None = None) -> SourceObject:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            resp = self.client.get_object(**kwargs)
            length = int(resp.get("ContentLength", -1))
            if max_bytes is not None and length > max_bytes:
                resp["Body"].close()  # never download what we would reject
                raise TooManyBytes(
                    f"Expected at most {max_bytes} bytes for s3://{bucket}/{key} but received {length} bytes"
                )
            data = resp["Body"].read()
        except ThumbnailError:
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK failure is mapped to a coded error
            raise map_error(exc, f"get s3://{bucket}/{key}") from exc
        return SourceObject(
            bucket=bucket,
            key=key,
            data=data,
            etag=str(resp.get("ETag", "")).strip('"'),
            version_id=str(resp.get("VersionId") or ""),
            content_type=str(resp.get("ContentType", "")),
            metadata={str(k).lower(): str(v) for k, v in (resp.get("Metadata") or {}).items()},
        )

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None:
        try:
            self.client.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl=cache_control,
                Metadata=metadata,
            )
        except Exception as exc:  # noqa: BLE001
            err = map_error(exc, f"put s3://{bucket}/{key}")
            # a failed write is never the source's fault: retry it
            raise err if err.retryable else UpstreamError(err.message, code="STORAGE_ERROR") from exc


class SqsDeadLetter:
    """DeadLetterSink over boto3 SQS send_message; message attributes are strings (empty ones are omitted)."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            with _CLIENT_LOCK:
                if self._client is None:
                    self._client = boto3.client("sqs", config=SDK_CONFIG)
        return self._client

    def send(self, body: str, attributes: dict[str, str]) -> None:
        attrs = {k: {"DataType": "String", "StringValue": v[:MAX_ATTRIBUTE_CHARS]} for k, v in attributes.items() if v}
        try:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attrs)
        except Exception as exc:  # noqa: BLE001
            err = map_error(exc, "send to DLQ")
            raise err if err.retryable else UpstreamError(err.message, code="STORAGE_ERROR") from exc
