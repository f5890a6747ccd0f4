"""STACK_PROFILE=seed: the seed replica (handlers/seed, nodejs20.x) with the seed design's settings and topology."""

from __future__ import annotations

from infra.lint import Severity, lint
from infra.stack import build_stack


def test_the_seed_profile_deploys_the_seed_replica_with_the_seed_s_settings() -> None:
    stack = build_stack(profile="seed")

    assert (stack.function.impl, stack.function.runtime, stack.function.handler) == (
        "seed",
        "nodejs20.x",
        "index.handler",
    )
    assert stack.function.timeout_s == stack.queue.visibility_timeout_s == 60
    assert (stack.mapping.batch_size, stack.mapping.batching_window_s, stack.mapping.function_response_types) == (
        10,
        0,
        (),
    )
    assert stack.queue.max_receive_count == 3
    assert stack.output_bucket is None and stack.output_bucket_name == stack.input_bucket.name
    # the replica reads its queue from the record's ARN; it takes no THUMB_ settings
    assert stack.function.environment("http://dlq") == {}
    consume = next(st for st in stack.role_policy()["Statement"] if st["Sid"] == "ConsumeQueue")
    assert "sqs:GetQueueUrl" in consume["Action"] and consume["Resource"] == [stack.queue_arn(stack.queue.name)]


def test_the_default_profile_keeps_our_handler() -> None:
    stack = build_stack()

    assert (stack.function.impl, stack.function.runtime) == ("thumbnailer", "python3.13")
    assert stack.mapping.function_response_types == ("ReportBatchItemFailures",)
    consume = next(st for st in stack.role_policy()["Statement"] if st["Sid"] == "ConsumeQueue")
    assert "sqs:GetQueueUrl" not in consume["Action"]


def test_no_report_batch_item_failures_is_an_error_for_our_handler_and_a_warning_for_the_seed() -> None:
    ours = {f.code: f for f in lint(build_stack(overrides={"report_batch_item_failures": False}))}
    seed = {f.code: f for f in lint(build_stack(profile="seed"))}

    assert ours["STK003"].severity == Severity.ERROR
    assert seed["STK003"].severity == Severity.WARNING  # the seed still deploys: its loss is what is measured
    assert "Records[0]" in seed["STK003"].message
