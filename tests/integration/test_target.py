"""The instruments against a stack deployed through CloudFormation (the CDK app, `make deploy-cdk-local`'s path),
reached only by its name and endpoint, as on AWS: `harness load smoke --target`, `harness observe`, the clean-up."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import observe as observe_cli
from harness.chaos import cli as chaos_cli
from harness.load import cli as load_cli
from harness.settings import HarnessSettings
from harness.target import resolve
from infra.cdk.deploy import CdkTarget, deploy, destroy
from infra.cdk.synth import CDK_CLI

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.cdk,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None or not CDK_CLI.exists(), reason="needs node + the aws-cdk CLI"),
]

STACK = "cdktarget"


@pytest.fixture(scope="module")
def deployed_stack(emulator: Any, harness_settings: HarnessSettings) -> Iterator[str]:
    target = CdkTarget(region=harness_settings.region, endpoint=harness_settings.endpoint)
    deploy(target, stack=STACK)
    try:
        yield STACK
    finally:
        destroy(target, stack=STACK)


def test_load_smoke_against_the_target_accounts_for_every_upload_and_cleans_its_prefix(
    deployed_stack: str, harness_settings: HarnessSettings, tmp_path: Path, aws: Any
) -> None:
    endpoint = harness_settings.endpoint
    out = tmp_path / "load"
    # only the name and the endpoint: no outputs file, no deploy (the stack is not in HARNESS_HOME/outputs)
    assert not (harness_settings.home / "outputs" / f"{deployed_stack}.json").exists()
    code = load_cli.main(["smoke", "--target", deployed_stack, "--endpoint-url", endpoint, "--out", str(out)])
    assert code == 0  # 0 = every upload accounted for, none lost, the invariant holds
    report = json.loads((out / "pillow" / "report.json").read_text())
    acc = report["accounting"]
    assert acc["expected"] == report["uploads"]["accepted"] == 100 and acc["lost"] == 0
    assert acc["counts"]["dlq"] > 0 and acc["counts"]["complete"] > 0  # the smoke mix has poison files
    assert report["stack"]["name"] == deployed_stack and report["stack"]["endpoint"] == endpoint
    assert f"Stack `{deployed_stack}` at {endpoint}" in (out / "pillow" / "report.md").read_text()
    assert report["overrides"] == {}  # as deployed: nothing changed on the stack
    run_id = report["run_id"]
    target = resolve(deployed_stack, endpoint_url=endpoint)
    o = target.outputs
    s3 = aws("s3")
    left = s3.list_objects_v2(Bucket=o.input_bucket, Prefix=f"{o.input_prefix}{run_id}/").get("KeyCount", 0)
    left += s3.list_objects_v2(Bucket=o.output_bucket, Prefix=o.output_prefix).get("KeyCount", 0)
    assert left == 0
    assert sum(report["cleanup"].values()) >= acc["expected"] + acc["counts"]["complete"] * len(o.size_names)


def test_observe_accounts_for_a_kept_run(
    deployed_stack: str, harness_settings: HarnessSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = harness_settings.endpoint
    out = tmp_path / "kept"
    argv = ["smoke", "--count", "20", "--target", deployed_stack, "--endpoint-url", endpoint, "--out", str(out)]
    assert load_cli.main([*argv, "--keep-prefix"]) == 0
    report = json.loads((out / "pillow" / "report.json").read_text())
    capsys.readouterr()
    import argparse

    parser = argparse.ArgumentParser()
    observe_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        ["observe", "--target", deployed_stack, "--endpoint-url", endpoint, "--run-id", report["run_id"], "--json"]
    )
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stack"]["name"] == deployed_stack
    assert doc["accounting"]["counts"] == report["accounting"]["counts"]
    assert doc["accounting"]["lost"] == 0


def test_chaos_against_the_target_as_a_remote_account_runs_only_poison_and_leaves_the_stack_unchanged(
    deployed_stack: str, harness_settings: HarnessSettings, aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = harness_settings.endpoint
    target = resolve(deployed_stack, endpoint_url=endpoint)
    o = target.outputs
    lam, sqs = aws("lambda"), aws("sqs")
    before = (
        lam.get_function_configuration(FunctionName=o.function_name),
        sqs.get_queue_attributes(QueueUrl=o.queue_url, AttributeNames=["All"])["Attributes"],
    )
    argv = ["--target", deployed_stack, "--endpoint-url", endpoint, "--as-remote"]
    # scenarios that need the fault proxy or local processes are refused, naming the ones that can run
    assert chaos_cli.main(["crash", *argv, "--yes"]) == 2
    err = capsys.readouterr().err
    assert "TARGET_REFUSED" in err and "crash" in err and err.rstrip().endswith("poison")
    assert chaos_cli.main(["poison", *argv]) == 2  # a remote account needs --yes after the estimate
    assert "TARGET_NEEDS_YES" in capsys.readouterr().err
    assert chaos_cli.main(["poison", *argv, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "estimate:" in out and "found, not deployed, not changed" in out
    folder = Path(next(line for line in out.splitlines() if line.startswith("report: ")).split()[1]).parent
    doc = json.loads((folder / "report.json").read_text())
    (result,) = doc["scenarios"]
    assert result["name"] == "poison" and result["passed"] is True
    assert result["evidence"]["poison_uploads"] == result["evidence"]["poison_dlq_first_receive"] == 6
    assert result["evidence"]["complete"] == 12 and result["verdict"]["lost_count"] == 0
    assert doc["stack"] == deployed_stack and doc["endpoint"] == endpoint
    after = (
        lam.get_function_configuration(FunctionName=o.function_name),
        sqs.get_queue_attributes(QueueUrl=o.queue_url, AttributeNames=["All"])["Attributes"],
    )
    assert after[0]["Environment"] == before[0]["Environment"] and after[0]["Timeout"] == before[0]["Timeout"]
    assert {k: after[1][k] for k in ("VisibilityTimeout", "RedrivePolicy", "DelaySeconds")} == {
        k: before[1][k] for k in ("VisibilityTimeout", "RedrivePolicy", "DelaySeconds")
    }
    s3 = aws("s3")
    run_prefix = f"{o.input_prefix}{result['run_id']}/"
    assert s3.list_objects_v2(Bucket=o.input_bucket, Prefix=run_prefix).get("KeyCount", 0) == 0


def test_the_cdk_stack_survives_an_emulator_restart_and_deploys_again(
    deployed_stack: str, harness_settings: HarnessSettings, aws: Any
) -> None:
    """CloudFormation, SSM (the bootstrap version parameter) and IAM are persisted together: after a restart the
    stack is still complete and works, and `cdk bootstrap` + `cdk deploy` run again (roles without their stack made
    the bootstrap fail with EntityAlreadyExists; a lost version parameter made the deploy refuse)."""
    from common.waiting import wait_until
    from harness import emulator as emu
    from harness.chaos.inputs import payload

    if harness_settings.endpoint_override:
        pytest.skip("restarts the emulator this harness runs (embedded, or the docker-mode container)")
    if os.environ.get("HARNESS_PERSIST", "1").strip().lower() in ("0", "false", "no", "off"):
        pytest.skip("persistence is off (HARNESS_PERSIST=0): a restart starts empty by design")
    emu.stop(harness_settings)
    emu.ensure_running(harness_settings)
    target = resolve(deployed_stack, endpoint_url=harness_settings.endpoint)  # still complete on CloudFormation
    deploy(CdkTarget(region=harness_settings.region, endpoint=harness_settings.endpoint), stack=deployed_stack)
    o = target.outputs
    s3 = aws("s3")
    item = payload("image", seed=7)
    key = f"{o.input_prefix}restart-check/photo{item.suffix}"
    s3.put_object(Bucket=o.input_bucket, Key=key, Body=item.body, ContentType=item.content_type)
    prefix_hits = [f"{o.output_prefix}{size}/restart-check/" for size in o.size_names]

    def thumbnails() -> list[str]:
        return [
            c["Key"]
            for p in prefix_hits
            for c in s3.list_objects_v2(Bucket=o.output_bucket, Prefix=p).get("Contents", [])
        ]

    found = wait_until(
        lambda: len(thumbnails()) >= len(o.size_names) and thumbnails(),
        120.0,
        interval=1.0,
        what="thumbnails of an upload after the restart",
    )
    assert len(found) == len(o.size_names)
    for k in [key, *found]:
        s3.delete_object(Bucket=o.input_bucket if k == key else o.output_bucket, Key=k)
