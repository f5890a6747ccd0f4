"""Read an already-deployed pipeline stack off CloudFormation into StackOutputs (read-only: nothing is changed).

The CloudFormation stack is found by name (`<stack>-pipeline` as the CDK app names it, or the exact name given). Its
outputs name the buckets, queues and function (the CDK app's CfnOutputs); where an output is missing, the stack's
resources (list_stack_resources, by type and logical id) stand in. The function's own configuration (get_function_
configuration) gives the prefixes, sizes, architecture, memory and timeout, and list_event_source_mappings the mapping.
Only Describe/List/Get calls are made.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from common.errors import expected
from infra.deploy.outputs import StackOutputs
from infra.deploy.target import Clients
from infra.errors import InfraError, InfraErrorCode
from thumbnailer.config import ENV_NAMES, Settings

# the CDK app's output keys (infra/cdk/pipeline_stack.py)
OUTPUT_KEYS = ("InputBucket", "OutputBucket", "QueueUrl", "QueueArn", "DlqUrl", "DlqArn", "FunctionName", "LogGroup")
READ_ONLY_CALLS = (
    "cloudformation:DescribeStacks",
    "cloudformation:ListStackResources",
    "lambda:GetFunctionConfiguration",
    "lambda:ListEventSourceMappings",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sts:GetCallerIdentity",
)


def _find_stack(cfn: Any, name: str) -> dict[str, Any]:
    tried = [name] if name.endswith("-pipeline") else [f"{name}-pipeline", name]
    for candidate in tried:
        try:
            stacks = cfn.describe_stacks(StackName=candidate)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc) or exc.response.get("Error", {}).get("Code") == "ValidationError":
                continue
            raise
        live = [s for s in stacks if not str(s.get("StackStatus", "")).startswith("DELETE_")]
        if live:
            status = str(live[0].get("StackStatus", ""))
            if not status.endswith("_COMPLETE") or "ROLLBACK" in status:
                raise InfraError(
                    InfraErrorCode.NOT_DEPLOYED,
                    expected("a stack in CREATE_COMPLETE or UPDATE_COMPLETE", f"stack {candidate}", status),
                )
            return dict(live[0])
    raise InfraError(
        InfraErrorCode.NOT_DEPLOYED, expected(f"a CloudFormation stack named {' or '.join(tried)}", "--target", "none")
    )


def _resources(cfn: Any, stack_name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        out.extend(page.get("StackResourceSummaries", []))
    return out


def _physical(resources: list[dict[str, Any]], rtype: str, logical_prefix: str) -> str | None:
    for r in resources:
        if r.get("ResourceType") == rtype and str(r.get("LogicalResourceId", "")).startswith(logical_prefix):
            return str(r.get("PhysicalResourceId") or "") or None
    return None


def discover(clients: Clients, stack: str) -> StackOutputs:
    """The deployed pipeline `stack` (CloudFormation name `stack` or `<stack>-pipeline`) as StackOutputs.

    Raises InfraError NOT_DEPLOYED (no such stack, or not complete), OUTPUTS_INVALID (a resource the pipeline needs is
    neither an output nor a resource of the stack), DEPLOY_FAILED wrapping an AWS error of a read call."""
    try:
        return _discover(clients, stack)
    except (ClientError, BotoCoreError) as exc:
        raise InfraError(
            InfraErrorCode.DEPLOY_FAILED, f"reading stack {stack} from {clients.target.label}: {exc}"
        ) from exc


def _discover(clients: Clients, stack: str) -> StackOutputs:
    cfn = clients("cloudformation")
    doc = _find_stack(cfn, stack)
    cfn_name = str(doc["StackName"])
    outputs = {str(o["OutputKey"]): str(o["OutputValue"]) for o in doc.get("Outputs", [])}
    resources: list[dict[str, Any]] | None = None

    def value(key: str, rtype: str, logical_prefix: str) -> str:
        nonlocal resources
        if outputs.get(key):
            return outputs[key]
        if resources is None:
            resources = _resources(cfn, cfn_name)
        found = _physical(resources, rtype, logical_prefix)
        if not found:
            raise InfraError(
                InfraErrorCode.OUTPUTS_INVALID,
                expected(f"output {key} or a {rtype} {logical_prefix}*", f"stack {cfn_name}", sorted(outputs)),
            )
        return found

    input_bucket = value("InputBucket", "AWS::S3::Bucket", "InputBucket")
    try:
        output_bucket = value("OutputBucket", "AWS::S3::Bucket", "OutputBucket")
    except InfraError:
        output_bucket = input_bucket  # single-bucket mode
    queue_url = value("QueueUrl", "AWS::SQS::Queue", "JobQueue")
    dlq_url = value("DlqUrl", "AWS::SQS::Queue", "DeadLetterQueue")
    function_name = value("FunctionName", "AWS::Lambda::Function", "Thumbnailer")
    sqs = clients("sqs")

    def arn_of(url: str, key: str) -> str:
        if outputs.get(key):
            return outputs[key]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(attrs["QueueArn"])

    queue_arn, dlq_arn = arn_of(queue_url, "QueueArn"), arn_of(dlq_url, "DlqArn")
    lam = clients("lambda")
    fn = lam.get_function_configuration(FunctionName=function_name)
    env = dict((fn.get("Environment") or {}).get("Variables") or {})
    settings = Settings.from_env({k: v for k, v in env.items() if k in ENV_NAMES.values()})
    mappings = lam.list_event_source_mappings(FunctionName=function_name).get("EventSourceMappings", [])
    mapping = next((m for m in mappings if m.get("EventSourceArn") == queue_arn), mappings[0] if mappings else {})
    role_arn = str(fn.get("Role", ""))
    notifier_name = outputs.get("NotifierFunctionName")
    notifier_arn = None
    if notifier_name:
        notifier_arn = str(lam.get_function_configuration(FunctionName=notifier_name).get("FunctionArn", ""))
    arn_parts = str(fn.get("FunctionArn", "")).split(":")
    stack_id_parts = str(doc.get("StackId", "")).split(":")
    return StackOutputs(
        stack_name=cfn_name.removesuffix("-pipeline"),
        region=clients.target.region,
        account=arn_parts[4] if len(arn_parts) > 4 else (stack_id_parts[4] if len(stack_id_parts) > 4 else ""),
        endpoint=clients.target.label,
        input_bucket=input_bucket,
        input_prefix=settings.input_prefix,
        output_bucket=output_bucket,
        output_prefix=settings.output_prefix,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        function_name=function_name,
        function_arn=str(fn.get("FunctionArn", "")),
        role_name=role_arn.rsplit("/", 1)[-1],
        role_arn=role_arn,
        log_group=outputs.get("LogGroup")
        or str((fn.get("LoggingConfig") or {}).get("LogGroup") or "")
        or f"/aws/lambda/{function_name}",
        event_source_mapping_uuid=str(mapping.get("UUID", "")),
        sizes=settings.sizes,
        architecture=str((fn.get("Architectures") or ["x86_64"])[0]),
        memory_mb=int(fn.get("MemorySize", 0)),
        timeout_s=int(fn.get("Timeout", 0)),
        profile="deployed",
        topology="notifier" if notifier_name else "direct",
        notifier_function_name=notifier_name,
        notifier_function_arn=notifier_arn,
    )
