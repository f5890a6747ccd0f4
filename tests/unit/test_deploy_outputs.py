"""Deploy outputs as one typed value: built from the definition, a JSON round trip, other schema versions refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import cli
from infra.deploy.outputs import SCHEMA_VERSION, StackOutputs, outputs_path, read_outputs, write_outputs
from infra.deploy.target import Target
from infra.errors import InfraError, InfraErrorCode
from infra.settings import DeployDefaults
from infra.stack import build_stack


def _outputs(**overrides: str) -> StackOutputs:
    stack = build_stack("out", overrides=overrides or None)
    return StackOutputs.from_stack(
        stack,
        endpoint="http://127.0.0.1:4611",
        queue_url="http://q/out-jobs",
        queue_arn="arn:q",
        dlq_url="http://q/dlq",
        dlq_arn="arn:dlq",
        function_arn="arn:fn",
        role_arn="arn:role",
        mapping_uuid="u-1",
        notifier_arn="arn:notifier",
    )


def test_outputs_come_from_the_definition_plus_what_aws_assigned() -> None:
    out = _outputs()
    assert (out.stack_name, out.input_bucket, out.output_bucket, out.function_name) == (
        "out",
        "out-input",
        "out-output",
        "out-thumbnailer",
    )
    assert (out.input_prefix, out.output_prefix, out.schema_version) == ("uploads/", "thumbnails/", SCHEMA_VERSION)
    assert out.sizes == "large:1024x1024,small:256x256" and out.size_names == ("large", "small")
    assert out.notifier_function_name is None and out.notifier_function_arn is None  # direct topology
    assert not out.single_bucket
    seed = StackOutputs.from_stack(
        build_stack("out", "seed"),
        endpoint="aws",
        queue_url="q",
        queue_arn="qa",
        dlq_url="d",
        dlq_arn="da",
        function_arn="f",
        role_arn="r",
        mapping_uuid="u",
    )
    assert seed.single_bucket and seed.output_bucket == "out-input" and seed.profile == "seed"
    notifier = _outputs(topology="notifier")
    assert (notifier.notifier_function_name, notifier.notifier_function_arn) == ("out-notifier", "arn:notifier")


def test_json_round_trip_and_file(tmp_path: Path) -> None:
    out = _outputs(sizes="big:10x10,tiny:2x2")
    assert StackOutputs.from_json(out.to_json()) == out
    path = outputs_path(tmp_path, "out")
    assert path == tmp_path / "outputs" / "out.json"
    write_outputs(path, out)
    assert read_outputs(path) == out and out.size_names == ("big", "tiny")
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize("version", [None, 0, 2, "1"])
def test_another_schema_version_is_refused_with_a_code(version: object) -> None:
    doc = _outputs().to_dict()
    if version is None:
        del doc["schema_version"]  # a file written before outputs had a schema version
    else:
        doc["schema_version"] = version
    with pytest.raises(InfraError) as exc:
        StackOutputs.from_dict(doc)
    assert exc.value.code == InfraErrorCode.OUTPUTS_SCHEMA_UNSUPPORTED
    assert f"Expected outputs schema version {SCHEMA_VERSION}" in exc.value.message
    with pytest.raises(InfraError) as exc:
        StackOutputs(**{**_outputs().to_dict(), "schema_version": 2})
    assert exc.value.code == InfraErrorCode.OUTPUTS_SCHEMA_UNSUPPORTED


def test_missing_unknown_or_mistyped_fields_and_bad_json_are_refused(tmp_path: Path) -> None:
    doc = _outputs().to_dict()
    for broken in (
        {k: v for k, v in doc.items() if k != "queue_url"},
        {**doc, "thumb_sizes": "a:1x1"},
        {**doc, "memory_mb": "1536"},
        {**doc, "input_bucket": 7},
    ):
        with pytest.raises(InfraError) as exc:
            StackOutputs.from_dict(broken)
        assert exc.value.code == InfraErrorCode.OUTPUTS_INVALID
    with pytest.raises(InfraError) as exc:
        StackOutputs.from_json("{not json")
    assert exc.value.code == InfraErrorCode.OUTPUTS_INVALID
    with pytest.raises(InfraError) as exc:
        read_outputs(tmp_path / "outputs" / "none.json")
    assert exc.value.code == InfraErrorCode.NOT_DEPLOYED


def test_target_takes_plain_values_and_refuses_bad_ones() -> None:
    emu = Target.emulator("http://127.0.0.1:4611", "us-east-1")
    assert emu.is_emulator and emu.label == "http://127.0.0.1:4611"
    assert emu.boto3_session().get_credentials().access_key == "test"
    aws = Target.aws("eu-west-1")
    assert not aws.is_emulator and aws.label == "aws"
    for bad in (lambda: Target.emulator("127.0.0.1:4566", "us-east-1"), lambda: Target(region="")):
        with pytest.raises(InfraError) as exc:
            bad()
        assert exc.value.code == InfraErrorCode.INVALID_TARGET


def test_cli_defaults_come_from_the_harness_variables(tmp_path: Path) -> None:
    d = DeployDefaults.from_env({"HARNESS_PORT": "4611", "HARNESS_HOME": str(tmp_path), "HARNESS_REGION": "eu-west-1"})
    assert (d.endpoint, d.region, d.state_dir) == ("http://127.0.0.1:4611", "eu-west-1", tmp_path.resolve())
    assert DeployDefaults.from_env({"HARNESS_ENDPOINT": "http://h:1", "HARNESS_PORT": "9"}).endpoint == "http://h:1"
    with pytest.raises(InfraError) as exc:
        DeployDefaults.from_env({"HARNESS_PORT": "port"})
    assert exc.value.code == InfraErrorCode.INVALID_TARGET


def test_cli_outputs_prints_the_file_or_a_coded_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _outputs()
    write_outputs(outputs_path(tmp_path, "out"), out)
    assert cli.main(["outputs", "--stack", "out", "--state", str(tmp_path)]) == 0
    assert StackOutputs.from_json(capsys.readouterr().out) == out
    assert cli.main(["outputs", "--stack", "gone", "--state", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error NOT_DEPLOYED: Expected deploy outputs at ")
