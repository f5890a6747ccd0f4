"""`harness observe --target STACK --run-id ID`: the accounting of one run on a deployed stack (read-only).

Expected uploads come from the run's uploads.jsonl (`--uploads`, written by every load run) or, without it, from
listing the input bucket under <input_prefix><run_id>/. Outcomes come from the thumbnails' S3 metadata, the DLQ (peeked,
not consumed) and the function's log lines, exactly as a load run accounts for its uploads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common.errors import CodedError
from harness.load.model import PipelineTarget
from harness.load.observe import collect
from harness.load.storage import AwsProbe
from harness.target import DeployedTarget, TargetError, add_target_arguments, resolve


def _out(line: str = "") -> None:
    print(line, flush=True)


def expected_keys(target: DeployedTarget, run_id: str, uploads: Path | None) -> list[str]:
    """The run's accepted upload keys: from uploads.jsonl, else what is under the run's input prefix now."""
    if uploads is not None:
        try:
            records = [json.loads(line) for line in uploads.read_text().splitlines() if line.strip()]
        except (OSError, ValueError) as exc:
            raise TargetError(
                "OBSERVE_UPLOADS_INVALID", f"Expected uploads.jsonl at {uploads} but received {exc}"
            ) from exc
        return [str(r["key"]) for r in records if r.get("error_code") is None and r.get("key")]
    o = target.outputs
    s3 = target.client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=o.input_bucket, Prefix=f"{o.input_prefix}{run_id}/"
    ):
        keys.extend(str(obj["Key"]) for obj in page.get("Contents", []))
    return keys


def observe(target: DeployedTarget, run_id: str, uploads: Path | None = None, read_logs: bool = True) -> dict[str, Any]:
    pipeline = PipelineTarget.from_outputs(target.outputs)
    probe = AwsProbe(pipeline, target.client("s3", pool=24), target.client("sqs"), target.client("logs"))
    keys = expected_keys(target, run_id, uploads)
    acc = collect(run_id, pipeline, keys, probe=probe, read_logs=read_logs).to_dict()
    return {"stack": target.describe(), "accounting": acc}


def run(args: argparse.Namespace) -> int:
    try:
        target = resolve(
            args.target,
            profile=args.aws_profile,
            region=args.region,
            endpoint_url=args.endpoint_url,
            as_remote=args.as_remote,
        )
        doc = observe(target, args.run_id, args.uploads, read_logs=not args.no_logs)
    except CodedError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr, flush=True)
        return 2
    acc = doc["accounting"]
    if args.json:
        _out(json.dumps(doc, indent=1, default=str))
    else:
        _out(f"stack {target.name} at {target.label}, run {args.run_id}")
        _out(f"  expected uploads: {acc['expected']}")
        _out(f"  outcomes: {acc['counts']}")
        _out(f"  DLQ codes: {acc['dlq_codes']}")
        _out(f"  still queued or in flight: {acc.get('still_queued', 0)}")
        _out(f"  lost: {acc['lost']}; duplicates {acc['duplicates']} ({acc['unexplained_duplicates']} unexplained)")
        _out(f"  invariant: {'holds' if acc['invariant_holds'] else 'BROKEN'}")
    return 0 if acc["invariant_holds"] and not acc["lost"] and not acc.get("still_queued") else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Adds `harness observe ...` to the main CLI."""
    p = sub.add_parser("observe", help="account for one run's uploads on a deployed stack (read-only)")
    add_target_arguments(p, required=True)
    p.add_argument("--run-id", required=True, help="the run id (load-<...>; the folder under the input prefix)")
    p.add_argument("--uploads", type=Path, help="the run's uploads.jsonl (default: list the run's input prefix)")
    p.add_argument("--no-logs", action="store_true", help="do not read the function's logs")
    p.add_argument("--json", action="store_true", help="print the accounting as JSON")
    p.set_defaults(func=run)
