"""Errors raised by infra (definition, lint, packaging, deploy, outputs, CDK), each with a stable code."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from common.errors import CodedError

if TYPE_CHECKING:
    from infra.artifact.report import Problem


class InfraErrorCode(StrEnum):
    """Stable codes for infra failures (never rename: scripts and tests match on them)."""

    INVALID_STACK = "INVALID_STACK"  # a stack definition or override that cannot describe a real stack
    UNKNOWN_PROFILE = "UNKNOWN_PROFILE"
    INVALID_OVERRIDE = "INVALID_OVERRIDE"
    INVALID_TARGET = "INVALID_TARGET"  # an endpoint/region/state folder that cannot be deployed to
    LINT_FAILED = "LINT_FAILED"  # lint found errors: deploy refused
    PACKAGE_FAILED = "PACKAGE_FAILED"
    DEPLOY_FAILED = "DEPLOY_FAILED"  # an AWS call failed while applying the definition
    DESTROY_FAILED = "DESTROY_FAILED"
    NOT_DEPLOYED = "NOT_DEPLOYED"  # outputs asked for a stack that has no outputs file
    OUTPUTS_INVALID = "OUTPUTS_INVALID"  # an outputs document that is not JSON or lacks a field
    OUTPUTS_SCHEMA_UNSUPPORTED = "OUTPUTS_SCHEMA_UNSUPPORTED"  # an outputs document of a schema version we can't read
    CDK_UNAVAILABLE = "CDK_UNAVAILABLE"  # node or the aws-cdk CLI is missing
    CDK_FAILED = "CDK_FAILED"


class InfraError(CodedError):
    """A failure with a stable `code` (an InfraErrorCode) and a message that says what was expected and received."""

    def __init__(self, code: InfraErrorCode | str, message: str) -> None:
        super().__init__(str(code), message)


class ArtifactErrorCode(StrEnum):
    """Stable codes for building or checking the Lambda artifact."""

    INVALID_ARCH = "ARTIFACT_INVALID_ARCH"
    INVALID_PYTHON_VERSION = "ARTIFACT_INVALID_PYTHON_VERSION"
    MISSING = "ARTIFACT_MISSING"  # no zip where one was named
    HANDLER_MISSING = "ARTIFACT_HANDLER_MISSING"  # no thumbnailer package to bundle
    PIP_FAILED = "ARTIFACT_PIP_FAILED"
    PIP_TIMEOUT = "ARTIFACT_PIP_TIMEOUT"
    DUPLICATE = "ARTIFACT_DUPLICATE"  # two files for one path in the zip
    CHECK_FAILED = "ARTIFACT_CHECK_FAILED"  # the built zip failed a check (`problems` lists each)


class ArtifactError(CodedError):
    """Building or checking the artifact failed; `problems` lists every failed check (infra.artifact.report.Problem)."""

    def __init__(self, code: ArtifactErrorCode | str, message: str, *, problems: Sequence[Problem] = ()) -> None:
        super().__init__(str(code), message)
        self.problems = tuple(problems)

    def __str__(self) -> str:
        return "\n".join([f"{self.code}: {self.message}"] + [f"  - {p}" for p in self.problems])
