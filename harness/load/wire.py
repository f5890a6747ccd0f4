"""Wire parsing for the observer: DLQ messages, handler log lines and thumbnail metadata -> observation values.

Pure functions; the field names come from `thumbnailer.contract` (the handler writes them), plus the aliases other
log shapes use. The boto3 adapter (harness.load.storage) and the chaos harness call these on what they receive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from harness.load.model import REDRIVEN, UNPARSEABLE, DlqObservation, LogObservation, ThumbnailObservation
from thumbnailer import contract as c


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_id_of_key(key: str | None, input_prefix: str = c.DEFAULT_INPUT_PREFIX) -> str | None:
    """uploads/<run_id>/... -> run_id (the harness puts the run id first in every upload key)."""
    if not key or not key.startswith(input_prefix):
        return None
    head, sep, _ = key[len(input_prefix) :].partition("/")
    return head if sep else None


# ---- thumbnail metadata --------------------------------------------------------------------------------------
def _num(meta: Mapping[str, str], name: str) -> float | None:
    try:
        return float(meta[name])
    except (KeyError, ValueError):
        return None


def parse_thumbnail(
    key: str, size: str, derived_source: str, meta: Mapping[str, str] | None, last_modified_ms: float | None = None
) -> ThumbnailObservation:
    """A thumbnail object (its key's size and source, its metadata when read) -> observation."""
    meta = meta or {}
    encoded = meta.get(c.META_SOURCE_KEY)
    return ThumbnailObservation(
        key=key,
        size=size,
        source_key=c.decode_source_key(encoded) if encoded else derived_source,
        run_id=meta.get(c.META_RUN_ID),
        handler_start_ms=_num(meta, c.META_HANDLER_START_MS),
        resize_ms=_num(meta, c.META_RESIZE_MS),
        total_ms=_num(meta, c.META_TOTAL_MS),
        backend=meta.get(c.META_BACKEND),
        last_modified_ms=last_modified_ms,
    )


# ---- DLQ messages --------------------------------------------------------------------------------------------
def parse_dlq_message(
    message_id: str,
    body: str,
    attributes: Mapping[str, str] | None = None,
    message_attributes: Mapping[str, Any] | None = None,
    input_prefix: str = c.DEFAULT_INPUT_PREFIX,
) -> list[DlqObservation]:
    """A DLQ message -> observations: the handler's JSON document, or a redriven raw S3 event (one per record)."""
    attributes = attributes or {}
    mattrs = {k: (v.get("StringValue") if isinstance(v, Mapping) else v) for k, v in (message_attributes or {}).items()}
    sent = _float(attributes.get("SentTimestamp"))
    receives = _int(attributes.get("ApproximateReceiveCount"))
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        doc = None
    if isinstance(doc, dict) and (c.DLQ_ERROR in doc or c.ATTR_ERROR_CODE in mattrs):
        source: dict[str, Any] = doc[c.DLQ_SOURCE] if isinstance(doc.get(c.DLQ_SOURCE), dict) else {}
        error: dict[str, Any] = doc[c.DLQ_ERROR] if isinstance(doc.get(c.DLQ_ERROR), dict) else {}
        key = source.get("key")
        return [
            DlqObservation(
                message_id,
                key,
                mattrs.get(c.ATTR_RUN_ID) or doc.get(c.DLQ_RUN_ID) or run_id_of_key(key, input_prefix),
                str(error.get(c.DLQ_ERROR_CODE) or mattrs.get(c.ATTR_ERROR_CODE) or UNPARSEABLE),
                str(error.get(c.DLQ_ERROR_MESSAGE) or mattrs.get(c.ATTR_ERROR_MESSAGE) or ""),
                "handler",
                sent,
                # the source message's receive count the handler saw (the DLQ message's own count only says how
                # often observers peeked at it)
                _int(doc.get("receive_count")),
            )
        ]
    if isinstance(doc, dict) and doc.get("Event") == "s3:TestEvent":
        return []
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        out = []
        for record in doc["Records"]:
            key_raw = (((record or {}).get("s3") or {}).get("object") or {}).get("key")
            key = unquote_plus(key_raw) if isinstance(key_raw, str) else None
            out.append(
                DlqObservation(
                    message_id,
                    key,
                    run_id_of_key(key, input_prefix),
                    REDRIVEN,
                    f"redriven after {receives} receives" if receives else "redriven",
                    "redrive",
                    sent,
                    receives,
                )
            )
        return out
    return [
        DlqObservation(
            message_id,
            None,
            mattrs.get(c.ATTR_RUN_ID),
            mattrs.get(c.ATTR_ERROR_CODE) or UNPARSEABLE,
            str(body)[:200],
            "unknown",
            sent,
            receives,
        )
    ]


# ---- handler log lines ---------------------------------------------------------------------------------------
# the handler's own field first (thumbnailer.contract), then aliases other log shapes use
_KEY_FIELDS = ("source_key", c.LOG_KEY, "object_key", "s3_key")
_LOG_FIELDS = {
    "run_id": (c.LOG_RUN_ID, c.META_RUN_ID, "runId"),
    "message_id": (c.LOG_MESSAGE_ID, "messageId", "sqs_message_id"),
    "receive_count": (c.LOG_RECEIVE_COUNT, "approximate_receive_count", "ApproximateReceiveCount"),
    "sent_ms": (c.LOG_SENT_TIMESTAMP, "SentTimestamp", "sent_ms", "enqueued_ms"),
    "first_receive_ms": (c.LOG_FIRST_RECEIVE_MS, "ApproximateFirstReceiveTimestamp", "first_receive_timestamp"),
    "error_code": ("error_code", c.LOG_CODE),
    "event": ("event", "action", c.LOG_OUTCOME, "message", "msg"),
}

_TS = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[,.](\d{1,6}))?\s*(Z|[+-]\d{2}:?\d{2})?$")


