"""The `harness` command line: emulator lifecycle (up/down/status/env) plus the subcommands other parts register."""

from __future__ import annotations

import argparse
import os
import sys
import time

from common.errors import CodedError
from harness import emulator
from harness import observe as observe_cli
from harness.aws import cli_environment
from harness.chaos import cli as chaos_cli
from harness.compare import cli as compare_cli
from harness.deployment import deploy_for_harness, describe_for_harness
from harness.load import cli as load_cli
from harness.settings import HarnessSettings
from harness.simulate import cli as simulate_cli
from infra import cli as infra_cli


def _out(line: str = "") -> None:
    try:
        print(line, flush=True)
    except BrokenPipeError:  # `harness up | head -1`
        sys.stdout = open(os.devnull, "w")


def cmd_up(args: argparse.Namespace) -> int:
    settings = HarnessSettings.from_env()
    t0 = time.monotonic()
    handle = emulator.ensure_running(settings)
    how = "started" if handle.started_here else "reusing running"
    _out(
        f"==> {how} emulator at {handle.endpoint} ({settings.emulator}, pid {handle.pid or '-'}) "
        f"in {time.monotonic() - t0:.1f}s"
    )
    _out(f"    logs and state: {settings.home}")
    if not args.no_deploy:
        t1 = time.monotonic()
        report = deploy_for_harness(settings, stack_name=args.stack, profile=args.profile)
        for line in report.summary():
            _out("    " + line)
        _out(f"    deploy took {time.monotonic() - t1:.1f}s")
    _out("")
    _out("Try next:")
    mode = "EMULATOR=docker " if settings.emulator == "docker" else ""  # what the same make targets need then
    _out(f"  {mode}make status                     resources, queue and DLQ depths")
    _out(f"  {mode}make test                       the whole test suite against this emulator")
    _out(f"  eval $({sys.executable} -m harness env)   then: awslocal s3 ls")
    _out(f"  {mode}make down                       stop the emulator and every Lambda runtime")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    settings = HarnessSettings.from_env()
    for line in emulator.stop(settings):
        _out(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = HarnessSettings.from_env()
    doc = emulator.health(settings.endpoint)
    if doc is None:
        _out(f"emulator: not running at {settings.endpoint}")
        return 1
    running = emulator.find_running(settings)
    _out(
        f"emulator: {settings.endpoint} (edition {doc.get('edition', '?')}, version {doc.get('version', '?')}, "
        f"pid {running.pid if running else 'not ours'})"
    )
    services = doc.get("services", {})
    wanted = emulator.SERVICES.split(",")
    _out("services: " + ", ".join(f"{name}={services.get(name, '?')}" for name in wanted))
    _out(f"lambda runtimes running: {len(emulator.runtime_pids(settings))}")
    for line in describe_for_harness(settings, stack_name=args.stack):
        _out(line)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    for key, value in cli_environment(HarnessSettings.from_env()).items():
        _out(f"export {key}={value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start (or reuse) the emulator and deploy the pipeline stack")
    up.add_argument("--no-deploy", action="store_true", help="only start the emulator")
    up.add_argument("--stack", default="thumbs", help="stack name (default: thumbs)")
    up.add_argument("--profile", default="default", help="stack profile (default, seed, ...)")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop the emulator and every Lambda runtime process")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="services, deployed resources, queue and DLQ depths")
    status.add_argument("--stack", default="thumbs")
    status.set_defaults(func=cmd_status)
    env = sub.add_parser("env", help="print shell exports pointing the AWS CLI/awslocal at the emulator")
    env.set_defaults(func=cmd_env)
    for register in (
        infra_cli.register,
        load_cli.register,
        chaos_cli.register,
        simulate_cli.register,
        observe_cli.register,
        compare_cli.register,
    ):
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A CodedError (bad input, an unreachable emulator, a failed deploy...) is an expected failure:
    `error CODE: message` on stderr, exit 2. Any other exception is a bug and propagates with its traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CodedError as exc:
        _report_error(exc)
        return 2


def _report_error(exc: CodedError) -> None:
    """`error CODE: message` on stderr (the one shape every harness CLI uses for an expected failure)."""
    try:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr, flush=True)
    except BrokenPipeError:
        pass
