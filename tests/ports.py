"""Test helper: free loopback ports for emulators a test starts beside the session's own (never HARNESS_PORT)."""

from __future__ import annotations

import socket


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_block(n: int) -> int:
    """A port p with p .. p+n-1 all free now (for a tool that takes a base port and uses the next ones too)."""
    for _ in range(200):
        base = free_port()
        if base + n - 1 <= 65535 and all(_is_free(base + i) for i in range(n)):
            return base
    raise RuntimeError(f"no block of {n} free loopback ports found")
