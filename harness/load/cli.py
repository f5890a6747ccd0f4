"""`python -m harness.load` / `harness load`: run a scenario against the emulator and write its report."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from common.errors import CodedError
from harness.load.progress import ProgressBar
from harness.load.scenario import SCENARIOS_DIR, load_scenario
from harness.target import add_target_arguments

DESCRIPTION = (
    "Load test the deployed pipeline with a scenario (benchmarks/scenarios/*.toml); writes Markdown, JSON, PNG."
)


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", help="scenario name (benchmarks/scenarios/<name>.toml) or a .toml path")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--rate", type=float, help="override load.rate (uploads/s)")
    p.add_argument("--count", type=int, help="override load.count (fixed number of uploads)")
    p.add_argument("--duration", type=float, dest="duration_s", help="override load.duration_s")
    p.add_argument("--max-uploads", type=int, dest="max_uploads", help="override the load.max_uploads bound")
    p.add_argument("--backend", action="append", choices=("pillow", "vips"), help="backend(s) to run (repeatable)")
    p.add_argument("--max-concurrency", type=int, dest="max_concurrency", help="event source MaximumConcurrency")
    p.add_argument("--batch-size", type=int, dest="batch_size", help="event source batch size")
    p.add_argument(
        "--baseline-seconds", type=float, dest="baseline_seconds", help="raw resize baseline length (0 = skip)"
    )
    p.add_argument("--no-logs", action="store_true", help="do not read handler logs (timings from S3 metadata only)")
    p.add_argument("--stack", default="load", help="stack name to deploy/update (default: load; load-seed for seed)")
    p.add_argument(
        "--stack-profile",
        dest="stack_profile",
        default=os.environ.get("STACK_PROFILE") or "default",
        help="stack profile to deploy: default | seed (the seed replica; its losses are reported, not gated) "
        "(default: $STACK_PROFILE or default)",
    )
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results/load-<timestamp>/<scenario>)")
    p.add_argument("--keep-emulator", action="store_true", help="leave an emulator started by this command running")
    add_target_arguments(p)
    p.add_argument("--keep-prefix", action="store_true", help="(--target) keep the run's uploads and thumbnails")


def run(args: argparse.Namespace) -> int:
    from common.paths import RESULTS_DIR
    from harness import emulator
    from harness.load.runner import LoadRun
    from harness.settings import HarnessSettings

    if args.list or not args.scenario:
        for path in sorted(SCENARIOS_DIR.glob("*.toml")):
            sc = load_scenario(path)
            _err(f"{path.stem:10s} {sc.description}")
        return 0 if args.list else 2
    try:
        scenario = load_scenario(args.scenario).with_overrides(
            rate=args.rate,
            count=args.count,
            duration_s=args.duration_s,
            max_uploads=args.max_uploads,
            max_concurrency=args.max_concurrency,
            batch_size=args.batch_size,
            baseline_seconds=args.baseline_seconds,
            backends=tuple(args.backend) if args.backend else None,
            read_logs=False if args.no_logs else None,
        )
        settings = HarnessSettings.from_env()
        out = args.out or RESULTS_DIR / f"load-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}" / scenario.name
        deployed = None
        if args.target:
            from harness import target as target_mod

            deployed = target_mod.resolve(
                args.target,
                profile=args.aws_profile,
                region=args.region,
                endpoint_url=args.endpoint_url,
                as_remote=args.as_remote,
            )
            uploads = len(scenario.arrival_offsets())
            target_mod.check_caps(uploads, scenario.duration_s)
            _err(f"==> target stack {deployed.name!r} at {deployed.label} (found, not deployed)")
            target_mod.require_consent(deployed, target_mod.estimate(uploads, deployed.outputs), args.yes, _err)
            handle = emulator.EmulatorHandle(endpoint=deployed.label, pid=None, started_here=False)
        else:
            handle = emulator.ensure_running(settings)
            _err(f"==> emulator {handle.endpoint} ({'started' if handle.started_here else 'reused'})")
        t0 = time.monotonic()
        bars: dict[str, ProgressBar] = {}
        # another profile deploys a stack of its own (load-seed) unless --stack names one
        stack_name = (
            args.stack if args.stack != "load" or args.stack_profile == "default" else f"load-{args.stack_profile}"
        )
        try:
            runner = LoadRun(
                scenario,
                settings,
                out,
                stack_name=stack_name,
                stack_profile=args.stack_profile,
                on_progress=lambda b, p: bars.setdefault(b, ProgressBar(f"{scenario.name}/{b}"))(p),
                on_phase=lambda text: _err(f"==> {text}"),
                deployed=deployed,
                cleanup=not args.keep_prefix,
            )
            results = runner.run()
        finally:
            for bar in bars.values():
                bar.close()  # a run stopped early leaves its bar unfinished
            if handle.started_here and not args.keep_emulator:
                for line in emulator.stop(settings):
                    _err(line)
    except CodedError as exc:  # LoadError, InfraError, EmulatorError, WaitTimeout...: expected failures
        _err(f"error {exc.code}: {exc.message}")
        return 2
    failed = False
    for r in results:
        acc = r.summary["accounting"]
        e2e = r.summary["latency_ms"]["e2e"]
        _err(
            f"==> {r.backend}: {acc['expected']} accepted, {acc['counts']}, lost {acc['lost']}, still queued "
            f"{acc.get('still_queued', 0)}, duplicates "
            f"{acc['duplicates']} ({acc['unexplained_duplicates']} unexplained), invariant "
            f"{'ok' if acc['invariant_holds'] else 'BROKEN'}; e2e p50 {e2e['p50']} ms; report {r.out_dir}/report.md"
        )
        causes = {k: v for k, v in (acc.get("causes") or {}).items() if v}
        _err(f"==> {r.backend}: causes {causes or 'none'}")
        faults = r.summary.get("faults") or {}
        if faults:
            _err(
                f"==> faults: {faults['injected']} in {faults['proxy_requests']} function S3 requests, "
                f"{faults['runtimes_killed']} runtime(s) killed; duplicate writes {faults['duplicate_writes']}, "
                f"identical: {'yes' if faults['duplicates_identical'] else 'NO'}"
            )
        # the seed replica is measured for what it loses: only a broken invariant fails its run
        gated_loss = (acc["lost"] > 0 or acc.get("still_queued", 0) > 0) and args.stack_profile == "default"
        if acc.get("still_queued", 0):
            _err(
                f"==> {r.backend}: {acc['still_queued']} upload(s) still queued at the drain deadline: not lost, but "
                "the pipeline did not keep up (lower --rate, or raise [observe] drain_timeout_s)"
            )
        failed = failed or not acc["invariant_holds"] or gated_loss or not faults.get("duplicates_identical", True)
    _err(f"==> done in {time.monotonic() - t0:.0f} s: {out}")
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Adds `harness load ...` to the main CLI."""
    p = sub.add_parser("load", help="load test the deployed pipeline with a scenario", description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
