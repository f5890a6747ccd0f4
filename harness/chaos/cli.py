"""The chaos command line: `python -m harness.chaos <scenario>|all|redrive|list` (also `harness chaos ...`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from common.errors import CodedError
from harness import emulator
from harness.aws import client
from harness.chaos import report, scenarios, storage
from harness.chaos.errors import PipelineUnavailable
from harness.chaos.remote import run_remote
from harness.chaos.runners import new_run_id, run_scenario
from harness.chaos.session import ChaosSession, open_session, read_outputs
from harness.load.observe import PipelineTarget
from harness.settings import HarnessSettings
from harness.target import add_target_arguments


def _out(line: str = "") -> None:
    try:
        print(line, flush=True)
    except BrokenPipeError:  # `python -m harness.chaos list | head -1`
        sys.stdout = open(os.devnull, "w")


def cmd_list(args: argparse.Namespace) -> int:
    for name in scenarios.ORDER:
        _out(f"  {name:<14} {scenarios.SCENARIOS[name].title}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    names = list(scenarios.ORDER) if args.scenario == "all" else [args.scenario]
    if args.skip:
        names = [n for n in names if n not in set(args.skip)]
    chosen = [scenarios.get(n) for n in names]
    if args.scale != 1.0:
        chosen = [s.scaled(args.scale) for s in chosen]
    settings = HarnessSettings.from_env()
    if args.stack is None:
        args.stack = "chaos-seed" if args.stack_profile == "seed" else "chaos"
    t0 = time.monotonic()
    results: list[dict[str, Any]] = []
    deployed = _deployed_target(args, names, settings)
    if deployed is not None and not _controlled(deployed, settings):
        # a stack this harness does not control (AWS, another endpoint, --as-remote): remote-safe scenarios only,
        # no emulator started, the stack unchanged (harness.chaos.remote)
        _out(f"==> chaos against stack {deployed.name!r} at {deployed.label} (found, not deployed, not changed)")
        from harness import target as target_mod

        uploads = sum(s.images + len(s.poison) for s in chosen)
        target_mod.check_caps(uploads, sum(s.settle_timeout_s for s in chosen))
        target_mod.require_consent(deployed, target_mod.estimate(uploads, deployed.outputs), args.yes, _out)
        for scenario in chosen:
            try:
                result = run_remote(deployed, scenario, new_run_id(scenario.name), keep_dlq=args.keep_dlq, log=_out)
                results.append(result.to_dict())
            except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others' figures
                _out(f"[{scenario.name}] error: {type(exc).__name__}: {exc}")
                results.append(_errored(scenario, exc))
        function, endpoint = deployed.outputs.function_name, deployed.label
    else:
        handle = emulator.ensure_running(settings)  # EmulatorError: `error CODE: message`, exit 2 (main)
        _out(
            f"==> chaos against {handle.endpoint} ({'started' if handle.started_here else 'running'}; left running: "
            f"`make down` stops it): {', '.join(s.name for s in chosen)}"
        )
        if deployed is not None:  # --target on this harness' emulator: the stack as found on CloudFormation
            session = ChaosSession(
                settings, PipelineTarget.from_outputs(deployed.outputs), stack=deployed.name, log=_out
            )
        else:
            session = open_session(
                settings, stack=args.stack, deploy_stack=not args.no_deploy, profile=args.stack_profile, log=_out
            )
        with session:
            for scenario in chosen:
                try:
                    results.append(run_scenario(session, scenario, keep_dlq=args.keep_dlq).to_dict())
                except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others' figures
                    _out(f"[{scenario.name}] error: {type(exc).__name__}: {exc}")
                    results.append(_errored(scenario, exc))
        function, endpoint = session.target.function_name, settings.endpoint
    folder, doc = report.write(
        results,
        endpoint=endpoint,
        stack=deployed.name if deployed is not None else args.stack,
        function=function,
        wall_s=time.monotonic() - t0,
        profile=args.stack_profile,
        out_root=args.out,
    )
    _out("")
    _out(report.table(results, markdown=False))
    _out("")
    _out(f"report: {folder}/report.md  (JSON: report.json), {doc['wall_s']:.0f} s")
    if args.stack_profile == "seed":  # the seed replica is run to show what its design loses: reported, not gated
        _out("seed replica: its FAILED scenarios are what its design loses under each fault (reported, not gated)")
        errored = [r["name"] for r in results if r.get("status") == "FAILED (scenario errored)"]
        if errored:  # a scenario that could not run says nothing about the seed: that still fails the run
            _out(f"error: scenario(s) that could not run: {', '.join(errored)}")
        return 1 if errored else 0
    return 0 if doc["all_passed"] else 1  # any FAILED scenario (a limitation too) fails the run


def _deployed_target(args: argparse.Namespace, names: list[str], settings: HarnessSettings) -> Any:
    """--target: resolve the stack (read-only); without local control of it, only remote-safe scenarios may run
    (harness.target.refuse_chaos names them)."""
    if not getattr(args, "target", None):
        return None
    from harness import target as target_mod

    deployed = target_mod.resolve(
        args.target,
        profile=args.aws_profile,
        region=args.region,
        endpoint_url=args.endpoint_url,
        as_remote=args.as_remote,
    )
    target_mod.refuse_chaos(names, deployed, controlled=_controlled(deployed, settings))
    return deployed


def _controlled(deployed: Any, settings: HarnessSettings) -> bool:
    """A target whose processes and S3 path this harness controls: a local one on this harness' own emulator."""
    return bool(deployed.local and deployed.endpoint == settings.endpoint)


