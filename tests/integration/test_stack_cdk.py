"""The CDK app: `cdk synth` offline, cfn-lint clean, least-privilege IAM, and template == what LocalStack runs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.settings import HarnessSettings
from infra.cdk.synth import SynthResult, synth
from infra.deploy.diff import normalize_policy
from infra.deploy.outputs import StackOutputs
from infra.errors import InfraError

pytestmark = [pytest.mark.cdk, pytest.mark.slow]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthResult]:
    """One offline `cdk synth` of the default profile: the AWS stack plus its emulator-named twin."""
    try:
        yield synth(
            stack_name="thumbs", profile="default", emulator_twin=True, out_dir=tmp_path_factory.mktemp("cdk.out")
        )
    except InfraError as exc:
        pytest.fail(f"cdk synth failed ({exc.code}); `make cdk-cli` installs the CLI: {exc.message}")


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def _one(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = _resources(template, kind).values()
    return dict(found["Properties"])


def _name_of(template: dict[str, Any], ref: Any, name_key: str) -> str:
    """{'Fn::GetAtt': [lid, 'Arn']} or {'Ref': lid} -> the Name property of that resource."""
    lid = ref["Fn::GetAtt"][0] if "Fn::GetAtt" in ref else ref["Ref"]
    return str(template["Resources"][lid]["Properties"][name_key])


def _flat(value: Any) -> str:
    """A template string, with Fn::Join parts and Refs rendered as text (for ARN shape checks)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_flat(p) for p in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    return json.dumps(value)


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for role in _resources(template, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            out.extend(policy["PolicyDocument"]["Statement"])
    for policy in _resources(template, "AWS::IAM::Policy").values():
        out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("which", ["aws", "emulator"])
def test_synthesized_template_is_cfn_lint_clean(synthesized: SynthResult, which: str) -> None:
    from cfnlint.api import lint_all

    stack_id = synthesized.stack_id if which == "aws" else f"{synthesized.stack_id}-emulator"
    matches = lint_all(synthesized.template_path_of(stack_id).read_text())
    problems = [str(m) for m in matches if m.rule.id[0] in ("E", "W")]  # errors and warnings; I* is advice
    assert problems == []
    assert synthesized.warnings == ()  # the default profile passes the stack lint inside the CDK app too


def test_iam_has_no_delete_on_the_input_and_no_wildcard_resource(synthesized: SynthResult) -> None:
    template = synthesized.template()
    statements = _statements(template)
    assert statements, "the template carries the role's inline policy"
    assert len(_resources(template, "AWS::IAM::Role")) == 1  # no helper roles (custom resources) sneaked in
    for st in statements:
        actions = _as_list(st["Action"])
        resources = [_flat(r) for r in _as_list(st["Resource"])]
        assert "*" not in resources and all(":::*" not in r for r in resources), st
        assert not [a for a in actions if a.endswith("*")], st
        if any("-input/" in r for r in resources):
            assert not {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObject"} & set(actions), st
    # the AWS stack is account-agnostic: bucket names carry the account and region
    names = [_flat(b["Properties"]["BucketName"]) for b in _resources(template, "AWS::S3::Bucket").values()]
    assert sorted(names) == [
        "thumbs-<AWS::AccountId>-<AWS::Region>-input",
        "thumbs-<AWS::AccountId>-<AWS::Region>-output",
    ]


def test_template_and_localstack_agree(
    synthesized: SynthResult, pipeline: StackOutputs, aws: Callable[..., Any]
) -> None:
    # the persistence and restart tests restart the emulator on purpose and IAM is not persisted yet (issue 15):
    # bring the stack up to date first (an idempotent deploy; a no-op when nothing is missing)
    from harness.deployment import emulator_stack
    from infra.deploy.apply import deploy

    stack, clients = emulator_stack(HarnessSettings.from_env(), pipeline.stack_name, "default")
    deploy(stack, clients)
    t = synthesized.template(f"{synthesized.stack_id}-emulator")
    sqs, s3, lam, iam, logs = aws("sqs"), aws("s3"), aws("lambda"), aws("iam"), aws("logs")

    # queues: visibility, retention, redrive (target and maxReceiveCount)
    for queue in _resources(t, "AWS::SQS::Queue").values():
        props = queue["Properties"]
        url = sqs.get_queue_url(QueueName=props["QueueName"])["QueueUrl"]
        live = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert int(live["VisibilityTimeout"]) == props["VisibilityTimeout"], props["QueueName"]
        assert int(live["MessageRetentionPeriod"]) == props["MessageRetentionPeriod"], props["QueueName"]
        if "RedrivePolicy" in props:
            redrive = json.loads(live["RedrivePolicy"])
            assert int(redrive["maxReceiveCount"]) == props["RedrivePolicy"]["maxReceiveCount"]
            target = _name_of(t, props["RedrivePolicy"]["deadLetterTargetArn"], "QueueName")
            assert redrive["deadLetterTargetArn"] == pipeline.dlq_arn and pipeline.dlq_arn.endswith(f":{target}")
            assert normalize_policy(live["Policy"]) == normalize_policy(
                _one(t, "AWS::SQS::QueuePolicy")["PolicyDocument"]
            )

    # buckets: versioning and the notification (event, prefix filter, destination queue)
    for bucket in _resources(t, "AWS::S3::Bucket").values():
        props = bucket["Properties"]
        versioning = s3.get_bucket_versioning(Bucket=props["BucketName"]).get("Status")
        assert versioning == props.get("VersioningConfiguration", {}).get("Status"), props["BucketName"]
        live_conf = s3.get_bucket_notification_configuration(Bucket=props["BucketName"])
        wanted = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        live_queue_confs = live_conf.get("QueueConfigurations", [])
        assert len(live_queue_confs) == len(wanted), props["BucketName"]
        for want, have in zip(wanted, live_queue_confs, strict=True):
            assert have["Events"] == [want["Event"]]
            assert have["QueueArn"].endswith(":" + _name_of(t, want["Queue"], "QueueName"))
            rules = {(r["Name"].lower(), r["Value"]) for r in have["Filter"]["Key"]["FilterRules"]}
            assert rules == {(r["Name"].lower(), r["Value"]) for r in want["Filter"]["S3Key"]["Rules"]}
    assert pipeline.input_bucket in {b["Properties"]["BucketName"] for b in _resources(t, "AWS::S3::Bucket").values()}

    # function: memory, timeout, architecture, runtime, handler, environment
    fn = _one(t, "AWS::Lambda::Function")
    cfg = lam.get_function_configuration(FunctionName=fn["FunctionName"])
    assert cfg["MemorySize"] == fn["MemorySize"] and cfg["Timeout"] == fn["Timeout"]
    assert cfg["Architectures"] == fn["Architectures"]
    assert (cfg["Runtime"], cfg["Handler"]) == (fn["Runtime"], fn["Handler"])
    live_env = cfg["Environment"]["Variables"]
    template_env = fn["Environment"]["Variables"]
    assert set(live_env) == set(template_env)
    for key, value in template_env.items():
        if isinstance(value, dict):  # the DLQ URL: a Ref to the DLQ in the template
            assert _name_of(t, value, "QueueName") == pipeline.dlq_url.rsplit("/", 1)[-1]
            assert live_env[key] == pipeline.dlq_url
        else:
            assert live_env[key] == value, key

    # IAM: role name and the inline policy's actions and resources, statement by statement
    role = _one(t, "AWS::IAM::Role")
    (policy,) = role["Policies"]
    live_policy = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy["PolicyName"])["PolicyDocument"]
    live_by_sid = {s["Sid"]: s for s in normalize_policy(live_policy)["Statement"]}
    template_by_sid = {s["Sid"]: s for s in normalize_policy(policy["PolicyDocument"])["Statement"]}
    assert set(live_by_sid) == set(template_by_sid)
    for sid, st in template_by_sid.items():
        assert live_by_sid[sid]["Action"] == st["Action"], sid
        assert live_by_sid[sid]["Resource"] == st["Resource"], sid
    assert cfg["Role"].endswith(f":role/{role['RoleName']}")

    # log group retention
    group = _one(t, "AWS::Logs::LogGroup")
    (live_group,) = [
        g
        for g in logs.describe_log_groups(logGroupNamePrefix=group["LogGroupName"])["logGroups"]
        if g["logGroupName"] == group["LogGroupName"]
    ]
    assert live_group.get("retentionInDays") == group["RetentionInDays"]

    # event-source mapping
    esm = _one(t, "AWS::Lambda::EventSourceMapping")
    (live_esm,) = lam.list_event_source_mappings(FunctionName=fn["FunctionName"])["EventSourceMappings"]
    assert live_esm["BatchSize"] == esm["BatchSize"]
    assert live_esm.get("MaximumBatchingWindowInSeconds", 0) == esm["MaximumBatchingWindowInSeconds"]
    assert live_esm.get("FunctionResponseTypes") == esm["FunctionResponseTypes"]
    assert live_esm["ScalingConfig"]["MaximumConcurrency"] == esm["ScalingConfig"]["MaximumConcurrency"]
    assert live_esm["EventSourceArn"] == pipeline.queue_arn
    assert live_esm["EventSourceArn"].endswith(":" + _name_of(t, esm["EventSourceArn"], "QueueName"))
    assert live_esm["State"] == ("Enabled" if esm["Enabled"] else "Disabled")

    # and the other way round, live -> template: a resource named for this stack but not in the template fails
    assert _live_extras(t, aws, pipeline.stack_name) == []


def _live_extras(template: dict[str, Any], aws: Callable[..., Any], stack_name: str) -> list[str]:
    """Live resources named `<stack>-...` (queues, buckets, functions, roles, log groups, the function's mappings)
    that the template does not declare."""
    prefix = f"{stack_name}-"

    def declared(kind: str, key: str) -> set[str]:
        return {_flat(r["Properties"][key]) for r in _resources(template, kind).values()}

    sqs, s3, lam, iam, logs = aws("sqs"), aws("s3"), aws("lambda"), aws("iam"), aws("logs")
    live: dict[str, set[str]] = {
        "queue": {u.rsplit("/", 1)[-1] for u in sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])},
        "bucket": {b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(prefix)},
        "function": {
            f["FunctionName"]
            for page in lam.get_paginator("list_functions").paginate()
            for f in page["Functions"]
            if f["FunctionName"].startswith(prefix)
        },
        "role": {
            r["RoleName"]
            for page in iam.get_paginator("list_roles").paginate()
            for r in page["Roles"]
            if r["RoleName"].startswith(prefix)
        },
        "log group": {
            g["logGroupName"]
            for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=f"/aws/lambda/{prefix}")
            for g in page["logGroups"]
        },
    }
    wanted = {
        "queue": declared("AWS::SQS::Queue", "QueueName"),
        "bucket": declared("AWS::S3::Bucket", "BucketName"),
        "function": declared("AWS::Lambda::Function", "FunctionName"),
        "role": declared("AWS::IAM::Role", "RoleName"),
        "log group": declared("AWS::Logs::LogGroup", "LogGroupName"),
    }
    extras = [f"{kind} {name}" for kind, names in live.items() for name in sorted(names - wanted[kind])]
    mappings = len(_resources(template, "AWS::Lambda::EventSourceMapping"))
    for function in sorted(live["function"] & wanted["function"]):
        found = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
        extras += [f"event source mapping {m['UUID']} of {function}" for m in found[mappings:]]
    return extras


