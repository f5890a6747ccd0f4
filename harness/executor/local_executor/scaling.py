"""How many SQS batches of one event-source mapping may run at once (pure: no LocalStack import)."""

from __future__ import annotations

from collections.abc import Mapping


def lanes_for(esm_config: Mapping, default: int, cap: int) -> int:
    """ScalingConfig.MaximumConcurrency when set (else `default`), never more than `cap`, at least 1."""
    requested = (esm_config.get("ScalingConfig") or {}).get("MaximumConcurrency")
    wanted = int(requested) if requested else default
    return max(1, min(wanted, cap))
