"""Where `python -m infra` deploys when not told otherwise, read from the environment once (infra's only env reader).

The variables are the harness's (README "Settings"): HARNESS_ENDPOINT, else http://127.0.0.1:$HARNESS_PORT (4566);
HARNESS_REGION (us-east-1); HARNESS_HOME (the state folder, default <repo>/.harness) whose outputs/ holds the files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.credentials import DEFAULT_REGION
from common.errors import expected
from common.paths import ROOT
from infra.errors import InfraError, InfraErrorCode

DEFAULT_PORT = 4566
DEFAULT_STATE_DIR = ROOT / ".harness"


@dataclass(frozen=True)
class DeployDefaults:
    """The emulator endpoint, region and state folder a deploy uses unless its caller names others."""

    endpoint: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    region: str = DEFAULT_REGION
    state_dir: Path = DEFAULT_STATE_DIR

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DeployDefaults:
        env = os.environ if env is None else env
        port_text = env.get("HARNESS_PORT", str(DEFAULT_PORT)) or str(DEFAULT_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InfraError(InfraErrorCode.INVALID_TARGET, expected("a TCP port (1-65535)", "HARNESS_PORT", port_text))
        return cls(
            endpoint=env.get("HARNESS_ENDPOINT") or f"http://127.0.0.1:{int(port_text)}",
            region=env.get("HARNESS_REGION") or DEFAULT_REGION,
            state_dir=Path(env["HARNESS_HOME"]).resolve() if env.get("HARNESS_HOME") else DEFAULT_STATE_DIR,
        )
