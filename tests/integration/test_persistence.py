"""Emulator state survives `harness down` + `harness up` (the executor plugin's persistence): objects and their
versions, a queued message, the function (still invokable), its role and policies, its mapping (still delivering),
the log group, so that deploying the stack again changes nothing; and HARNESS_PERSIST=0 starts empty without
touching the saved state."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from common.waiting import wait_until
from harness import emulator as emu
from harness.chaos.inputs import png
from harness.deployment import emulator_stack
from harness.settings import HarnessSettings
from infra.deploy.apply import deploy
from infra.deploy.outputs import StackOutputs
from tests.lambdas import create_function

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
PROBE_QUEUE = "persist-it-probe"


def restart(settings: HarnessSettings) -> float:
    """Stop and start the emulator (embedded, or the docker-mode container); the seconds until it answers healthy
    again (state restored)."""
    before = emu.find_running(settings)
    t0 = time.monotonic()
    emu.stop(settings)
    handle = emu.ensure_running(settings)
    assert before is None or handle.pid != before.pid  # a new process, not the old one still running
    return time.monotonic() - t0


def thumbnails(s3: Any, outputs: StackOutputs, path: str) -> list[str]:
    found = []
    for size in ("large", "small"):
        prefix = f"{outputs.output_prefix}{size}/{path}"
        found += [o["Key"] for o in s3.list_objects_v2(Bucket=outputs.output_bucket, Prefix=prefix).get("Contents", [])]
    return found


def wait_thumbnails(s3: Any, outputs: StackOutputs, path: str, timeout: float = 90.0) -> list[str]:
    wait_until(lambda: len(thumbnails(s3, outputs, path)) == 2, timeout, interval=0.5, what=f"thumbnails of {path}")
    return thumbnails(s3, outputs, path)


def role_state(iam: Any, role_arn: str) -> dict[str, Any]:
    """The function role's trust policy, inline policies (with documents) and attached managed policies."""
    name = role_arn.rsplit("/", 1)[-1]
    role = iam.get_role(RoleName=name)["Role"]
    inline = {
        p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
        for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
    }
    attached = sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"])
    return {"arn": role["Arn"], "trust": role["AssumeRolePolicyDocument"], "inline": inline, "attached": attached}


def s3_test_event(outputs: StackOutputs) -> dict[str, Any]:
    """An SQS batch with S3's test event, which the handler acknowledges and drops: the function runs its code."""
    now = str(int(time.time() * 1000))
    body = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": outputs.input_bucket}
    record = {
        "messageId": "persist-it",
        "receiptHandle": "r",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now, "ApproximateFirstReceiveTimestamp": now},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": outputs.queue_arn,
        "awsRegion": "us-east-1",
    }
    return {"Records": [record]}


