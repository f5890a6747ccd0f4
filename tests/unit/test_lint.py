"""Stack lint: the default profile passes, the seed's mistakes are flagged with stable codes and a reason."""

from __future__ import annotations

import dataclasses
import re

import pytest

from infra import cli
from infra.deploy.apply import deploy
from infra.deploy.target import Clients, Target
from infra.errors import InfraError, InfraErrorCode
from infra.lint import Severity, errors, estimated_peak_memory_mb, lint
from infra.stack import PolicyStatement, Stack, build_stack


def _codes(stack: Stack) -> dict[str, Severity]:
    return {f.code: f.severity for f in lint(stack)}


def test_default_profile_passes_without_findings() -> None:
    assert lint(build_stack()) == []
    assert lint(build_stack(overrides={"topology": "notifier"})) == []


def test_seed_profile_is_flagged_for_visibility_memory_retention_and_single_bucket() -> None:
    findings = lint(build_stack(profile="seed"))
    codes = {f.code: f for f in findings}
    assert set(codes) == {"STK002", "STK003", "STK007", "STK009", "STK010"}  # STK003: the replica, issue 14
    assert all(f.severity == Severity.WARNING for f in findings)  # warnings: the seed still deploys
    vis = codes["STK002"].message
    assert "60 s" in vis and "360 s" in vis and "6 x function timeout" in vis
    mem = codes["STK010"].message
    assert "128 MB" in mem and f"{estimated_peak_memory_mb(100_000_000)} MB" in mem
    assert "THUMB_MAX_PIXELS" in mem


ALL_RULES_TRIGGERED = [
    build_stack(profile="seed"),
    build_stack(
        overrides={
            "visibility_timeout_s": 20,
            "report_batch_item_failures": False,
            "max_receive_count": 1,
            "batch_size": 100,
            "batching_window_s": 0,
            "log_retention_days": 3653,
        }
    ),
    build_stack(overrides={"single_bucket": True, "input_prefix": ""}),
]


@pytest.mark.parametrize("stack", ALL_RULES_TRIGGERED, ids=["seed", "many", "recursion"])
def test_every_finding_has_a_stable_code_a_resource_and_a_reason(stack: Stack) -> None:
    findings = lint(stack)
    assert findings
    for f in findings:
        assert re.fullmatch(r"STK\d{3}", f.code)
        assert f.resource
        assert len(f.problem) > 10 and len(f.why) > 10, f  # what is wrong, then why it matters
        assert str(f).startswith(f"{f.severity.upper()} {f.code} [{f.resource}] {f.problem}: ")


@pytest.mark.parametrize(
    ("overrides", "code", "severity"),
    [
        ({"visibility_timeout_s": 20}, "STK001", Severity.ERROR),
        ({"visibility_timeout_s": 150}, "STK002", Severity.WARNING),
        ({"report_batch_item_failures": False}, "STK003", Severity.ERROR),
        ({"max_receive_count": 1}, "STK005", Severity.WARNING),
        ({"dlq_retention_s": 3600}, "STK007", Severity.WARNING),
        ({"single_bucket": True}, "STK009", Severity.WARNING),
        ({"memory_mb": 512}, "STK010", Severity.WARNING),
        ({"batch_size": 100, "batching_window_s": 0}, "STK011", Severity.ERROR),
        ({"log_retention_days": 3653}, "STK015", Severity.WARNING),
    ],
)
def test_each_rule_fires_on_its_mistake(overrides: dict, code: str, severity: Severity) -> None:
    assert _codes(build_stack(overrides=overrides)).get(code) == severity


def test_visibility_rule_counts_the_batching_window() -> None:
    # 6 x 30 s + 1 s window = 181 s: 180 s is one second short
    assert "STK002" in _codes(build_stack(overrides={"visibility_timeout_s": 180}))
    assert "STK002" not in _codes(build_stack(overrides={"visibility_timeout_s": 181}))


def test_single_bucket_whose_filter_matches_the_thumbnails_is_a_recursion_error() -> None:
    # an empty notification prefix matches thumbnails/ too: every thumbnail would trigger the pipeline again
    stack = build_stack(overrides={"single_bucket": True, "input_prefix": ""})
    assert _codes(stack)["STK008"] == Severity.ERROR


