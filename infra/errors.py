"""Errors raised by infra (definition, lint, packaging, deploy, CDK), each with a stable code."""

from __future__ import annotations

from enum import StrEnum


class InfraErrorCode(StrEnum):
    """Stable codes for infra failures (never rename: scripts and tests match on them)."""

    INVALID_STACK = "INVALID_STACK"  # a stack definition or override that cannot describe a real stack
    UNKNOWN_PROFILE = "UNKNOWN_PROFILE"
    INVALID_OVERRIDE = "INVALID_OVERRIDE"
    LINT_FAILED = "LINT_FAILED"  # lint found errors: deploy refused
    PACKAGE_FAILED = "PACKAGE_FAILED"
    DEPLOY_FAILED = "DEPLOY_FAILED"  # an AWS call failed while applying the definition
    DESTROY_FAILED = "DESTROY_FAILED"
    NOT_DEPLOYED = "NOT_DEPLOYED"  # outputs asked for a stack that has no outputs file
    CDK_UNAVAILABLE = "CDK_UNAVAILABLE"  # node or the aws-cdk CLI is missing
    CDK_FAILED = "CDK_FAILED"


class InfraError(Exception):
    """A failure with a stable `code` and a message that says what was expected and what was received."""

    def __init__(self, code: InfraErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def expected(what: str, for_: str, received: object) -> str:
    """The one shape of validation messages: "Expected X for Y but received Z"."""
    return f"Expected {what} for {for_} but received {received!r}"
