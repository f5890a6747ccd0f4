"""The notifier's SQS message (one created object + its metadata); thumbnailer.events parses the same shape."""

from __future__ import annotations

from typing import Any

MESSAGE_TYPE = "thumbnail-request"
MESSAGE_VERSION = 1


def build_message(
    bucket: str,
    key: str,
    *,
    etag: str = "",
    version_id: str = "",
    size: int = -1,
    metadata: dict[str, str] | None = None,
    event_time: str = "",
) -> dict[str, Any]:
    """`key` is the decoded key (not URL-encoded); `metadata` is the object's user metadata (run-id, ...)."""
    meta = dict(metadata or {})
    return {
        "type": MESSAGE_TYPE,
        "version": MESSAGE_VERSION,
        "source": {"bucket": bucket, "key": key, "etag": etag.strip('"'), "version_id": version_id, "size": size},
        "run_id": meta.get("run-id", ""),
        "metadata": meta,
        "event_time": event_time,
    }
