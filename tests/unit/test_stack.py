"""The stack definition: names from the stack name, AWS-guided defaults, handler env, least-privilege policies, zip."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from infra.errors import InfraError, InfraErrorCode
from infra.package import code_sha256, code_zip_bytes
from infra.stack import PROFILES, apply_overrides, build_stack
from thumbnailer.config import Settings


def _all_names(stack) -> set[str]:  # type: ignore[no-untyped-def]
    return {b.name for b in stack.buckets} | {
        stack.queue.name,
        stack.dlq.name,
        stack.function.name,
        stack.function.role_name,
        stack.function.log_group,
    }


def test_every_name_derives_from_the_stack_name_so_stacks_coexist() -> None:
    a, b = build_stack("alpha"), build_stack("beta")
    assert all("alpha" in n for n in _all_names(a))
    assert not _all_names(a) & _all_names(b)
    assert a.input_bucket.name == "alpha-input" and a.output_bucket_name == "alpha-output"


def test_bucket_names_carry_the_qualifier_for_global_uniqueness_on_aws() -> None:
    stack = build_stack("thumbs", account="123456789012", region="eu-west-1", qualifier="123456789012-eu-west-1")
    assert stack.input_bucket.name == "thumbs-123456789012-eu-west-1-input"
    assert stack.queue_arn(stack.queue.name) == "arn:aws:sqs:eu-west-1:123456789012:thumbs-jobs"


def test_default_profile_follows_aws_guidance() -> None:
    stack = build_stack()
    cfg = stack.config
    assert stack.queue.visibility_timeout_s >= 6 * cfg.function_timeout_s + cfg.batching_window_s
    assert stack.dlq.retention_s == 864000
    assert stack.dlq.retention_s > stack.queue.retention_s
    assert stack.queue.max_receive_count == 3 and stack.queue.dead_letter_queue == stack.dlq.name
    assert stack.mapping.function_response_types == ("ReportBatchItemFailures",)
    assert stack.mapping.maximum_concurrency >= 2  # the minimum AWS (and LocalStack's API) accept
    assert stack.function.runtime == "python3.13" and stack.function.architecture == "arm64"
    assert stack.function.handler == "thumbnailer.app.lambda_handler"
    assert stack.output_bucket is not None and stack.output_bucket.name != stack.input_bucket.name
    assert stack.input_bucket.versioned
    assert stack.notification.prefix == "uploads/" and stack.notification.events == ("s3:ObjectCreated:*",)


def test_seed_profile_reproduces_the_seed_settings() -> None:
    stack = build_stack(profile="seed")
    assert (stack.queue.visibility_timeout_s, stack.function.timeout_s, stack.function.memory_mb) == (60, 60, 128)
    assert stack.output_bucket is None and stack.output_bucket_name == stack.input_bucket.name


def test_function_environment_is_the_handlers_own_settings_round_trip() -> None:
    stack = build_stack()
    env = stack.function.environment("http://queue/dlq")
    settings = Settings.from_env(env)
    assert settings.to_env() == env
    assert settings.output_bucket == "thumbs-output"
    assert settings.dlq_url == "http://queue/dlq"
    assert settings.max_receive_count == stack.queue.max_receive_count
    assert settings.input_prefix == stack.notification.prefix
    single = Settings.from_env(build_stack(profile="seed").function.environment("u"))
    assert single.output_bucket == ""  # single-bucket mode


def _statements(stack):  # type: ignore[no-untyped-def]
    return stack.role_policy()["Statement"]


def test_role_policy_is_least_privilege() -> None:
    stack = build_stack()
    input_arn = stack.bucket_arn(stack.input_bucket.name)
    for st in _statements(stack):
        assert st["Effect"] == "Allow"
        assert "*" not in st["Resource"], st
        assert all(not a.endswith("*") for a in st["Action"]), st
        if any(r.startswith(input_arn) for r in st["Resource"]):
            assert not {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObject"} & set(st["Action"]), st
    actions = {a for st in _statements(stack) for a in st["Action"]}
    assert {
        "s3:GetObject",
        "s3:PutObject",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:SendMessage",
        "logs:PutLogEvents",
    } <= actions
    send = next(st for st in _statements(stack) if "sqs:SendMessage" in st["Action"])
    assert send["Resource"] == [stack.queue_arn(stack.dlq.name)]  # only the DLQ, never the main queue
    put = next(st for st in _statements(stack) if "s3:PutObject" in st["Action"])
    assert put["Resource"] == [f"{stack.bucket_arn('thumbs-output')}/thumbnails/*"]


def test_single_bucket_role_writes_only_under_the_output_prefix() -> None:
    stack = build_stack(profile="seed")
    put = next(st for st in _statements(stack) if "s3:PutObject" in st["Action"])
    assert put["Resource"] == [f"{stack.bucket_arn('thumbs-input')}/thumbnails/*"]


def test_queue_policy_lets_only_this_stacks_bucket_send() -> None:
    stack = build_stack(account="123456789012")
    (st,) = stack.queue_policy()["Statement"]
    assert st["Principal"] == {"Service": "s3.amazonaws.com"} and st["Action"] == "sqs:SendMessage"
    assert st["Condition"]["ArnEquals"]["aws:SourceArn"] == "arn:aws:s3:::thumbs-input"
    assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    json.dumps(stack.queue_policy())  # serialisable as is


def test_overrides_convert_types_and_reject_unknown_names() -> None:
    cfg = apply_overrides(PROFILES["default"], {"memory_mb": "2048", "single_bucket": "true", "backend": "vips"})
    assert (cfg.memory_mb, cfg.single_bucket, cfg.backend) == (2048, True, "vips")
    with pytest.raises(InfraError) as exc:
        apply_overrides(PROFILES["default"], {"memroy_mb": "1"})
    assert exc.value.code == InfraErrorCode.INVALID_OVERRIDE and "memroy_mb" in exc.value.message
    with pytest.raises(InfraError) as exc:
        apply_overrides(PROFILES["default"], {"memory_mb": "lots"})
    assert exc.value.code == InfraErrorCode.INVALID_OVERRIDE
    assert exc.value.message == "Expected an integer for memory_mb but received 'lots'"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"stack_name": "Bad_Name"}, InfraErrorCode.INVALID_STACK),
        ({"profile": "prod"}, InfraErrorCode.UNKNOWN_PROFILE),
        ({"overrides": {"memory_mb": 64}}, InfraErrorCode.INVALID_STACK),
        ({"overrides": {"architecture": "sparc"}}, InfraErrorCode.INVALID_STACK),
        ({"overrides": {"maximum_concurrency": 1}}, InfraErrorCode.INVALID_STACK),
        ({"overrides": {"output_prefix": "uploads/thumbs/"}}, InfraErrorCode.INVALID_STACK),  # handler's own check
    ],
)
def test_invalid_definitions_fail_with_a_stable_code(kwargs: dict, code: InfraErrorCode) -> None:
    with pytest.raises(InfraError) as exc:
        build_stack(**kwargs)
    assert exc.value.code == code
    assert exc.value.message.startswith("Expected ")


def test_code_zip_is_deterministic_and_rooted_at_handlers() -> None:
    first, second = code_zip_bytes(), code_zip_bytes()
    assert first == second and code_sha256(first) == code_sha256(second)
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "thumbnailer/app.py" in names and "thumbnailer/config.py" in names
    assert names == sorted(names)
    assert not [n for n in names if "__pycache__" in n or not n.endswith(".py")]


def test_code_zip_changes_when_a_source_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("A = 1\n")
    before = code_zip_bytes(tmp_path)
    (tmp_path / "pkg" / "m.py").write_text("A = 2\n")
    assert code_zip_bytes(tmp_path) != before


def test_notifier_topology_routes_s3_through_the_notifier_with_least_privilege() -> None:
    from notifier.config import NotifierSettings

    stack = build_stack("nt", overrides={"topology": "notifier"})
    assert stack.notifier is not None and stack.notifier.handler == "notifier.app.lambda_handler"
    assert stack.notification.function == stack.notifier.name  # the bucket invokes the notifier, not SQS
    assert stack.queue_policy() is None  # no S3 principal on the queue: the notifier's role sends
    env = stack.notifier.environment("http://127.0.0.1:4566/000000000000/nt-jobs")
    assert NotifierSettings.from_env(env).queue_url.endswith("/nt-jobs")
    statements = stack.notifier_policy()["Statement"]
    send = next(st for st in statements if "sqs:SendMessage" in st["Action"])
    assert send["Resource"] == [stack.queue_arn("nt-jobs")]
    for st in statements:
        assert "*" not in st["Resource"] and not {"s3:DeleteObject", "s3:PutObject"} & set(st["Action"])
    assert [role for role, _ in stack.all_statements()] == [stack.function.role_name, stack.notifier.role_name]
    assert build_stack("nt").notifier is None  # direct topology by default