def _errored(scenario: scenarios.Scenario, exc: BaseException) -> dict[str, Any]:
    return {
        "name": scenario.name,
        "title": scenario.title,
        "run_id": "-",
        "uploads": 0,
        "poison": 0,
        "faults_injected": {},
        "client_retries": 0,
        "redeliveries": 0,
        "poison_redeliveries": 0,
        "duplicate_writes": 0,
        "duplicates_identical": True,
        "outcomes": {"ERROR": 1},
        "drain_s": None,
        "settled": False,
        "invariant_held": False,
        "status": "FAILED (scenario errored)",
        "passed": False,
        "evidence": {},
        "proof": None,
        "verdict": {
            "held": False,
            "expected": 0,
            "by_code": {},
            "lost": [],
            "lost_count": 0,
            "no_reason": [],
            "nonidentical": [],
            "unexpected": [],
            "unexpected_count": 0,
            "conflicts": [],
            "notes": [],
        },
        "actions": [],
        "redrive": None,
        "notes": [f"scenario failed to run: {type(exc).__name__}: {exc}"[:500]],
        "wall_s": 0.0,
    }


def cmd_redrive(args: argparse.Namespace) -> int:
    settings = HarnessSettings.from_env()
    outputs = read_outputs(settings, args.stack)
    if outputs is None:
        raise PipelineUnavailable(
            "PIPELINE_UNAVAILABLE",
            f"Expected deploy outputs for stack '{args.stack}' under {settings.home / 'outputs'} but received none "
            "(run `make up`)",
        )
    target = PipelineTarget.from_outputs(outputs)
    result = storage.redrive(
        client("sqs", settings), target, run_id=args.run_id, codes=frozenset(args.code or ()), dry_run=args.dry_run
    )
    verb = "would move" if args.dry_run else "moved"
    left = result.skipped + (result.moved if args.dry_run else 0)
    _out(
        f"redrive {target.dlq_url} -> {target.queue_url}: {verb} {result.moved} message(s) "
        f"{dict(result.by_code)}; {left} left in the DLQ"
        + (f"; {len(result.failed)} unparseable" if result.failed else "")
    )
    return 0 if not result.failed else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="chaos_command", required=True)
    lst = sub.add_parser("list", help="list the scenarios")
    lst.set_defaults(func=cmd_list)
    for name in (*scenarios.ORDER, "all"):
        title = scenarios.SCENARIOS[name].title if name in scenarios.SCENARIOS else "every scenario, restart last"
        p = sub.add_parser(name, help=title.replace("%", "%%"))
        p.add_argument(
            "--stack", default=None, help="stack to break (default: chaos, chaos-seed for the seed; deployed if needed)"
        )
        p.add_argument(
            "--stack-profile",
            choices=("default", "seed"),
            default="default",
            help="seed: the seed replica's stack (reported, exit 0); default: ours (exit 1 on any FAILED)",
        )
        p.add_argument("--out", type=Path, default=report.RESULTS_DIR, help="results root (default: %(default)s)")
        p.add_argument("--no-deploy", action="store_true", help="use the stack's existing deploy outputs")
        p.add_argument("--scale", type=float, default=1.0, help="multiply the valid images per scenario")
        p.add_argument("--skip", action="append", help="(all) skip a scenario; repeatable")
        add_target_arguments(p)
        p.add_argument(
            "--keep-dlq",
            action="store_true",
            help="leave the run's DLQ messages in place (to try `make redrive STACK=chaos` afterwards)",
        )
        p.set_defaults(func=cmd_run, scenario=name)
    r = sub.add_parser("redrive", help="move DLQ messages back to the main queue (after the cause is fixed)")
    r.add_argument("--stack", default="thumbs", help="stack whose DLQ to redrive (default: thumbs)")
    r.add_argument("--run-id", help="only this run's messages")
    r.add_argument("--code", action="append", help="only messages with this error code; repeatable")
    r.add_argument("--dry-run", action="store_true", help="count, move nothing")
    r.set_defaults(func=cmd_redrive)


def register(subparsers: Any) -> None:
    """Adds `harness chaos ...` to the main CLI."""
    add_arguments(subparsers.add_parser("chaos", help="failure injection scenarios and DLQ redrive (issue 7)"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.chaos", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CodedError as exc:  # an expected failure; anything else is a bug and shows its traceback
        print(f"error {exc.code}: {exc.message}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
