"""Comparing what is deployed with what is wanted: normalized policies and notifications, attribute diffs as text."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote


def normalize_policy(value: Any) -> Any:
    """A policy document as a dict with list-valued Action/Resource (IAM and SQS return str or dict, str or list)."""
    if isinstance(value, str):
        value = json.loads(value if value.lstrip().startswith("{") else unquote(value))
    statements = value.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    norm = []
    for st in statements:
        st = dict(st)
        for key in ("Action", "Resource"):
            if isinstance(st.get(key), str):
                st[key] = [st[key]]
            if key in st:
                st[key] = sorted(st[key])
        norm.append(st)
    return {"Version": value.get("Version"), "Statement": norm}


def normalize_queue_attribute(key: str, value: Any) -> Any:
    """A queue attribute in a comparable form (policies normalized, redrive policy as a small dict, else str)."""
    if value is None or value == "":
        return None
    if key == "Policy":
        return normalize_policy(value)
    if key == "RedrivePolicy":
        doc = json.loads(value) if isinstance(value, str) else dict(value)
        return {
            "deadLetterTargetArn": doc.get("deadLetterTargetArn"),
            "maxReceiveCount": int(doc.get("maxReceiveCount", 0)),
        }
    return str(value)


NotificationKey = tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...]]


def normalize_notifications(conf: dict[str, Any]) -> list[NotificationKey]:
    """A bucket notification configuration as sorted (kind, target arn, events, filter rules) tuples."""
    out = []
    for key, arn_key in (
        ("QueueConfigurations", "QueueArn"),
        ("LambdaFunctionConfigurations", "LambdaFunctionArn"),
        ("TopicConfigurations", "TopicArn"),
    ):
        for c in conf.get(key, []) or []:
            rules = ((c.get("Filter") or {}).get("Key") or {}).get("FilterRules", [])
            out.append(
                (
                    key,
                    str(c.get(arn_key, "")),
                    tuple(sorted(c.get("Events", []))),
                    tuple(sorted((r["Name"].lower(), r["Value"]) for r in rules)),
                )
            )
    return sorted(out)


def diff_attributes(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{key: (current, desired)} for every desired key whose current value differs."""
    return {k: (current.get(k), v) for k, v in desired.items() if current.get(k) != v}


def describe_diff(changes: dict[str, tuple[Any, Any]]) -> str:
    """A diff as one change-report fragment: "MemorySize 1536 -> 2048, Environment changed"."""
    parts = []
    for key, (old, new) in changes.items():
        if new is None:
            parts.append(f"{key} removed")
        elif isinstance(new, (dict, list)) or isinstance(old, (dict, list)) or len(str(new)) > 60:
            parts.append(f"{key} changed")
        else:
            parts.append(f"{key} {old} -> {new}")
    return ", ".join(parts)
