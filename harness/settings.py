"""Harness settings read from the environment, once (the only harness module that reads os.environ)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.credentials import DEFAULT_REGION
from common.errors import CodedError, expected
from common.paths import ROOT

DEFAULT_PORT = 4566


class SettingsError(CodedError, ValueError):
    """A HARNESS_* / EMULATOR variable has a value the harness cannot use (code SETTINGS_INVALID; also a ValueError
    for callers that validate settings among other values)."""


@dataclass(frozen=True)
class HarnessSettings:
    """Where the emulator listens and where its state lives.

    HARNESS_PORT     gateway port on 127.0.0.1 (default 4566)
    HARNESS_HOME     state folder: logs, pid file, LocalStack filesystem, deploy outputs (default <repo>/.harness)
    HARNESS_REGION   AWS region used against the emulator (default us-east-1)
    EMULATOR         'embedded' (LocalStack on the host, default) or 'docker' (docker-compose.yml)
    HARNESS_ENDPOINT override the endpoint URL entirely (e.g. an emulator on another port you started yourself)
    """

    port: int = DEFAULT_PORT
    home: Path = field(default_factory=lambda: ROOT / ".harness")
    region: str = DEFAULT_REGION
    emulator: str = "embedded"
    endpoint_override: str | None = None

    @property
    def endpoint(self) -> str:
        return self.endpoint_override or f"http://127.0.0.1:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HarnessSettings:
        env = os.environ if env is None else env
        port_text = env.get("HARNESS_PORT", str(DEFAULT_PORT))
        try:
            port = int(port_text)
        except ValueError:
            raise SettingsError("SETTINGS_INVALID", expected("an integer", "HARNESS_PORT", port_text)) from None
        if not 0 < port < 65536:
            raise SettingsError("SETTINGS_INVALID", expected("a TCP port (1-65535)", "HARNESS_PORT", port))
        emulator = env.get("EMULATOR", "embedded") or "embedded"
        if emulator not in ("embedded", "docker"):
            raise SettingsError("SETTINGS_INVALID", expected("'embedded' or 'docker'", "EMULATOR", emulator))
        home = Path(env["HARNESS_HOME"]).resolve() if env.get("HARNESS_HOME") else ROOT / ".harness"
        return cls(
            port=port,
            home=home,
            region=env.get("HARNESS_REGION", DEFAULT_REGION) or DEFAULT_REGION,
            emulator=emulator,
            endpoint_override=env.get("HARNESS_ENDPOINT") or None,
        )
