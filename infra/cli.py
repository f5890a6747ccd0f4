"""`python -m infra`: lint, deploy, destroy, describe, outputs and synth for the pipeline stack (the only printer)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import CodedError
from infra.errors import InfraError, InfraErrorCode
from infra.lint import errors, lint
from infra.settings import DeployDefaults
from infra.stack import PROFILES, build_stack

if TYPE_CHECKING:
    from infra.deploy.target import Clients


def _out(line: str = "", *, err: bool = False) -> None:
    """Print one line; a closed pipe (`... | head`) ends output quietly."""
    try:
        print(line, file=sys.stderr if err else sys.stdout, flush=True)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")


def _overrides(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InfraError(InfraErrorCode.INVALID_OVERRIDE, f"Expected key=value for --set but received {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", default="thumbs", help="stack name; every resource name derives from it")
    p.add_argument("--profile", default="default", choices=sorted(PROFILES), help="stack profile")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one knob of the profile (e.g. memory_mb=2048); repeatable",
    )


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aws", action="store_true", help="deploy to real AWS (credentials from --aws-profile/env)")
    p.add_argument("--aws-profile", default=None, help="AWS CLI profile for --aws")
    p.add_argument("--region", default=None, help="region (default: HARNESS_REGION for the emulator)")
    p.add_argument("--endpoint", default=None, help="another emulator endpoint (e.g. LocalStack in Docker)")
    _state(p)


def _state(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state",
        type=Path,
        default=None,
        help="state folder whose outputs/ holds <stack>.json (default $HARNESS_HOME)",
    )


def _clients(args: argparse.Namespace, defaults: DeployDefaults) -> Clients:
    from infra.deploy.target import Clients, Target

    region = args.region or defaults.region
    if args.aws:
        return Clients(Target.aws(region, profile=args.aws_profile))
    return Clients(Target.emulator(args.endpoint or defaults.endpoint, region))


def _add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lint", help="check the stack definition against AWS guidance (exit 1 on errors)")
    _common(p)
    p.set_defaults(func=run, command="lint")
    p = sub.add_parser("deploy", help="lint, then create/update the stack in place; writes the outputs file")
    _common(p)
    _target(p)
    p.add_argument(
        "--code",
        type=Path,
        default=None,
        help="function zip (default: code-only zip on the emulator, .package/lambda-arm64.zip on AWS)",
    )
    p.add_argument("--outputs", type=Path, default=None, help="outputs file (default <state>/outputs/<stack>.json)")
    p.set_defaults(func=run, command="deploy")
    p = sub.add_parser("destroy", help="delete every resource of the stack")
    _common(p)
    _target(p)
    p.set_defaults(func=run, command="destroy")
    p = sub.add_parser("describe", help="resources of the stack with queue/DLQ depths")
    _common(p)
    _target(p)
    p.set_defaults(func=run, command="describe")
    p = sub.add_parser("outputs", help="print the outputs file of a deployed stack")
    p.add_argument("--stack", default="thumbs")
    _state(p)
    p.set_defaults(func=run, command="outputs")
    p = sub.add_parser("synth", help="synthesize the CDK app (offline) into a cloud assembly")
    _common(p)
    p.add_argument("--out", type=Path, default=None, help="cloud assembly folder (default infra/cdk.out)")
    p.add_argument("--artifact", type=Path, default=None, help="function zip for the CDK asset")
    p.add_argument("--qualifier", default=None, help="bucket-name qualifier (default: <account>-<region> tokens)")
    p.set_defaults(func=run, command="synth")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    _add_commands(parser.add_subparsers(dest="infra_command", required=True))
    return parser


def run(args: argparse.Namespace) -> int:
    """Run one command; a coded error prints `error CODE: message` and exits 2 (anything else is a bug)."""
    try:
        return _run(args)
    except CodedError as exc:
        _out(f"error {exc.code}: {exc.message}", err=True)
        return 2


def _run(args: argparse.Namespace) -> int:
    defaults = DeployDefaults.from_env()
    state_dir = getattr(args, "state", None) or defaults.state_dir
    if args.command == "outputs":
        from infra.deploy.outputs import outputs_path, read_outputs

        _out(read_outputs(outputs_path(state_dir, args.stack)).to_json().rstrip("\n"))
        return 0
    overrides = _overrides(args.set)
    if args.command == "lint":
        findings = lint(build_stack(args.stack, args.profile, overrides=overrides))
        for f in findings:
            _out(str(f))
        _out(
            f"{len(errors(findings))} error(s), {len(findings) - len(errors(findings))} warning(s) "
            f"(stack {args.stack}, profile {args.profile})"
        )
        return 1 if errors(findings) else 0
    if args.command == "synth":
        from infra.cdk.synth import synth

        result = synth(
            stack_name=args.stack,
            profile=args.profile,
            overrides=overrides,
            out_dir=args.out,
            artifact=args.artifact,
            qualifier=args.qualifier,
        )
        for warning in result.warnings:
            _out(warning)
        _out(f"synthesized {result.template_path}")
        return 0
    from infra.deploy.apply import deploy
    from infra.deploy.code import load_code
    from infra.deploy.describe import describe
    from infra.deploy.destroy import destroy
    from infra.deploy.outputs import outputs_path
    from infra.deploy.target import stack_for_target

    clients = _clients(args, defaults)
    stack = stack_for_target(clients, args.stack, args.profile, overrides)
    if args.command == "deploy":
        code = load_code(clients.target, args.code, stack)
        out = args.outputs or outputs_path(state_dir, args.stack if not args.aws else f"{args.stack}-aws")
        for line in deploy(stack, clients, code=code, outputs_path=out).summary():
            _out(line)
        return 0
    if args.command == "destroy":
        for line in destroy(stack, clients).summary():
            _out(line)
        if not args.aws:
            outputs_path(state_dir, args.stack).unlink(missing_ok=True)
        return 0
    if args.command == "describe":
        for line in describe(stack, clients):
            _out(line)
        return 0
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.func(args))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `harness stack <command>` (every infra command) and `harness lint` to the harness CLI."""
    stack = subparsers.add_parser("stack", help="the pipeline stack: lint, deploy, destroy, describe, outputs, synth")
    _add_commands(stack.add_subparsers(dest="infra_command", required=True))
    lint_only = subparsers.add_parser("lint", help="lint the pipeline stack definition (= stack lint)")
    _common(lint_only)
    lint_only.set_defaults(func=run, command="lint")
