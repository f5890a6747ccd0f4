"""boto3 clients bound to the emulator endpoint (the harness side; handlers build their own clients)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from common.credentials import TEST_ACCESS_KEY, TEST_SECRET_KEY
from harness.settings import HarnessSettings

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=120)


@lru_cache(maxsize=64)
def _session(region: str) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY, region_name=region
    )


def client(service: str, settings: HarnessSettings | None = None, **kwargs: Any) -> Any:
    """A boto3 client for `service` at the emulator of `settings` (default: from the environment)."""
    settings = settings or HarnessSettings.from_env()
    return _session(settings.region).client(
        service, endpoint_url=settings.endpoint, config=kwargs.pop("config", _CONFIG), **kwargs
    )


def cli_environment(settings: HarnessSettings) -> dict[str, str]:
    """Variables that point the AWS CLI / awslocal at the emulator."""
    return {
        "AWS_ENDPOINT_URL": settings.endpoint,
        "LOCALSTACK_HOST": f"127.0.0.1:{settings.port}",
        "EDGE_PORT": str(settings.port),
        "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
        "AWS_DEFAULT_REGION": settings.region,
    }