def test_an_extra_live_resource_fails_the_parity_walk(
    synthesized: SynthResult, pipeline: StackOutputs, aws: Callable[..., Any]
) -> None:
    # GIVEN the deployed stack plus a queue and a log group named for it that the template does not declare
    t = synthesized.template(f"{synthesized.stack_id}-emulator")
    stray = f"{pipeline.stack_name}-stray-{uuid.uuid4().hex[:6]}"
    sqs, logs = aws("sqs"), aws("logs")
    url = sqs.create_queue(QueueName=stray)["QueueUrl"]
    logs.create_log_group(logGroupName=f"/aws/lambda/{stray}")
    try:
        # WHEN the live side is walked THEN both strays are reported, and nothing else
        assert _live_extras(t, aws, pipeline.stack_name) == [f"queue {stray}", f"log group /aws/lambda/{stray}"]
    finally:
        sqs.delete_queue(QueueUrl=url)
        logs.delete_log_group(logGroupName=f"/aws/lambda/{stray}")
    assert _live_extras(t, aws, pipeline.stack_name) == []


def test_synth_without_the_cli_fails_with_a_stable_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import infra.cdk.synth as synth_module

    monkeypatch.setattr(synth_module, "CDK_CLI", tmp_path / "missing" / "cdk")
    with pytest.raises(InfraError) as exc:
        synth_module.synth(out_dir=tmp_path)
    assert exc.value.code == "CDK_UNAVAILABLE" and "make cdk-cli" in exc.value.message
