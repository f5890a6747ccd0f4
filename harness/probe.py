"""Whether something answers on a loopback port, and LocalStack's health document there (no process knowledge)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

HEALTH_PATH = "/_localstack/health"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def health(endpoint: str, timeout: float = 2.0) -> dict | None:
    """LocalStack's health document, or None when nothing (or something else) answers."""
    try:
        with urllib.request.urlopen(endpoint + HEALTH_PATH, timeout=timeout) as resp:  # noqa: S310 (loopback)
            doc = json.loads(resp.read().decode())
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return doc if isinstance(doc, dict) and "services" in doc else None
