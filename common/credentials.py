"""The emulator's well-known test credentials and default region (the emulator accepts anything, AWS accepts none)."""

from __future__ import annotations

TEST_ACCESS_KEY = "test"
TEST_SECRET_KEY = "test"
DEFAULT_REGION = "us-east-1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
