"""What of a stack is on a target right now: one line per resource (present or missing), queue and DLQ depths."""

from __future__ import annotations

from botocore.exceptions import ClientError

from infra.deploy.target import Clients
from infra.stack import Stack


def describe(stack: Stack, clients: Clients) -> list[str]:
    """One line per resource of the stack (present or missing) with queue and DLQ depths."""
    lines: list[str] = []
    s3, sqs, lam = clients("s3"), clients("sqs"), clients("lambda")
    for bucket in stack.buckets:
        try:
            s3.head_bucket(Bucket=bucket.name)
            lines.append(f"bucket   {bucket.name}: present")
        except ClientError:
            lines.append(f"bucket   {bucket.name}: MISSING")
    for queue in (stack.queue, stack.dlq):
        try:
            url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
            attrs = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            lines.append(
                f"queue    {queue.name}: {attrs.get('ApproximateNumberOfMessages', '?')} visible, "
                f"{attrs.get('ApproximateNumberOfMessagesNotVisible', '?')} in flight"
            )
        except ClientError:
            lines.append(f"queue    {queue.name}: MISSING")
    try:
        cfg = lam.get_function_configuration(FunctionName=stack.function.name)
        lines.append(
            f"function {stack.function.name}: {cfg.get('State')} ({cfg.get('MemorySize')} MB, "
            f"{cfg.get('Timeout')} s, {','.join(cfg.get('Architectures') or [])})"
        )
        for esm in lam.list_event_source_mappings(FunctionName=stack.function.name)["EventSourceMappings"]:
            lines.append(f"mapping  {esm['UUID']}: {esm.get('State')} batch {esm.get('BatchSize')}")
    except ClientError:
        lines.append(f"function {stack.function.name}: MISSING")
    if stack.notifier is not None:
        try:
            cfg = lam.get_function_configuration(FunctionName=stack.notifier.name)
            lines.append(f"notifier {stack.notifier.name}: {cfg.get('State')}")
        except ClientError:
            lines.append(f"notifier {stack.notifier.name}: MISSING")
    return lines