def _orphan_mapping(lam: Any, sqs: Any, run: str) -> str:
    """A queue, a function, its mapping, then the function deleted: the mapping's UUID."""
    name = f"{run}-orphan"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_function(lam, name, "def handler(event, context):\n    return {}\n", timeout=3)
    uuid = str(lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1)["UUID"])
    wait_until(lambda: lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled", 30, what="orphan mapping on")
    lam.delete_function(FunctionName=name)
    return uuid


def test_state_survives_a_restart_and_persistence_can_be_turned_off(
    pipeline: StackOutputs,
    aws: Callable[..., Any],
    harness_settings: HarnessSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if harness_settings.endpoint_override:
        pytest.skip("restarts the emulator this harness runs (embedded, or the docker-mode container)")
    s3, sqs, lam, logs, iam = aws("s3"), aws("sqs"), aws("lambda"), aws("logs"), aws("iam")
    run = f"persist-{secrets.token_hex(3)}"
    role_arn = lam.get_function_configuration(FunctionName=pipeline.function_name)["Role"]
    role_before = role_state(iam, role_arn)
    assert role_before["inline"] or role_before["attached"], role_before  # a role with its policies to lose
    # GIVEN an upload processed into thumbnails, a second version of it, and a message waiting in a queue
    key = f"{pipeline.input_prefix}{run}/before.png"
    first, second = png(64, 48, seed=1), png(64, 48, seed=2)
    v1 = s3.put_object(Bucket=pipeline.input_bucket, Key=key, Body=first)["VersionId"]
    before = wait_thumbnails(s3, pipeline, f"{run}/before.png")
    v2 = s3.put_object(Bucket=pipeline.input_bucket, Key=key, Body=second)["VersionId"]
    url = sqs.create_queue(QueueName=PROBE_QUEUE)["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"run": run}))
    # AND a mapping whose function was deleted (it stays, as on AWS): LocalStack's restore raised on it and brought
    # back no mapping and no function at all, so the plugin drops it at load
    orphan = _orphan_mapping(lam, sqs, run)
    assert lam.get_event_source_mapping(UUID=orphan)["FunctionArn"].endswith(f"{run}-orphan")

    # WHEN the emulator is stopped and started again
    restart(harness_settings)

    # THEN the objects, both versions' bytes, the thumbnails, the message, the function, its mapping and logs are back
    assert s3.get_object(Bucket=pipeline.input_bucket, Key=key, VersionId=v1)["Body"].read() == first
    assert s3.get_object(Bucket=pipeline.input_bucket, Key=key, VersionId=v2)["Body"].read() == second
    assert s3.get_object(Bucket=pipeline.input_bucket, Key=key)["VersionId"] == v2
    assert sorted(thumbnails(s3, pipeline, f"{run}/before.png")) == sorted(before)
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"]) for m in got] == [{"run": run}]
    assert lam.get_function_configuration(FunctionName=pipeline.function_name)["State"] == "Active"
    invoked = lam.invoke(FunctionName=pipeline.function_name, Payload=json.dumps(s3_test_event(pipeline)).encode())
    assert "FunctionError" not in invoked, invoked["Payload"].read()
    assert json.loads(invoked["Payload"].read()) == {"batchItemFailures": []}
    mappings = lam.list_event_source_mappings(FunctionName=pipeline.function_name)["EventSourceMappings"]
    assert [m["State"] for m in mappings if m["EventSourceArn"] == pipeline.queue_arn] == ["Enabled"]
    assert orphan not in [m["UUID"] for m in lam.list_event_source_mappings()["EventSourceMappings"]]
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=f"{run}-orphan")["QueueUrl"])
    groups = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]]
    assert f"/aws/lambda/{pipeline.function_name}" in groups
    assert role_state(iam, role_arn) == role_before  # IAM: the role, its trust policy and its policies
    # the whole stack survived: deploying it again (what `harness up` does) finds nothing to create or change
    stack, clients = emulator_stack(harness_settings, pipeline.stack_name, pipeline.profile)
    assert deploy(stack, clients).changes == []
    # the restored mapping delivers a new upload
    s3.put_object(Bucket=pipeline.input_bucket, Key=f"{pipeline.input_prefix}{run}/after.png", Body=png(80, 60, 3))
    assert len(wait_thumbnails(s3, pipeline, f"{run}/after.png")) == 2

    # WHEN persistence is turned off, a restart starts empty; the saved state is left for the next start
    monkeypatch.setenv("HARNESS_PERSIST", "0")
    restart(harness_settings)
    assert PROBE_QUEUE not in " ".join(sqs.list_queues().get("QueueUrls", []))
    assert pipeline.input_bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    monkeypatch.delenv("HARNESS_PERSIST")
    restart(harness_settings)
    assert s3.get_object(Bucket=pipeline.input_bucket, Key=key, VersionId=v1)["Body"].read() == first
    assert lam.get_function_configuration(FunctionName=pipeline.function_name)["State"] == "Active"
    sqs.delete_queue(QueueUrl=url)