def parse_timestamp_ms(text: Any) -> float | None:
    """'2026-11-27 23:30:01,123+0000' (Powertools), ISO 8601 or epoch ms -> epoch ms; None if unreadable."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text) if text > 1e11 else float(text) * 1000
    if not isinstance(text, str):
        return None
    m = _TS.match(text.strip())
    if not m:
        return None
    date, clock, frac, zone = m.groups()
    zone = "+0000" if zone in (None, "Z") else zone.replace(":", "")
    try:
        dt = datetime.strptime(f"{date} {clock} {zone}", "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        return None
    return dt.timestamp() * 1000 + (int(frac.ljust(6, "0")) / 1000 if frac else 0.0)


def _flatten(doc: Mapping[str, Any], into: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    for k, v in doc.items():
        if isinstance(v, Mapping) and depth < 3:
            _flatten(v, into, depth + 1)
            if k == "source" and "key" in v:
                into.setdefault("source_key", v["key"])
        else:
            into.setdefault(k, v)
    return into


def parse_log_line(message: str, timestamp_ms: float) -> LogObservation | None:
    """A structured (JSON) handler log line about a record -> observation; anything else -> None."""
    start = message.find("{")
    if start < 0:
        return None
    try:
        doc = json.loads(message[start:])
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    flat = _flatten(doc, {})
    key = next((flat[f] for f in _KEY_FIELDS if isinstance(flat.get(f), str) and flat.get(f)), None)
    if key is None:
        return None
    found = {
        name: next((flat[f] for f in fields if flat.get(f) is not None), None) for name, fields in _LOG_FIELDS.items()
    }
    # the handler's own record line carries the decoded key ('+' and '%' are literal); other shapes may carry the
    # form-encoded key of an S3 event
    own = doc.get("message") == c.LOG_MESSAGE and doc.get(c.LOG_KEY) == key
    return LogObservation(
        source_key=key if own or not ("%" in key or "+" in key) else unquote_plus(key),
        timestamp_ms=timestamp_ms,
        run_id=found["run_id"],
        message_id=found["message_id"],
        receive_count=_int(found["receive_count"]),
        sent_ms=_float(found["sent_ms"]),
        first_receive_ms=_float(found["first_receive_ms"]),
        error_code=found["error_code"] if isinstance(found["error_code"], str) else None,
        event=str(found["event"]) if found["event"] is not None else None,
        logged_ms=parse_timestamp_ms(flat.get(c.LOG_TIMESTAMP)),
    )
