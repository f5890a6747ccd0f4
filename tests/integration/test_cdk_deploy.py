"""`make deploy-cdk-local`'s code path on the test emulator: real cdk bootstrap + deploy, an upload gives thumbnails,
a poison file reaches the DLQ with its code, then `cdk destroy` (+ emptied buckets) leaves nothing behind."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from common.paths import FIXTURES_DIR
from common.waiting import wait_until
from harness.settings import HarnessSettings
from infra.cdk.deploy import CdkTarget, cfn_stack_name, deploy, destroy
from infra.cdk.synth import CDK_CLI

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.cdk,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None or not CDK_CLI.exists(), reason="needs node + the aws-cdk CLI"),
]

STACK = "cdktest"


@pytest.fixture(scope="module")
def cdk_stack(emulator: Any, harness_settings: HarnessSettings) -> Iterator[tuple[CdkTarget, dict[str, str]]]:
    target = CdkTarget(region=harness_settings.region, endpoint=harness_settings.endpoint)
    outputs = deploy(target, stack=STACK)
    try:
        yield target, outputs
    finally:
        destroy(target, stack=STACK)


def test_the_cloudformation_stack_is_complete_and_names_every_output(cdk_stack: tuple[CdkTarget, dict[str, str]]):
    target, outputs = cdk_stack
    cfn: Any = target.client("cloudformation")
    doc = cfn.describe_stacks(StackName=cfn_stack_name(STACK))["Stacks"][0]
    assert doc["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert {"InputBucket", "OutputBucket", "QueueUrl", "DlqUrl", "FunctionName", "LogGroup"} <= set(outputs)
    # the AWS variant: names carry the account and region, resolved by CloudFormation (pseudo-parameters)
    assert "000000000000" in outputs["InputBucket"]
    resources = cfn.list_stack_resources(StackName=cfn_stack_name(STACK))["StackResourceSummaries"]
    assert all(r["ResourceStatus"].endswith("_COMPLETE") for r in resources), resources
    assert not [r for r in resources if r["ResourceType"].startswith("Custom::")]


def test_an_upload_gives_thumbnails_and_a_poison_file_reaches_the_dlq_with_its_code(
    cdk_stack: tuple[CdkTarget, dict[str, str]], aws: Any
):
    _, outputs = cdk_stack
    s3, sqs = aws("s3"), aws("sqs")
    s3.put_object(
        Bucket=outputs["InputBucket"],
        Key="uploads/cdk/tiny.jpg",
        Body=(FIXTURES_DIR / "generated/tiny.jpg").read_bytes(),
    )
    s3.put_object(
        Bucket=outputs["InputBucket"],
        Key="uploads/cdk/bad.jpg",
        Body=(FIXTURES_DIR / "generated/bad-text.jpg").read_bytes(),
    )

    def thumbnails() -> list[str] | None:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=outputs["OutputBucket"]).get("Contents", [])]
        return keys if len(keys) >= 2 else None

    keys = wait_until(thumbnails, timeout=120, interval=1, what="two thumbnails of the upload")
    assert sorted(keys) == ["thumbnails/large/cdk/tiny.jpg.jpg", "thumbnails/small/cdk/tiny.jpg.jpg"]

    def dlq_message() -> dict[str, Any] | None:
        got = sqs.receive_message(QueueUrl=outputs["DlqUrl"], MaxNumberOfMessages=1, WaitTimeSeconds=1)
        return got["Messages"][0] if got.get("Messages") else None

    message = wait_until(dlq_message, timeout=120, interval=1, what="the poison file's DLQ message")
    body = json.loads(message["Body"])
    assert body["source"]["key"] == "uploads/cdk/bad.jpg"
    assert body["error"]["code"] == "UNSUPPORTED_FORMAT"


def test_the_aws_template_keeps_the_notification_meaning(tmp_path: Any) -> None:
    """The AWS variant (pseudo-parameters, what `make deploy-aws` sends) notifies through the bucket's own
    NotificationConfiguration: the same events and prefix filter as the definition, to the job queue, after the queue
    policy that lets exactly this bucket send; no Custom::S3BucketNotifications (and no provider Lambda)."""
    from infra.cdk.synth import synth
    from infra.stack import build_stack

    template = synth(stack_name="thumbs", out_dir=tmp_path / "out").template()
    resources = template["Resources"]
    assert not [k for k, r in resources.items() if r["Type"].startswith("Custom::")]
    definition = build_stack("thumbs", "default")
    buckets = {k: r for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket"}
    notified = [(k, r) for k, r in buckets.items() if "NotificationConfiguration" in r["Properties"]]
    assert len(notified) == 1
    bucket_id, bucket = notified[0]
    assert bucket_id.startswith(definition.input_bucket.logical_id)
    configs = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert sorted(c["Event"] for c in configs) == sorted(definition.notification.events)
    queue_id = next(k for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue" and k.startswith("JobQueue"))
    for c in configs:
        assert c["Filter"] == {"S3Key": {"Rules": [{"Name": "prefix", "Value": definition.notification.prefix}]}}
        assert c["Queue"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    policy_id = next(k for k, r in resources.items() if r["Type"] == "AWS::SQS::QueuePolicy")
    assert policy_id in bucket["DependsOn"]  # S3 checks the destination when it stores the configuration
    policy = resources[policy_id]["Properties"]
    assert policy["Queues"] == [{"Ref": queue_id}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    bucket_name = _render(bucket["Properties"]["BucketName"])
    assert _render(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == f"arn:P:s3:::{bucket_name}"
    assert _render(statement["Condition"]["StringEquals"]["aws:SourceAccount"]) == "A"


_PSEUDO = {"AWS::AccountId": "A", "AWS::Region": "R", "AWS::Partition": "P"}


def _render(value: Any) -> str:
    """A template string with pseudo-parameters rendered as A (account), R (region), P (partition)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return _PSEUDO[value["Ref"]]
    sep, parts = value["Fn::Join"]
    return sep.join(_render(part) for part in parts)
