"""Calling AWS while deploying: a ClientError becomes an InfraError naming the operation; refused creates retried."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from common.waiting import WaitTimeout, wait_until
from infra.errors import InfraError, InfraErrorCode

FUNCTION_READY_TIMEOUT_S = 180.0  # a function Active, a mapping Enabled or gone
ROLE_PROPAGATION_TIMEOUT_S = 60.0


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError ("NoSuchEntity", "ResourceNotFoundException", ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def aws_call(what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call boto3; turn a ClientError into an InfraError (DEPLOY_FAILED) that names the operation and the resource."""
    try:
        return call(*args, **kwargs)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise InfraError(
            InfraErrorCode.DEPLOY_FAILED, f"{what}: {err.get('Code', '?')}: {err.get('Message', exc)}"
        ) from exc


def create_with_retry(what: str, call: Callable[[], Any]) -> Any:
    """Create something that may briefly be refused: on AWS a new role or its policy takes seconds to propagate
    (InvalidParameterValueException about the role/permissions); on LocalStack a just-deleted mapping can still
    block its replacement (ResourceConflictException). Other errors fail at once."""
    result: list[Any] = []

    def attempt() -> bool:
        try:
            result.append(call())
            return True
        except ClientError as exc:
            message = str(exc).lower()
            if error_code(exc) == "InvalidParameterValueException" and ("role" in message or "permission" in message):
                return False
            if error_code(exc) == "ResourceConflictException":
                return False
            raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"{what}: {exc}") from exc

    try:
        wait_until(attempt, ROLE_PROPAGATION_TIMEOUT_S, interval=0.5, what=what, ignore=(ClientError,))
    except WaitTimeout as exc:
        raise InfraError(InfraErrorCode.DEPLOY_FAILED, f"{what}: still refused after {exc.timeout:.0f} s") from exc
    return result[-1]


def delete_if_present(what: str, absent_code: str, delete: Callable[[], Any]) -> bool:
    """Run `delete`; False when AWS says the resource is already gone (`absent_code`), DESTROY_FAILED otherwise."""
    try:
        delete()
    except ClientError as exc:
        if error_code(exc) != absent_code:
            raise InfraError(InfraErrorCode.DESTROY_FAILED, f"delete {what}: {exc}") from exc
        return False
    return True
