"""`python -m infra`: lint, deploy, destroy, describe, outputs and synth for the pipeline stack (the only printer)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.settings import HarnessSettings
from infra.errors import InfraError, InfraErrorCode

if TYPE_CHECKING:
    from infra.deploy import Clients
from infra.lint import errors, lint
from infra.stack import PROFILES, build_stack


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
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one knob of the profile (e.g. memory_mb=2048); repeatable")


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--aws", action="store_true", help="deploy to real AWS (credentials from --aws-profile/env)")
    p.add_argument("--aws-profile", default=None, help="AWS CLI profile for --aws")
    p.add_argument("--region", default=None, help="region (default: HARNESS_REGION for the emulator)")
    p.add_argument("--endpoint", default=None, help="another emulator endpoint (e.g. LocalStack in Docker)")


def _clients(args: argparse.Namespace, settings: HarnessSettings) -> "Clients":

    from infra.deploy import Clients, Target

    region = args.region or settings.region
    if args.aws:
        return Clients(Target(region=region, endpoint=None, aws_profile=args.aws_profile))
    return Clients(Target(region=region, endpoint=args.endpoint or settings.endpoint))


def _add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lint", help="check the stack definition against AWS guidance (exit 1 on errors)")
    _common(p)
    p.set_defaults(func=run, command="lint")
    p = sub.add_parser("deploy", help="lint, then create/update the stack in place; writes the outputs file")
    _common(p)
    _target(p)
    p.add_argument("--code", type=Path, default=None, help="function zip (default: code-only zip on the emulator, "
                   ".package/lambda-arm64.zip on AWS)")
    p.add_argument("--outputs", type=Path, default=None, help="outputs file (default $HARNESS_HOME/outputs/<stack>.json)")
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
    try:
        return _run(args)
    except InfraError as exc:
        _out(f"error: {exc}", err=True)
        return 2


def _run(args: argparse.Namespace) -> int:
    settings = HarnessSettings.from_env()
    if args.command == "outputs":
        from infra.deploy import outputs_file, read_outputs

        _out(json.dumps(read_outputs(outputs_file(settings, args.stack)), indent=2, sort_keys=True))
        return 0
    overrides = _overrides(args.set)
    if args.command == "lint":
        findings = lint(build_stack(args.stack, args.profile, overrides=overrides))
        for f in findings:
            _out(str(f))
        _out(f"{len(errors(findings))} error(s), {len(findings) - len(errors(findings))} warning(s) "
              f"(stack {args.stack}, profile {args.profile})")
        return 1 if errors(findings) else 0
    if args.command == "synth":
        from infra.cdk.synth import synth

        result = synth(stack_name=args.stack, profile=args.profile, overrides=overrides, out_dir=args.out,
                       artifact=args.artifact, qualifier=args.qualifier)
        for warning in result.warnings:
            _out(warning)
        _out(f"synthesized {result.template_path}")
        return 0
    from infra.deploy import deploy, describe, destroy, load_code, outputs_file, stack_for_target

    clients = _clients(args, settings)
    stack = stack_for_target(clients, args.stack, args.profile, overrides)
    if args.command == "deploy":
        code = load_code(clients.target, args.code)
        out = args.outputs or (outputs_file(settings, args.stack) if not args.aws
                               else settings.home / "outputs" / f"{args.stack}-aws.json")
        for line in deploy(stack, clients, code=code, outputs_path=out).summary():
            _out(line)
        return 0
    if args.command == "destroy":
        for line in destroy(stack, clients).summary():
            _out(line)
        if not args.aws:
            outputs_file(settings, args.stack).unlink(missing_ok=True)
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
