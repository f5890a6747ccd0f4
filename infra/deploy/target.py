"""Where a deploy goes: an endpoint (emulator) or AWS, its region and credentials, and the boto3 clients bound to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from common.credentials import TEST_ACCESS_KEY, TEST_SECRET_KEY
from common.errors import expected
from infra.errors import InfraError, InfraErrorCode
from infra.stack import Stack, build_stack

_CLIENT_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60)


@dataclass(frozen=True)
class Target:
    """An endpoint to deploy to: an emulator (endpoint set, its test credentials unless `session` says otherwise) or
    AWS (endpoint None; credentials from `aws_profile`, or from the standard chain, or from `session`)."""

    region: str
    endpoint: str | None = None
    aws_profile: str | None = None
    session: boto3.Session | None = None  # explicit credentials (e.g. an assumed role); wins over aws_profile

    def __post_init__(self) -> None:
        if not self.region:
            raise InfraError(InfraErrorCode.INVALID_TARGET, expected("a region", "deploy target", self.region))
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise InfraError(
                InfraErrorCode.INVALID_TARGET, expected("an http(s):// URL", "deploy endpoint", self.endpoint)
            )

    @property
    def is_emulator(self) -> bool:
        return self.endpoint is not None

    @property
    def label(self) -> str:
        """How reports and outputs name the target: the endpoint URL, or "aws"."""
        return self.endpoint or "aws"

    @classmethod
    def emulator(cls, endpoint: str, region: str) -> Target:
        return cls(region=region, endpoint=endpoint)

    @classmethod
    def aws(cls, region: str, profile: str | None = None, session: boto3.Session | None = None) -> Target:
        return cls(region=region, endpoint=None, aws_profile=profile, session=session)

    def boto3_session(self) -> boto3.Session:
        if self.session is not None:
            return self.session
        if self.is_emulator:
            return boto3.Session(
                aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY, region_name=self.region
            )
        return boto3.Session(profile_name=self.aws_profile, region_name=self.region)


class Clients:
    """boto3 clients for one target, created on first use: `clients("s3")`."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._session = target.boto3_session()
        self._cache: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = self._session.client(
                service, endpoint_url=self.target.endpoint, region_name=self.target.region, config=_CLIENT_CONFIG
            )
        return self._cache[service]

    def account(self) -> str:
        return str(self("sts").get_caller_identity()["Account"])


def stack_for_target(
    clients: Clients, stack_name: str, profile: str, overrides: Mapping[str, str | int | bool] | None = None
) -> Stack:
    """The definition with this target's account/region; bucket names qualified with account+region on AWS."""
    target = clients.target
    account = clients.account()
    qualifier = "" if target.is_emulator else f"{account}-{target.region}"
    return build_stack(
        stack_name, profile, overrides=overrides, account=account, region=target.region, qualifier=qualifier
    )


def qualifier_of(stack: Stack) -> str:
    """The bucket-name qualifier a stack was built with ("" on the emulator, "<account>-<region>" on AWS)."""
    suffix = "-input"
    middle = stack.input_bucket.name[len(stack.name) : -len(suffix)]
    return middle[1:] if middle.startswith("-") else ""


def every_name_of(stack: Stack) -> Stack:
    """The same stack in its largest shape (notifier topology, output bucket): every name any profile could use."""
    full = build_stack(
        stack.name,
        "default",
        overrides={"topology": "notifier"},
        account=stack.account,
        region=stack.region,
        qualifier=qualifier_of(stack),
    )
    assert full.notifier is not None
    return full
