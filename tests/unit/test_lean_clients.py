"""The lean path's direct answers to LocalStack's own clients (harness/executor/local_executor/lean_clients.py): the
provider gets the context the gateway would have built and the caller's parameters (copies), the caller gets what
botocore would have parsed, and anything but a success goes the usual way. Run in the emulator venv, where
LocalStack and its client factory are; the provider is a stand-in, the usual path a canned HTTP answer."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from common.paths import ROOT
from harness.paths import EMULATOR_VENV

PY = EMULATOR_VENV / "bin" / "python"

SCRIPT = textwrap.dedent(
    """
    import io, json, sys
    sys.path.insert(0, sys.argv[1])
    from botocore.awsrequest import AWSResponse
    from localstack.aws.api import CommonServiceException
    from localstack.aws.connect import connect_to
    from local_executor import lean_clients as lc

    calls, sent = [], []
    STORED = {"Messages": [{"MessageId": "m1", "ReceiptHandle": "r1", "Body": "b",
                            "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}]}

    def provider(service, operation):
        def handler(context, request):
            calls.append((service, operation, context, request))
            if request.get("QueueUrl", "").endswith("/broken"):
                raise CommonServiceException("QueueDoesNotExist", "no such queue", status_code=400)
            if operation == "Invoke":
                return {"StatusCode": 200, "Payload": b'{"batchItemFailures": []}', "ExecutedVersion": "$LATEST"}
            if operation == "ReceiveMessage":
                return STORED
            return {"MessageId": "sent-1", "MD5OfMessageBody": "x"}
        return handler

    lc._skeleton_handler = provider

    class Raw(io.BytesIO):
        def stream(self, **_kw):
            yield self.getvalue()

    def usual_path(request, **_kw):  # before-send: what the gateway would have answered
        sent.append(request.url)
        if "lambda" in request.url or "Invoke" in str(request.headers.get("X-Amz-Target", "")):
            body = b'{"usual": true}'
        else:
            body = json.dumps({"MessageId": "usual-path", "MD5OfMessageBody": "y"}).encode()
        return AWSResponse(request.url, 200, {"x-amzn-requestid": "usual"}, Raw(body))

    factory = type(connect_to)()  # an InternalClientFactory of its own (its own client cache)
    out = {}
    sqs = lc.register(factory(region_name="eu-west-1", endpoint_url="http://localhost.localstack.cloud:4566",
                               aws_access_key_id="test", aws_secret_access_key="test").sqs)
    sqs.meta.events.register("before-send.sqs.*", usual_path)

    got = sqs.receive_message(QueueUrl="http://sqs.eu-west-1.localhost.localstack.cloud:4566/000000000000/q",
                              MaxNumberOfMessages=10)
    _, _, context, request = calls[-1]
    attribute = got["Messages"][0]["MessageAttributes"]["k"]
    attribute["dataType"] = attribute.pop("DataType")  # what the poller does to what it receives
    out["receive"] = {
        "messages": [m["MessageId"] for m in got["Messages"]],
        "metadata": sorted(got["ResponseMetadata"]),
        "status": got["ResponseMetadata"]["HTTPStatusCode"],
        "request": request, "account": context.account_id, "region": context.region,
        "operation": context.operation.name, "service": context.service.service_name,
        "stored_untouched": STORED["Messages"][0]["MessageAttributes"]["k"]
        == {"DataType": "String", "StringValue": "v"},
        "sent": len(sent),
    }

    attributes = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}}
    got = sqs.request_metadata(source_arn="arn:aws:s3:::uploads", service_principal="s3").send_message(
        QueueUrl="http://sqs.eu-west-1.localhost.localstack.cloud:4566/000000000000/q", MessageBody="{}",
        MessageSystemAttributes=attributes)
    _, _, context, request = calls[-1]
    out["send"] = {
        "message_id": got["MessageId"],
        "internal": dict(context.internal_request_params or {}),
        "body": json.loads(context.request.data),
        "copied": request["MessageSystemAttributes"] is not attributes
        and request["MessageSystemAttributes"] == attributes,
        "sent": len(sent),
    }

    before = len(calls)
    got = sqs.send_message(QueueUrl="http://sqs.eu-west-1.localhost.localstack.cloud:4566/000000000000/broken",
                           MessageBody="{}")
    out["error"] = {"message_id": got["MessageId"], "provider_calls": len(calls) - before, "sent": len(sent)}

    before = len(calls)
    sqs.get_queue_url(QueueName="q")
    out["unlisted"] = {"provider_calls": len(calls) - before, "sent": len(sent)}

    lam = lc.register(factory(region_name="eu-west-1", endpoint_url="http://localhost.localstack.cloud:4566",
                               aws_access_key_id="000000000042", aws_secret_access_key="test").lambda_)
    lam.meta.events.register("before-send.lambda.*", usual_path)
    got = lam.invoke(FunctionName="arn:aws:lambda:eu-west-1:000000000042:function:f", Payload='{"Records": []}')
    _, _, context, request = calls[-1]
    out["invoke"] = {
        "payload": json.load(got["Payload"]), "status": got["StatusCode"],
        "request_id": got["ResponseMetadata"]["RequestId"] == context.request_id,
        "handler_read": request["Payload"].read().decode(), "account": context.account_id,
        "user_agent": "Botocore" in context.request.user_agent.string or "Boto3" in context.request.user_agent.string,
    }
    print(json.dumps(out, default=str))
    """
)


@pytest.fixture(scope="module")
def answers() -> dict:
    if not PY.exists():
        pytest.skip(f"no emulator venv at {EMULATOR_VENV}: run 'make emulator-venv'")
    run = subprocess.run(
        [str(PY), "-c", SCRIPT, str(ROOT / "harness" / "executor")], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_listed_call_is_answered_by_the_provider_with_the_context_the_gateway_builds(answers: dict) -> None:
    receive = answers["receive"]
    assert receive["sent"] == 0  # nothing reached the HTTP layer
    assert receive["messages"] == ["m1"]
    assert receive["status"] == 200 and "RequestId" in receive["metadata"]
    assert receive["service"] == "sqs" and receive["operation"] == "ReceiveMessage"
    assert receive["account"] == "000000000000" and receive["region"] == "eu-west-1"
    assert receive["request"]["MaxNumberOfMessages"] == 10


def test_neither_side_holds_the_others_dicts(answers: dict) -> None:
    assert answers["receive"]["stored_untouched"]  # the caller renamed a key in what it got: the store kept its own
    assert answers["send"]["copied"]


def test_internal_call_parameters_reach_the_provider(answers: dict) -> None:
    send = answers["send"]
    assert send["message_id"] == "sent-1" and send["sent"] == 0
    assert send["internal"]["source_arn"] == "arn:aws:s3:::uploads"
    assert send["internal"]["service_principal"] == "s3"
    assert send["body"]["MessageBody"] == "{}"  # the body as botocore serialised it (moto-backed providers parse it)


def test_a_failed_direct_answer_goes_the_usual_way(answers: dict) -> None:
    error = answers["error"]
    assert error["provider_calls"] == 1  # tried directly once, then
    assert error["sent"] == 1  # sent through the usual path, whose answer the caller got
    assert error["message_id"] == "usual-path"


def test_an_unlisted_operation_goes_the_usual_way(answers: dict) -> None:
    assert answers["unlisted"] == {"provider_calls": 0, "sent": 2}


def test_invoke_streams_its_payload_both_ways(answers: dict) -> None:
    invoke = answers["invoke"]
    assert invoke["handler_read"] == '{"Records": []}'
    assert invoke["payload"] == {"batchItemFailures": []}
    assert invoke["status"] == 200 and invoke["request_id"]
    assert invoke["account"] == "000000000042"
    assert invoke["user_agent"]
