"""The notifier's boto3 use: read an object's metadata (HEAD) and send one SQS message."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

SDK_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=15)


class ObjectGone(Exception):
    """The object was deleted between the event and the HEAD (code SOURCE_MISSING)."""

    code = "SOURCE_MISSING"


class AwsPorts:
    """HEAD on S3 and send_message on SQS, clients created lazily (endpoint from AWS_ENDPOINT_URL if set)."""

    def __init__(self, s3: Any | None = None, sqs: Any | None = None) -> None:
        self._s3, self._sqs = s3, sqs

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        if self._s3 is None:
            self._s3 = boto3.client("s3", config=SDK_CONFIG)
        try:
            resp = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                raise ObjectGone(f"Expected s3://{bucket}/{key} to exist but received 404") from exc
            raise
        return {
            "etag": str(resp.get("ETag", "")).strip('"'),
            "version_id": str(resp.get("VersionId") or ""),
            "size": int(resp.get("ContentLength", -1)),
            "metadata": {str(k).lower(): str(v) for k, v in (resp.get("Metadata") or {}).items()},
        }

    def send(self, queue_url: str, message: dict[str, Any]) -> None:
        if self._sqs is None:
            self._sqs = boto3.client("sqs", config=SDK_CONFIG)
        attrs = {"type": {"DataType": "String", "StringValue": str(message["type"])}}
        if message.get("run_id"):
            attrs["run_id"] = {"DataType": "String", "StringValue": str(message["run_id"])}
        self._sqs.send_message(
            QueueUrl=queue_url, MessageBody=json.dumps(message, ensure_ascii=False), MessageAttributes=attrs
        )
