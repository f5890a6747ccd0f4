"""Notifier settings from the environment (NOTIFIER_QUEUE_URL) at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

QUEUE_URL_ENV = "NOTIFIER_QUEUE_URL"


class NotifierConfigError(ValueError):
    """Invalid notifier settings (stable code INVALID_CONFIG)."""

    code = "INVALID_CONFIG"


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    queue_url: str

    def __post_init__(self) -> None:
        if not isinstance(self.queue_url, str) or not self.queue_url.startswith(("http://", "https://")):
            raise NotifierConfigError(
                f"Expected an SQS queue URL (http[s]://...) for {QUEUE_URL_ENV} but received {self.queue_url!r}"
            )

    def to_env(self) -> dict[str, str]:
        return {QUEUE_URL_ENV: self.queue_url}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifierSettings:
        source = os.environ if env is None else env
        return cls(queue_url=source.get(QUEUE_URL_ENV, ""))
