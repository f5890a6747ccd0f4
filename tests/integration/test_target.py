"""The instruments against a stack deployed through CloudFormation (the CDK app, `make deploy-cdk-local`'s path),
reached only by its name and endpoint, as on AWS: `harness load smoke --target`, `harness observe`, the clean-up."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import observe as observe_cli
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
