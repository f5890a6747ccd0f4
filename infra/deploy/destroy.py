"""Delete every resource a stack's names cover, whatever profile or topology deployed them, if present."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from common.waiting import wait_until
from infra.deploy.calls import FUNCTION_READY_TIMEOUT_S, aws_call, delete_if_present, error_code
from infra.deploy.report import DestroyReport
from infra.deploy.target import Clients, every_name_of
from infra.errors import InfraError, InfraErrorCode
from infra.stack import Stack


def empty_bucket(s3: Any, name: str) -> int:
    """Delete every object version and delete marker of a bucket; how many were deleted."""
    count = 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=name):
        objects = [
            {"Key": o["Key"], "VersionId": o["VersionId"]}
            for o in (page.get("Versions", []) or []) + (page.get("DeleteMarkers", []) or [])
        ]
        for i in range(0, len(objects), 1000):
            aws_call(
                f"empty bucket {name}",
                s3.delete_objects,
                Bucket=name,
                Delete={"Objects": objects[i : i + 1000], "Quiet": True},
            )
            count += len(objects[i : i + 1000])
    return count


def delete_mapping(lam: Any, uuid: str) -> None:
    """Delete an event source mapping and wait until it is gone (deletion is asynchronous)."""
    aws_call(f"delete event source mapping {uuid}", lam.delete_event_source_mapping, UUID=uuid)

    def gone() -> bool:
        try:
            lam.get_event_source_mapping(UUID=uuid)
            return False
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        # LocalStack answers 404 to Get while the mapping still blocks a new one until its poller has stopped
        listed = lam.get_paginator("list_event_source_mappings").paginate().build_full_result()
        return all(e["UUID"] != uuid for e in listed.get("EventSourceMappings", []))

    wait_until(gone, FUNCTION_READY_TIMEOUT_S, interval=0.1, what=f"event source mapping {uuid} deleted")


def delete_function_resources(clients: Clients, name: str, log_group: str, role: str) -> list[str]:
    """Delete a function, its log group and its role (each if present); what was deleted."""
    lam, iam, logs = clients("lambda"), clients("iam"), clients("logs")

    def delete_role() -> None:
        for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role, PolicyName=policy)
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=role, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=role)

    steps: list[tuple[str, str, Callable[[], Any]]] = [
        (f"function {name}", "ResourceNotFoundException", lambda: lam.delete_function(FunctionName=name)),
        (f"log group {log_group}", "ResourceNotFoundException", lambda: logs.delete_log_group(logGroupName=log_group)),
        (f"role {role}", "NoSuchEntity", delete_role),
    ]
    return [what for what, absent, delete in steps if delete_if_present(what, absent, delete)]


def destroy(stack: Stack, clients: Clients) -> DestroyReport:
    """Delete every resource the stack's names cover, whatever profile or topology deployed them, if present."""
    report = DestroyReport(stack.name)
    lam, s3, sqs = clients("lambda"), clients("s3"), clients("sqs")
    # the same names under every profile/topology: the output bucket and the notifier exist only in some
    full = every_name_of(stack)
    assert full.notifier is not None
    functions = [
        (stack.function.name, stack.function.log_group, stack.function.role_name),
        (full.notifier.name, full.notifier.log_group, full.notifier.role_name),
    ]
    for name, _, _ in functions:
        try:
            mappings = lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise InfraError(InfraErrorCode.DESTROY_FAILED, f"list mappings of {name}: {exc}") from exc
            mappings = []
        for esm in mappings:
            delete_mapping(lam, esm["UUID"])
            report.deleted.append(f"event source mapping {esm['UUID']}")
    for name, log_group, role in functions:
        report.deleted += delete_function_resources(clients, name, log_group, role)
    for name in sorted({stack.input_bucket.name, stack.output_bucket_name, full.output_bucket_name}):
        try:
            s3.head_bucket(Bucket=name)
        except ClientError:
            continue
        removed = empty_bucket(s3, name)
        try:
            s3.delete_bucket(Bucket=name)
        except ClientError as exc:
            # NoSuchBucket: gone already (LocalStack can answer 500 after deleting; the SDK's retry then sees 404)
            if error_code(exc) != "NoSuchBucket":
                raise InfraError(InfraErrorCode.DESTROY_FAILED, f"delete bucket {name}: {exc}") from exc
        report.deleted.append(f"bucket {name} ({removed} object version(s))")
    for queue in (stack.queue.name, stack.dlq.name):
        try:
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        except ClientError:
            continue
        aws_call(f"delete queue {queue}", sqs.delete_queue, QueueUrl=url)
        report.deleted.append(f"queue {queue}")
    return report