def test_memory_estimate_follows_the_largest_allowed_image() -> None:
    small, large = estimated_peak_memory_mb(1_000_000), estimated_peak_memory_mb(100_000_000)
    assert small < large
    # lowering THUMB_MAX_PIXELS is the other fix the message proposes
    assert "STK010" not in _codes(build_stack(overrides={"memory_mb": 512, "max_pixels": 20_000_000}))


def test_handler_receive_count_must_match_the_redrive_policy() -> None:
    stack = build_stack()
    skewed = dataclasses.replace(
        stack,
        function=dataclasses.replace(
            stack.function, settings=dataclasses.replace(stack.function.settings, max_receive_count=5)
        ),
    )
    assert _codes(skewed)["STK006"] == Severity.ERROR


def test_missing_redrive_policy_is_an_error() -> None:
    stack = build_stack()
    no_dlq = dataclasses.replace(stack, queue=dataclasses.replace(stack.queue, dead_letter_queue=None))
    assert _codes(no_dlq)["STK004"] == Severity.ERROR


@dataclasses.dataclass(frozen=True)
class _ExtraStatement(Stack):
    extra: PolicyStatement | None = None

    def role_statements(self) -> tuple[PolicyStatement, ...]:
        return super().role_statements() + ((self.extra,) if self.extra else ())


def _with_statement(extra: PolicyStatement) -> Stack:
    base = build_stack()
    return _ExtraStatement(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Stack)}, extra=extra)


@pytest.mark.parametrize(
    ("statement", "code"),
    [
        (PolicyStatement("Everything", ("s3:GetObject",), ("*",)), "STK012"),
        (PolicyStatement("AllBuckets", ("s3:GetObject",), ("arn:aws:s3:::*",)), "STK012"),
        (PolicyStatement("AllS3", ("s3:*",), ("arn:aws:s3:::thumbs-output/thumbnails/*",)), "STK013"),
        (PolicyStatement("Cleanup", ("s3:DeleteObject",), ("arn:aws:s3:::thumbs-input/uploads/*",)), "STK014"),
    ],
)
def test_iam_rules_catch_wildcards_and_deletes_on_the_input(statement: PolicyStatement, code: str) -> None:
    stack = _with_statement(statement)
    assert _codes(stack)[code] == Severity.ERROR
    assert _codes(build_stack()) == {}  # the real policy has none of these


class _NoCalls(Clients):
    def __call__(self, service: str):  # type: ignore[no-untyped-def]
        raise AssertionError(f"deploy called {service} although lint failed")


def test_deploy_refuses_a_stack_with_lint_errors_before_any_call() -> None:
    stack = build_stack(overrides={"visibility_timeout_s": 10})
    with pytest.raises(InfraError) as exc:
        deploy(stack, _NoCalls(Target(region="us-east-1", endpoint="http://127.0.0.1:9")))
    assert exc.value.code == InfraErrorCode.LINT_FAILED and "STK001" in exc.value.message


def test_cli_lint_exit_codes_and_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lint"]) == 0
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().out
    assert cli.main(["lint", "--profile", "seed"]) == 0
    out = capsys.readouterr().out
    assert "WARNING STK002" in out and "WARNING STK010" in out and "5 warning(s)" in out
    assert cli.main(["lint", "--set", "visibility_timeout_s=10"]) == 1
    assert "ERROR STK001" in capsys.readouterr().out
    assert cli.main(["lint", "--set", "nope=1"]) == 2
    assert "INVALID_OVERRIDE" in capsys.readouterr().err
    assert errors(lint(build_stack(profile="seed"))) == []


def test_deploy_report_summary_prints_changes_and_lint_warnings() -> None:
    from infra.deploy.report import DeployReport

    report = DeployReport(
        "thumbs",
        "seed",
        "http://127.0.0.1:4566",
        changes=["created queue thumbs-dlq"],
        findings=lint(build_stack(profile="seed")),
    )
    lines = report.summary()
    assert lines[0] == "stack thumbs (profile seed) at http://127.0.0.1:4566: 1 change(s)"
    assert "  created queue thumbs-dlq" in lines
    assert sum(1 for line in lines if line.startswith("  WARNING STK")) == 5
    assert DeployReport("thumbs", "default", "x").summary() == ["stack thumbs (profile default) at x: no changes"]
