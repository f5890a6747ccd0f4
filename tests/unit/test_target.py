"""--target without a network: discovery from CloudFormation answers (fakes), the guard rails, the chaos refusal."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from harness import target as t
from infra.deploy.discover import discover
from infra.deploy.target import Target
from infra.errors import InfraError

QUEUE = "http://127.0.0.1:4620/queue/us-east-1/000000000000/s-jobs"
DLQ = "http://127.0.0.1:4620/queue/us-east-1/000000000000/s-dlq"
OUTPUTS = {
    "InputBucket": "s-in",
    "OutputBucket": "s-out",
    "QueueUrl": QUEUE,
    "QueueArn": "arn:aws:sqs:us-east-1:000000000000:s-jobs",
    "DlqUrl": DLQ,
    "DlqArn": "arn:aws:sqs:us-east-1:000000000000:s-dlq",
    "FunctionName": "s-thumbnailer",
    "LogGroup": "/aws/lambda/s-thumbnailer",
}


class FakeCfn:
    def __init__(self, outputs: dict[str, str], status: str = "CREATE_COMPLETE", resources: list | None = None):
        self.outputs, self.status, self.resources = outputs, status, resources or []
        self.calls: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.calls.append(f"describe_stacks:{StackName}")
        if StackName != "s-pipeline":
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ValidationError", "Message": "does not exist"}}, "DescribeStacks")
        outs = [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]
        return {"Stacks": [{"StackName": StackName, "StackStatus": self.status, "Outputs": outs, "StackId": "x"}]}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_stack_resources"
        resources = self.resources

        class P:
            def paginate(self, StackName: str) -> list[dict[str, Any]]:
                return [{"StackResourceSummaries": resources}]

        return P()


class FakeLambda:
    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        return {
            "FunctionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{FunctionName}",
            "Role": "arn:aws:iam::000000000000:role/s-thumbnailer",
            "Architectures": ["arm64"],
            "MemorySize": 1536,
            "Timeout": 30,
            "Environment": {"Variables": {"THUMB_SIZES": "big:800x800", "THUMB_INPUT_PREFIX": "in/"}},
        }

    def list_event_source_mappings(self, FunctionName: str) -> dict[str, Any]:
        return {"EventSourceMappings": [{"UUID": "u-1", "EventSourceArn": OUTPUTS["QueueArn"]}]}


class FakeSqs:
    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {"Attributes": {"QueueArn": "arn:aws:sqs:us-east-1:000000000000:" + QueueUrl.rsplit("/", 1)[-1]}}


class FakeClients:
    def __init__(self, cfn: FakeCfn) -> None:
        self.target = Target.emulator("http://127.0.0.1:4620", "us-east-1")
        self._clients = {"cloudformation": cfn, "lambda": FakeLambda(), "sqs": FakeSqs()}

    def __call__(self, service: str) -> Any:
        return self._clients[service]


def test_discover_builds_stack_outputs_from_the_stack_outputs_and_the_function() -> None:
    out = discover(FakeClients(FakeCfn(OUTPUTS)), "s")  # type: ignore[arg-type]
    assert (out.stack_name, out.input_bucket, out.output_bucket) == ("s", "s-in", "s-out")
    assert (out.queue_url, out.dlq_url, out.function_name) == (QUEUE, DLQ, "s-thumbnailer")
    assert (out.sizes, out.size_names, out.input_prefix) == ("big:800x800", ("big",), "in/")
    assert (out.architecture, out.memory_mb, out.timeout_s, out.account) == ("arm64", 1536, 30, "000000000000")
    assert out.event_source_mapping_uuid == "u-1" and out.endpoint == "http://127.0.0.1:4620"


def test_discover_falls_back_to_the_stack_resources_when_outputs_are_missing() -> None:
    resources = [
        {"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "InputBucket3BF8630A", "PhysicalResourceId": "r-in"},
        {"ResourceType": "AWS::SQS::Queue", "LogicalResourceId": "JobQueueEE3AD499", "PhysicalResourceId": QUEUE},
        {"ResourceType": "AWS::SQS::Queue", "LogicalResourceId": "DeadLetterQueue9F4", "PhysicalResourceId": DLQ},
        {"ResourceType": "AWS::Lambda::Function", "LogicalResourceId": "Thumbnailer", "PhysicalResourceId": "r-fn"},
    ]
    out = discover(FakeClients(FakeCfn({}, resources=resources)), "s-pipeline")  # type: ignore[arg-type]
    assert (out.input_bucket, out.output_bucket, out.function_name) == ("r-in", "r-in", "r-fn")  # single bucket
    assert out.queue_arn.endswith(":s-jobs") and out.dlq_arn.endswith(":s-dlq")


def test_discover_refuses_a_missing_or_incomplete_stack_with_not_deployed() -> None:
    with pytest.raises(InfraError) as err:
        discover(FakeClients(FakeCfn(OUTPUTS)), "other")  # type: ignore[arg-type]
    assert err.value.code == "NOT_DEPLOYED"
    with pytest.raises(InfraError) as err:
        discover(FakeClients(FakeCfn(OUTPUTS, status="ROLLBACK_COMPLETE")), "s")  # type: ignore[arg-type]
    assert err.value.code == "NOT_DEPLOYED"
    with pytest.raises(InfraError) as err:
        discover(FakeClients(FakeCfn({})), "s")  # type: ignore[arg-type]
    assert err.value.code == "OUTPUTS_INVALID"


def _deployed(endpoint: str | None) -> t.DeployedTarget:
    outputs = discover(FakeClients(FakeCfn(OUTPUTS)), "s")  # type: ignore[arg-type]
    return t.DeployedTarget("s", outputs, boto3.Session(region_name="us-east-1"), "us-east-1", endpoint)


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("http://127.0.0.1:4620", True),
        ("http://localhost:4566", True),
        ("http://127.0.0.5:1", True),
        (None, False),
        ("https://s3.us-east-1.amazonaws.com", False),
        ("http://10.0.0.1:4566", False),
    ],
)
def test_loopback_endpoints_are_local_and_everything_else_is_remote(endpoint: str | None, local: bool) -> None:
    assert t.is_loopback(endpoint) is local


def test_a_remote_target_needs_yes_after_the_estimate_is_printed() -> None:
    printed: list[str] = []
    est = t.estimate(100, _deployed(None).outputs)
    with pytest.raises(t.TargetError) as err:
        t.require_consent(_deployed(None), est, False, printed.append)
    assert err.value.code == "TARGET_NEEDS_YES"
    assert printed and "100 uploads" in printed[0] and "$" in printed[1]
    t.require_consent(_deployed(None), est, True, printed.append)
    t.require_consent(_deployed("http://127.0.0.1:4620"), est, False, printed.append)  # local: no --yes needed


def test_the_estimate_counts_requests_per_upload_and_prices_lambda_at_the_stack_memory() -> None:
    outputs = _deployed(None).outputs  # arm64, 1536 MB, one size
    est = t.estimate(10, outputs, handler_ms=1000)
    assert est.requests["s3_put"] == 10 * 2 and est.requests["lambda"] == 10
    assert est.lambda_gb_s == pytest.approx(10 * 1.0 * 1536 / 1024)
    assert est.usd > est.lambda_gb_s * 0.0000133334
    assert t.estimate(20, outputs).usd > t.estimate(10, outputs).usd


def test_hard_caps_refuse_too_many_uploads_or_too_long_a_run() -> None:
    t.check_caps(t.MAX_UPLOADS, t.MAX_DURATION_S)
    for uploads, duration in ((t.MAX_UPLOADS + 1, 10.0), (10, t.MAX_DURATION_S + 1)):
        with pytest.raises(t.TargetError) as err:
            t.check_caps(uploads, duration)
        assert err.value.code == "TARGET_CAP_EXCEEDED"


def test_chaos_on_a_remote_target_refuses_local_process_scenarios_and_names_the_runnable_ones() -> None:
    remote = _deployed("https://example.com")
    t.refuse_chaos(["poison"], remote)
    with pytest.raises(t.TargetError) as err:
        t.refuse_chaos(["poison", "crash", "restart"], remote)
    assert err.value.code == "TARGET_REFUSED"
    assert "crash, restart" in err.value.message and "poison" in err.value.message.rsplit(":", 1)[-1]
    t.refuse_chaos(["crash", "restart"], _deployed("http://127.0.0.1:4620"))  # the local emulator: allowed


def test_as_remote_makes_a_loopback_target_remote_and_an_uncontrolled_local_one_is_refused_too() -> None:
    rehearsal = t.DeployedTarget(**{**_deployed("http://127.0.0.1:4620").__dict__, "as_remote": True})
    assert not rehearsal.local and _deployed("http://127.0.0.1:4620").local
    with pytest.raises(t.TargetError) as err:
        t.refuse_chaos(["crash"], rehearsal)
    assert err.value.code == "TARGET_REFUSED" and "remote target" in err.value.message
    # a loopback stack on another emulator than this harness' own: no fault proxy or runtime control there either
    other = _deployed("http://127.0.0.1:4999")
    t.refuse_chaos(["poison"], other, controlled=False)
    with pytest.raises(t.TargetError) as err:
        t.refuse_chaos(["poison", "timeout"], other, controlled=False)
    assert "outside this harness' emulator" in err.value.message and err.value.message.endswith("poison")
    with pytest.raises(t.TargetError) as err:
        t.require_consent(rehearsal, t.estimate(10, rehearsal.outputs), False, lambda line: None)
    assert err.value.code == "TARGET_NEEDS_YES"


def test_every_chaos_scenario_outside_the_remote_safe_list_needs_local_control() -> None:
    from harness.chaos import scenarios

    for name in t.REMOTE_SAFE_CHAOS:
        s = scenarios.SCENARIOS[name]
        assert not s.rules and s.action is None and not s.peer_consumer
        assert s.visibility_s is None and s.function_timeout_s is None and s.max_receive_count is None
    for name in set(scenarios.ORDER) - set(t.REMOTE_SAFE_CHAOS):
        s = scenarios.SCENARIOS[name]
        assert s.rules or s.action or s.peer_consumer or s.visibility_s or s.function_timeout_s or s.burst_delay_s


def test_a_loopback_endpoint_without_credentials_uses_the_test_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session, region = t.session_for(profile=None, region="eu-west-1", endpoint="http://127.0.0.1:4620", env={})
    creds = session.get_credentials()
    assert creds is not None and creds.access_key == "test" and region == "eu-west-1"
    assert t.resolve_endpoint(None, {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}) == "http://127.0.0.1:1"
    assert t.resolve_endpoint("http://x:1", {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}) == "http://x:1"
