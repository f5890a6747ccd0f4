"""CDK app entry (`cdk synth|deploy`): context -> stack definition -> PipelineStack.

Context keys: stack (default thumbs), profile (default), set ("knob=value,..." overrides), artifact (function zip;
default .package/lambda-arm64.zip, falling back to the code-only zip when absent), qualifier (bucket-name suffix;
default <account>-<region>), and
target=emulator (account 000000000000, us-east-1, no qualifier: the names infra.deploy gives on the emulator),
emulator_twin=true (add that emulator-named stack next to the AWS one, for the parity test).
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk

from common.paths import ROOT
from infra.artifact.build import default_output
from infra.cdk.pipeline_stack import PipelineStack
from infra.package import code_zip_bytes
from infra.stack import DEFAULT_REGION, EMULATOR_ACCOUNT, build_stack

DEFAULT_ARTIFACT = default_output("arm64")
CODE_ONLY_ZIP = ROOT / "infra" / ".build" / "code-only.zip"


def code_zip(artifact: str | None) -> Path:
    """The function zip for the asset: the given/packaged artifact, else a freshly written code-only zip."""
    if artifact:
        return Path(artifact).resolve()
    if DEFAULT_ARTIFACT.is_file():
        return DEFAULT_ARTIFACT
    CODE_ONLY_ZIP.parent.mkdir(parents=True, exist_ok=True)
    data = code_zip_bytes()
    if not CODE_ONLY_ZIP.is_file() or CODE_ONLY_ZIP.read_bytes() != data:
        CODE_ONLY_ZIP.write_bytes(data)
    return CODE_ONLY_ZIP


def parse_overrides(text: str) -> dict[str, str]:
    """Context `set` = "memory_mb=2048,batch_size=5" -> {"memory_mb": "2048", "batch_size": "5"}."""
    pairs = [p.strip() for p in text.split(",") if p.strip()]
    return {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in pairs)}


def build_app(app: cdk.App) -> list[PipelineStack]:
    """The stack for AWS (`<stack>-pipeline`), plus with context emulator_twin=true a twin named like infra.deploy's
    emulator resources (`<stack>-pipeline-emulator`) that the parity test compares with LocalStack."""
    ctx = app.node.try_get_context
    stack_name = str(ctx("stack") or "thumbs")
    profile = str(ctx("profile") or "default")
    overrides = parse_overrides(str(ctx("set") or ""))
    code = code_zip(ctx("artifact"))
    stacks = []
    if ctx("target") == "emulator":
        stacks.append(_emulator_stack(app, f"{stack_name}-pipeline", stack_name, profile, overrides, code))
    else:
        qualifier = ctx("qualifier")
        if qualifier is None:
            qualifier = f"{cdk.Aws.ACCOUNT_ID}-{cdk.Aws.REGION}"
        definition = build_stack(
            stack_name,
            profile,
            overrides=overrides,
            account=cdk.Aws.ACCOUNT_ID,
            region=cdk.Aws.REGION,
            partition=cdk.Aws.PARTITION,
            qualifier=str(qualifier),
        )
        stacks.append(PipelineStack(app, f"{stack_name}-pipeline", definition=definition, code_zip=code))
    if str(ctx("emulator_twin") or "").lower() == "true":
        stacks.append(_emulator_stack(app, f"{stack_name}-pipeline-emulator", stack_name, profile, overrides, code))
    return stacks


def _emulator_stack(
    app: cdk.App, construct_id: str, stack_name: str, profile: str, overrides: dict[str, str], code: Path
) -> PipelineStack:
    definition = build_stack(
        stack_name, profile, overrides=overrides, account=EMULATOR_ACCOUNT, region=DEFAULT_REGION, qualifier=""
    )
    return PipelineStack(
        app,
        construct_id,
        definition=definition,
        code_zip=code,
        env=cdk.Environment(account=EMULATOR_ACCOUNT, region=DEFAULT_REGION),
    )


def main() -> None:
    app = cdk.App()
    build_app(app)
    app.synth()


if __name__ == "__main__":
    main()
