"""Run the real `cdk bootstrap` / `cdk deploy` / `cdk destroy` of the app against an emulator endpoint or AWS.

The same code path for both: only the environment differs. For an emulator (`endpoint` set) the CLI gets
AWS_ENDPOINT_URL and the test credentials (account 000000000000); for AWS it gets the caller's environment unchanged
(AWS_PROFILE / the standard chain, or `--profile`). The stack is the AWS variant of the app (pseudo-parameters for
account, region and partition), so what CloudFormation receives on the emulator is what AWS would receive.

Code asset: on AWS the packaged zip (`make package`, deps included). On the emulator the executor runs every function
with the project venv as its layer, so the code-only zip (infra/package.py) is the asset: a zip with arm64 wheels
would shadow the venv's x86_64 ones on sys.path. `code="artifact"` deploys the packaged zip anyway (issue 13 part 1's
artifact mode runs it as AWS would).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from common.credentials import DEFAULT_REGION, TEST_ACCESS_KEY, TEST_SECRET_KEY
from common.paths import ROOT
from infra.cdk.synth import cdk_command, cli_environment, context_args
from infra.errors import InfraError, InfraErrorCode
from infra.package import code_zip_bytes

BOOTSTRAP_STACK = "CDKToolkit"
CDK_TIMEOUT_S = 900
LOCAL_OUT = ROOT / "infra" / ".build" / "cdk.out.deploy"
CODE_ONLY_ZIP = ROOT / "infra" / ".build" / "cdk-code-only.zip"


@dataclass(frozen=True)
class CdkTarget:
    """Where the CLI deploys: an emulator endpoint (test credentials) or AWS (endpoint None, standard chain)."""

    region: str = DEFAULT_REGION
    endpoint: str | None = None
    aws_profile: str | None = None

    @property
    def is_emulator(self) -> bool:
        return self.endpoint is not None

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        if self.endpoint is not None:
            for key in [k for k in env if k.startswith("AWS_ENDPOINT_URL_")] + ["AWS_PROFILE", "AWS_SESSION_TOKEN"]:
                env.pop(key, None)
            env.update(
                {
                    "AWS_ENDPOINT_URL": self.endpoint,
                    "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
                }
            )
        elif self.aws_profile:
            env["AWS_PROFILE"] = self.aws_profile
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.region
        return cli_environment(env)

    def session(self) -> boto3.Session:
        if self.endpoint is not None:
            return boto3.Session(
                aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY, region_name=self.region
            )
        return boto3.Session(profile_name=self.aws_profile, region_name=self.region)

    def client(self, service: str) -> object:
        return self.session().client(service, endpoint_url=self.endpoint, region_name=self.region)


def cfn_stack_name(stack: str) -> str:
    """The CloudFormation stack of pipeline `stack` (the app's construct id)."""
    return f"{stack}-pipeline"


def code_asset(code: str, artifact: Path | None = None) -> Path:
    """The zip to publish: "code-only" (written fresh from handlers/) or "artifact" (the given/packaged zip)."""
    if code == "code-only":
        CODE_ONLY_ZIP.parent.mkdir(parents=True, exist_ok=True)
        data = code_zip_bytes()
        if not CODE_ONLY_ZIP.is_file() or CODE_ONLY_ZIP.read_bytes() != data:
            CODE_ONLY_ZIP.write_bytes(data)
        return CODE_ONLY_ZIP
    if code != "artifact":
        raise InfraError(
            InfraErrorCode.INVALID_OVERRIDE, f"Expected code-only or artifact for code but received {code!r}"
        )
    path = (artifact or ROOT / ".package" / "lambda-arm64.zip").resolve()
    if not path.is_file():
        raise InfraError(
            InfraErrorCode.PACKAGE_FAILED, f"Expected the function zip at {path} but received no file (make package)"
        )
    return path


def _run(argv: list[str], target: CdkTarget, what: str, *, stream: bool) -> str:
    try:
        proc = subprocess.run(
            argv,
            cwd=ROOT,  # `python -m infra.cdk.app` imports from the project root
            env=target.environment(),
            capture_output=not stream,
            text=True,
            timeout=CDK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(InfraErrorCode.CDK_FAILED, f"cdk {what} did not finish within {CDK_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        tail = "" if stream else (proc.stderr or proc.stdout or "")[-2000:]
        raise InfraError(InfraErrorCode.CDK_FAILED, f"cdk {what} exited {proc.returncode}: {tail}".rstrip(": "))
    return proc.stdout or ""


def is_bootstrapped(target: CdkTarget) -> bool:
    cfn = target.client("cloudformation")
    try:
        stacks = cfn.describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"]  # type: ignore[attr-defined]
    except ClientError:
        return False
    return (
        bool(stacks)
        and str(stacks[0].get("StackStatus", "")).endswith("_COMPLETE")
        and "DELETE" not in str(stacks[0].get("StackStatus"))
    )


def _app_args(stack: str, profile: str, zip_path: Path, out: Path) -> list[str]:
    app = f"{sys.executable} -m infra.cdk.app"
    context = {"stack": stack, "profile": profile, "artifact": str(zip_path)}
    return ["--app", app, "--output", str(out), "--no-notices", "--no-version-reporting", *context_args(context)]


def bootstrap(target: CdkTarget, *, stream: bool = False) -> bool:
    """`cdk bootstrap` of the target's environment unless CDKToolkit is already complete; True if it ran."""
    if is_bootstrapped(target):
        return False
    env = f"aws://{_account(target)}/{target.region}"
    _run(cdk_command("bootstrap", env, "--no-notices", "--app", ""), target, "bootstrap", stream=stream)
    return True


def _account(target: CdkTarget) -> str:
    return str(target.client("sts").get_caller_identity()["Account"])  # type: ignore[attr-defined]


def deploy(
    target: CdkTarget,
    *,
    stack: str = "thumbs",
    profile: str = "default",
    code: str | None = None,
    artifact: Path | None = None,
    approval: str | None = None,
    stream: bool = False,
) -> dict[str, str]:
    """Bootstrap if needed, then `cdk deploy <stack>-pipeline` (assets published); returns the stack's outputs."""
    code = code or ("code-only" if target.is_emulator else "artifact")
    zip_path = code_asset(code, artifact)
    bootstrap(target, stream=stream)
    approval = approval or ("never" if target.is_emulator else "broadening")
    argv = cdk_command(
        "deploy",
        cfn_stack_name(stack),
        "--require-approval",
        approval,
        *_app_args(stack, profile, zip_path, LOCAL_OUT),
    )
    _run(argv, target, "deploy", stream=stream)
    return stack_outputs(target, stack)


def stack_outputs(target: CdkTarget, stack: str) -> dict[str, str]:
    cfn = target.client("cloudformation")
    try:
        doc = cfn.describe_stacks(StackName=cfn_stack_name(stack))["Stacks"][0]  # type: ignore[attr-defined]
    except ClientError as exc:
        raise InfraError(
            InfraErrorCode.NOT_DEPLOYED, f"Expected stack {cfn_stack_name(stack)} but received {exc}"
        ) from exc
    return {o["OutputKey"]: o["OutputValue"] for o in doc.get("Outputs", [])}


def destroy(target: CdkTarget, *, stack: str = "thumbs", profile: str = "default", stream: bool = False) -> list[str]:
    """`cdk destroy --force`, then (emulator only) empty and delete the retained buckets; returns what was done."""
    done: list[str] = []
    try:
        outputs = stack_outputs(target, stack)
    except InfraError:
        return [f"{cfn_stack_name(stack)}: not deployed"]
    zip_path = code_asset("code-only")
    _run(
        cdk_command("destroy", cfn_stack_name(stack), "--force", *_app_args(stack, profile, zip_path, LOCAL_OUT)),
        target,
        "destroy",
        stream=stream,
    )
    done.append(f"cdk destroy {cfn_stack_name(stack)}")
    if target.is_emulator:  # on AWS the retained buckets are the owner's to empty (never delete data remotely)
        s3 = target.session().resource("s3", endpoint_url=target.endpoint, region_name=target.region)
        for name in dict.fromkeys(v for k, v in outputs.items() if k in ("InputBucket", "OutputBucket")):
            bucket = s3.Bucket(name)
            try:
                bucket.object_versions.delete()
                bucket.delete()
                done.append(f"emptied and deleted bucket {name}")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                    raise InfraError(InfraErrorCode.DESTROY_FAILED, f"bucket {name}: {exc}") from exc
    return done


def main(argv: list[str] | None = None) -> int:
    """`python -m infra.cdk.deploy deploy|destroy [--endpoint URL] [--stack S] [--profile P] [--aws-profile A]`."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m infra.cdk.deploy", description=__doc__.split("\n")[0])
    p.add_argument("action", choices=("deploy", "destroy", "bootstrap"))
    p.add_argument("--endpoint", help="emulator URL (http://127.0.0.1:PORT); omit for AWS")
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    p.add_argument("--aws-profile", help="AWS named profile (AWS only; default: the standard chain)")
    p.add_argument("--stack", default="thumbs")
    p.add_argument("--profile", default="default", help="stack profile (default, seed, ...)")
    p.add_argument("--code", choices=("code-only", "artifact"), help="function asset (default: code-only locally)")
    p.add_argument("--artifact", type=Path, help="the zip for --code artifact (default .package/lambda-arm64.zip)")
    args = p.parse_args(argv)
    target = CdkTarget(region=args.region or DEFAULT_REGION, endpoint=args.endpoint, aws_profile=args.aws_profile)
    try:
        if args.action == "bootstrap":
            ran = bootstrap(target, stream=True)
            print(f"{BOOTSTRAP_STACK}: {'bootstrapped' if ran else 'already bootstrapped'}")
        elif args.action == "deploy":
            outputs = deploy(
                target, stack=args.stack, profile=args.profile, code=args.code, artifact=args.artifact, stream=True
            )
            print(f"stack {cfn_stack_name(args.stack)} at {target.endpoint or 'aws'}:")
            for key, value in sorted(outputs.items()):
                print(f"  {key} = {value}")
        else:
            for line in destroy(target, stack=args.stack, profile=args.profile, stream=True):
                print(line)
    except InfraError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
