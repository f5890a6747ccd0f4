"""`python -m benchmarks.pipeline`: billed ms per image of the real pipeline, sequential vs overlapped, per backend and
memory size (Power Tuning for the whole pipeline); writes RESULTS_DIR/pipeline-<timestamp>/ (+ pipeline-latest).

Local (default): the emulator at HARNESS_PORT with the executor's CPU share on (HARNESS_CPU_SHARE=auto in the
bench function's environment, whatever the emulator's default), a stack of our
own (`benchpipe`), and the fault proxy in the function's S3 path holding each GET/PUT for the S3 latency model
(harness.chaos.proxy.LatencyModel). `--target STACK`: a deployed stack found through the credential chain
(harness.target); there the bench can neither add S3 latency nor cap the CPU: it measures what the target is. In both
cases it changes the function's MemorySize, THUMB_BACKEND and THUMB_OVERLAP for its runs and restores them after.

Per backend and memory size, rounds alternate the two modes (sequential first in even rounds, overlapped first in odd
ones): each block sets the configuration, warms the new environment with one unmeasured invocation, then invokes the
function directly with batches of `--batch-size` SQS records naming sources uploaded once under the run's own prefix.
Billed ms per image = the REPORT line's Billed Duration / images in the batch.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.config import Config

from benchmarks.pipeline import report as report_md
from benchmarks.pipeline.model import (
    CurvePoint,
    PipelineBenchError,
    Recommendation,
    evaluate_targets,
    memory_floor_mb,
    parse_report,
    recommend,
    summarise,
)
from common.paths import FIXTURES_DIR, RESULTS_DIR
from common.waiting import WaitTimeout, wait_until
from harness.chaos.proxy import LatencyModel
from harness.target import (
    DeployedTarget,
    TargetError,
    add_target_arguments,
    check_caps,
    require_consent,
    resolve,
    session_for,
)
from thumbnailer import contract as c
from thumbnailer.config import Settings

STACK = "benchpipe"
DEFAULT_MEMORY = (128, 256, 512, 1024, 1769, 3008)
QUICK_MEMORY = (256, 1769)
DEFAULT_BACKENDS = ("pillow", "vips")
DEFAULT_INPUT = "jpeg-p3-icc.jpg"  # 1600x1200 photo, 335 KB: a typical upload
MODES = ("sequential", "overlap")
OVERLAP_ENV = {"sequential": "off", "overlap": "on"}
ARCH_LOCAL = "x86_64"
STACK_OVERRIDES: dict[str, Any] = {"function_timeout_s": 300, "visibility_timeout_s": 1800, "batch_size": 10}
INVOKE_READ_TIMEOUT_S = 600
DEFAULT_MAX_PIXELS = Settings().max_pixels  # a function without THUMB_MAX_PIXELS in its environment has this


@dataclass
class Invocation:
    backend: str
    mode: str
    memory_mb: int
    round: int
    images: int
    billed_ms: int
    duration_ms: float
    max_memory_used_mb: int
    request_id: str
    failures: int
    resize_ms: list[float] = field(default_factory=list)
    resize_cpu_ms: list[float] = field(default_factory=list)
    cpu_ms: float | None = None  # the handler's InvocationCpuMs (process CPU over the invocation), None: not logged
    s3_cpu_ms: list[float] = field(default_factory=list)  # the handler's s3_cpu_ms per object (its S3 client's CPU)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny counts for tests: 2 memory sizes, 1 round, 1 batch")
    p.add_argument("--memory", help="comma-separated memory sizes in MB (default 128,256,512,1024,1769,3008)")
    p.add_argument("--backends", default=",".join(DEFAULT_BACKENDS), help="comma-separated: pillow,vips")
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="paired rounds per backend x memory (default 1: adjacent seq + overlap blocks)",
    )
    p.add_argument("--batches", type=int, default=None, help="measured batches per block (default 1)")
    p.add_argument("--batch-size", type=int, default=10, help="records per invocation (default 10, as the stack)")
    p.add_argument(
        "--input", default=DEFAULT_INPUT, help=f"fixture to upload as every source (default {DEFAULT_INPUT})"
    )
    p.add_argument("--out", type=Path, help="output folder (default RESULTS_DIR/pipeline-<timestamp>)")
    lat = LatencyModel()
    p.add_argument("--s3-get-first-byte-ms", type=float, default=lat.get_first_byte_ms)
    p.add_argument("--s3-get-mb-per-s", type=float, default=lat.get_mb_per_s)
    p.add_argument("--s3-put-first-byte-ms", type=float, default=lat.put_first_byte_ms)
    p.add_argument("--s3-put-mb-per-s", type=float, default=lat.put_mb_per_s)
    add_target_arguments(p)
    args = p.parse_args(argv)
    args.memory_sizes = tuple(int(m) for m in args.memory.split(",")) if args.memory else None
    args.backend_list = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    return args


class Bench:
    """One run: a resolved target, the sources under the run's prefix, the interleaved blocks."""

    def __init__(
        self,
        target: DeployedTarget,
        *,
        memory: Sequence[int],
        backends: Sequence[str],
        rounds: int,
        batches: int,
        batch_size: int,
        source: Path,
        s3_endpoint_for_function: str | None,
        log: Callable[[str], None],
        pause_mapping: bool = False,
    ) -> None:
        self.target = target
        self.memory = tuple(memory)
        self.backends = tuple(backends)
        self.rounds = rounds
        self.batches = batches
        self.batch_size = batch_size
        self.source = source
        self.s3_endpoint = s3_endpoint_for_function
        # the executor's CPU share, set in the bench function's own environment (the emulator's default is off)
        self.cpu_share = os.environ.get("HARNESS_CPU_SHARE") or "auto"
        self.log = log
        self.run_id = f"benchpipe-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        cfg = Config(read_timeout=INVOKE_READ_TIMEOUT_S, connect_timeout=10, retries={"max_attempts": 0})
        self.lam = target.session.client("lambda", endpoint_url=target.endpoint, region_name=target.region, config=cfg)
        self.s3 = target.client("s3")
        self.sqs = target.client("sqs")
        self.logs = target.client("logs")
        self.pause_mapping = pause_mapping
        self.keys: list[str] = []
        self.invocations: list[Invocation] = []
        self.function = target.outputs.function_name
        self.max_pixels = DEFAULT_MAX_PIXELS  # the function's THUMB_MAX_PIXELS, read in run()

    # ---- set-up / tear-down ---------------------------------------------------------------------------------
    def mappings(self) -> list[str]:
        pages = self.lam.list_event_source_mappings(FunctionName=self.function).get("EventSourceMappings", [])
        return [m["UUID"] for m in pages if m.get("State") in ("Enabled", "Enabling", "Creating", "Updating")]

    def set_mappings(self, uuids: list[str], enabled: bool) -> None:
        for u in uuids:
            self.lam.update_event_source_mapping(UUID=u, Enabled=enabled)

    def upload_sources(self) -> None:
        o = self.target.outputs
        body = self.source.read_bytes()
        for i in range(self.batch_size):
            key = f"{o.input_prefix}{self.run_id}/img-{i:02d}{self.source.suffix}"
            self.s3.put_object(Bucket=o.input_bucket, Key=key, Body=body, ContentType="image/jpeg")
            self.keys.append(key)
        if self.pause_mapping:  # local: the mapping is off, the notifications of the uploads are dropped
            self.sqs.purge_queue(QueueUrl=o.queue_url)
        else:  # a target: the uploads go through its own S3 -> SQS path once; let that settle before measuring
            self._wait_queue_empty()

    def _wait_queue_empty(self, timeout: float = 180.0) -> None:
        url = self.target.outputs.queue_url

        def empty() -> bool:
            a = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]) == 0

        try:
            wait_until(empty, timeout=timeout, interval=1.0, what="the stack's queue to drain after the uploads")
        except WaitTimeout:
            self.log("warning: the queue did not drain within 180 s; measuring anyway")

    def original_config(self) -> dict[str, Any]:
        cfg = self.lam.get_function_configuration(FunctionName=self.function)
        return {"MemorySize": cfg["MemorySize"], "Environment": cfg.get("Environment") or {"Variables": {}}}

    def restore(self, original: dict[str, Any]) -> None:
        self.lam.update_function_configuration(FunctionName=self.function, **original)
        self._wait_updated()

    def _wait_updated(self) -> None:
        def done() -> bool:
            c = self.lam.get_function_configuration(FunctionName=self.function)
            return c.get("LastUpdateStatus", "Successful") != "InProgress" and c.get("State", "Active") == "Active"

        wait_until(done, timeout=120, interval=0.5, what=f"function {self.function} updated")

    # ---- one block ----------------------------------------------------------------------------------------
    def configure(self, base_env: dict[str, str], memory_mb: int, backend: str, mode: str) -> None:
        env = {**base_env, "THUMB_BACKEND": backend, "THUMB_OVERLAP": OVERLAP_ENV[mode]}
        if self.s3_endpoint:  # local: the latency model's proxy, and the executor's CPU share for this function
            env["AWS_ENDPOINT_URL_S3"] = self.s3_endpoint
            env["HARNESS_CPU_SHARE"] = self.cpu_share
        self.lam.update_function_configuration(
            FunctionName=self.function, MemorySize=memory_mb, Environment={"Variables": env}
        )
        self._wait_updated()

    def event(self, n: int) -> dict[str, Any]:
        o = self.target.outputs
        records = []
        for i in range(n):
            key = self.keys[i % len(self.keys)]
            s3_event = {
                "Records": [
                    {
                        "eventVersion": "2.1",
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "eventTime": datetime.now(UTC).isoformat(),
                        "s3": {"bucket": {"name": o.input_bucket}, "object": {"key": key, "size": 0}},
                    }
                ]
            }
            records.append(
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": "bench",
                    "body": json.dumps(s3_event),
                    "attributes": {
                        "ApproximateReceiveCount": "1",
                        "SentTimestamp": str(int(time.time() * 1000)),
                        "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                    },
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:{self.target.region}:000000000000:bench",
                    "awsRegion": self.target.region,
                }
            )
        return {"Records": records}

    def invoke(self, n: int) -> tuple[Any, int, str]:
        resp = self.lam.invoke(FunctionName=self.function, Payload=json.dumps(self.event(n)).encode(), LogType="Tail")
        payload = resp["Payload"].read()
        tail = base64.b64decode(resp.get("LogResult") or b"").decode("utf-8", "replace")
        failures = 0
        if resp.get("FunctionError"):
            failures = n
        else:
            try:
                failures = len(json.loads(payload or b"{}").get("batchItemFailures") or [])
            except (ValueError, AttributeError):
                failures = n
        return parse_report(tail), failures, tail

    def fields_by_request(
        self, since_ms: int, request_ids: set[str], names: Sequence[str] = (c.LOG_RESIZE_MS,)
    ) -> dict[str, dict[str, list[float]]]:
        """name -> request id -> the handler's `name` (resize_ms, resize_cpu_ms, ...) per object, read off the
        function's log group (CloudWatch Logs) in one scan for every name."""
        group = f"/aws/lambda/{self.function}"
        found: dict[str, dict[str, list[float]]] = {name: {} for name in names}

        def scan() -> bool:
            for per_request in found.values():
                per_request.clear()
            kwargs: dict[str, Any] = {"logGroupName": group, "startTime": since_ms}
            for _ in range(50):
                page = self.logs.filter_log_events(**kwargs)
                for e in page.get("events", []):
                    rid, by_name = fields_of_line(e.get("message", ""), names)
                    if rid in request_ids:
                        for name, values in by_name.items():
                            found[name].setdefault(rid, []).extend(values)
                token = page.get("nextToken")
                if not token or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token
            return all(set(per_request) >= request_ids for per_request in found.values())

        try:
            wait_until(scan, timeout=20, interval=1.0, what="the handler's log lines")
        except WaitTimeout:
            pass  # reported as missing (n/a for those invocations)
        except Exception as exc:  # noqa: BLE001 - logs unreadable (permissions on a target): n/a
            self.log(f"warning: could not read {group}: {exc}")
        return found

    def block(self, base_env: dict[str, str], memory_mb: int, backend: str, mode: str, rnd: int) -> None:
        self.configure(base_env, memory_mb, backend, mode)
        since_ms = int(time.time() * 1000) - 2000
        first = len(self.invocations)
        self.invoke(min(2, self.batch_size))  # warm the new environment (cold start, first S3 connection): unmeasured
        for _ in range(self.batches):
            rep, failures, tail = self.invoke(self.batch_size)
            self.invocations.append(
                Invocation(
                    backend,
                    mode,
                    memory_mb,
                    rnd,
                    self.batch_size,
                    rep.billed_ms,
                    rep.duration_ms,
                    rep.max_memory_used_mb,
                    rep.request_id,
                    failures,
                    resize_from_log(tail),
                    resize_from_log(tail, c.LOG_RESIZE_CPU_MS),
                    invocation_cpu_from_log(tail),
                    resize_from_log(tail, c.LOG_S3_CPU_MS),
                )
            )
        mine = self.invocations[first:]
        # the log tail is 4 KB: the rest from the log group (Invocation's fields are named as the log's)
        short = [
            n
            for n in (c.LOG_RESIZE_MS, c.LOG_RESIZE_CPU_MS, c.LOG_S3_CPU_MS)
            if any(len(getattr(i, n)) != i.images for i in mine)
        ]
        if short:
            by_name = self.fields_by_request(since_ms, {i.request_id for i in mine}, short)
            for name, by_request in by_name.items():
                for i in mine:
                    if len(by_request.get(i.request_id, [])) == i.images:
                        setattr(i, name, by_request[i.request_id])
        last = self.invocations[-1]
        self.log(
            f"  {backend:6} {memory_mb:5} MB {mode:10} round {rnd}: {last.billed_ms / last.images:7.1f} billed ms/image"
            f" (max memory {last.max_memory_used_mb} MB{', FAILURES ' + str(last.failures) if last.failures else ''})"
        )

    def run(self) -> None:
        original = self.original_config()
        base_env = dict(original["Environment"].get("Variables") or {})
        try:
            self.max_pixels = int(base_env.get("THUMB_MAX_PIXELS") or DEFAULT_MAX_PIXELS)
        except ValueError:
            self.log(f"warning: THUMB_MAX_PIXELS {base_env.get('THUMB_MAX_PIXELS')!r} is not a number; the default")
        paused = self.mappings() if self.pause_mapping else []
        self.set_mappings(paused, False)
        try:
            self.upload_sources()
            for backend in self.backends:
                for memory_mb in self.memory:
                    for rnd in range(self.rounds):
                        order = MODES if rnd % 2 == 0 else tuple(reversed(MODES))
                        for mode in order:
                            self.block(base_env, memory_mb, backend, mode, rnd)
        finally:
            self.restore(original)
            self.set_mappings(paused, True)


def resize_of_line(line: str, name: str = c.LOG_RESIZE_MS) -> tuple[str, list[float]]:
    """(request id, `name` per object) of one handler log line ('' and [] for any other line)."""
    rid, values = fields_of_line(line, (name,))
    return rid, values.get(name, [])


def fields_of_line(line: str, names: Sequence[str]) -> tuple[str, dict[str, list[float]]]:
    """(request id, name -> values per object) of one handler log line, parsed once for every name in `names`
    ('' and {} for any other line; a name the line lacks is absent)."""
    start = line.find("{")
    wanted = [n for n in names if n in line]
    if start < 0 or not wanted:
        return "", {}
    try:
        doc = json.loads(line[start:])
    except ValueError:
        return "", {}
    if not isinstance(doc, dict):
        return "", {}
    nested = doc.get(c.LOG_OBJECTS)
    items: list[Any] = nested if isinstance(nested, list) else [doc]
    out = {
        n: [float(i[n]) for i in items if isinstance(i, dict) and isinstance(i.get(n), (int, float))] for n in wanted
    }
    return str(doc.get(c.LOG_REQUEST_ID) or ""), out


def resize_from_log(tail: str, name: str = c.LOG_RESIZE_MS) -> list[float]:
    """The handler's per-object `name` (resize_ms, resize_cpu_ms) from an invocation's log text (JSON lines;
    objects nested under 'objects')."""
    return [v for line in tail.splitlines() for v in resize_of_line(line, name)[1]]


def invocation_cpu_from_log(tail: str) -> float | None:
    """The handler's InvocationCpuMs metric from an invocation's log text (its EMF line), None when absent."""
    from thumbnailer.app import METRIC_INVOCATION_CPU_MS

    for line in reversed(tail.splitlines()):
        start = line.find("{")
        if start < 0 or METRIC_INVOCATION_CPU_MS not in line:
            continue
        try:
            value = json.loads(line[start:]).get(METRIC_INVOCATION_CPU_MS)
        except (ValueError, AttributeError):
            continue
        values = value if isinstance(value, list) else [value]
        nums = [float(v) for v in values if isinstance(v, (int, float))]
        if nums:
            return sum(nums)
    return None


# ---- results --------------------------------------------------------------------------------------------------
def curves_of(invocations: Sequence[Invocation], arch: str) -> dict[str, dict[str, list[CurvePoint]]]:
    out: dict[str, dict[str, list[CurvePoint]]] = {}
    keys = sorted({(i.backend, i.mode, i.memory_mb) for i in invocations})
    for backend, mode, mem in keys:
        mine = [i for i in invocations if (i.backend, i.mode, i.memory_mb) == (backend, mode, mem)]
        resize = [sum(i.resize_ms) / i.images for i in mine if len(i.resize_ms) == i.images]
        resize_cpu = [sum(i.resize_cpu_ms) / i.images for i in mine if len(i.resize_cpu_ms) == i.images]
        cpu = [i.cpu_ms / i.images for i in mine if i.cpu_ms is not None]
        s3_cpu = [sum(i.s3_cpu_ms) / i.images for i in mine if len(i.s3_cpu_ms) == i.images]
        point = summarise(
            mem,
            [i.billed_ms for i in mine],
            [i.duration_ms for i in mine],
            [i.images for i in mine],
            [i.max_memory_used_mb for i in mine],
            resize,
            failures=sum(1 for i in mine if i.failures),
            resize_cpu_ms_per_image=resize_cpu,
            cpu_ms_per_image=cpu,
            s3_cpu_ms_per_image=s3_cpu,
        )
        out.setdefault(backend, {}).setdefault(mode, []).append(point)
    return out


def paired_ratios(invocations: Sequence[Invocation]) -> dict[str, dict[int, float]]:
    """backend -> memory -> median over rounds of (overlap mean billed/image) / (sequential mean billed/image)."""
    by: dict[tuple[str, int, int, str], list[float]] = {}
    for i in invocations:
        by.setdefault((i.backend, i.memory_mb, i.round, i.mode), []).append(i.billed_ms / i.images)
    out: dict[str, dict[int, list[float]]] = {}
    for (backend, mem, rnd, mode), vals in by.items():
        if mode != "overlap" or (backend, mem, rnd, "sequential") not in by:
            continue
        seq = statistics.fmean(by[(backend, mem, rnd, "sequential")])
        if seq > 0:
            out.setdefault(backend, {}).setdefault(mem, []).append(statistics.fmean(vals) / seq)
    return {b: {m: round(statistics.median(v), 3) for m, v in ms.items()} for b, ms in out.items()}


def build_results(bench: Bench, meta: dict[str, Any]) -> dict[str, Any]:
    arch = meta["arch"]
    curves = curves_of(bench.invocations, arch)
    floor = memory_floor_mb(bench.max_pixels)
    recs: dict[str, Recommendation] = {
        b: recommend(b, modes.get("overlap") or modes.get("sequential") or [], arch, floor_mb=floor)
        for b, modes in curves.items()
    }
    ratios = paired_ratios(bench.invocations)
    return {
        **meta,
        "max_pixels": bench.max_pixels,
        "memory_floor_mb": floor,
        "curves": {b: {m: [p.to_dict() for p in pts] for m, pts in modes.items()} for b, modes in curves.items()},
        "paired_ratio_overlap_vs_sequential": {b: {str(k): v for k, v in r.items()} for b, r in ratios.items()},
        "recommendations": {b: r.to_dict() for b, r in recs.items()},
        "targets": evaluate_targets(curves, recs, paired_ratios=ratios),
        "invocations": [i.to_dict() for i in bench.invocations],
    }


def write_results(results: dict[str, Any], out: Path) -> None:
    from benchmarks.pipeline import chart

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    chart.power_tuning_chart(results, out / "power-tuning.png")
    (out / "report.md").write_text(report_md.markdown(results, chart_name="power-tuning.png"))


def update_latest(out: Path) -> None:
    latest = out.parent / "pipeline-latest"
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.is_dir():
        shutil.rmtree(latest)
    try:
        latest.symlink_to(out.name, target_is_directory=True)
    except OSError:
        shutil.copytree(out, latest)


# ---- entry point ----------------------------------------------------------------------------------------------
def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    memory = args.memory_sizes or (QUICK_MEMORY if args.quick else DEFAULT_MEMORY)
    rounds = args.rounds or 1
    batches = args.batches or 1
    for name, v, lo, hi in (
        ("--rounds", rounds, 1, 20),
        ("--batches", batches, 1, 50),
        ("--batch-size", args.batch_size, 1, 10),
    ):
        if not lo <= v <= hi:
            raise PipelineBenchError("INVALID_ARGUMENT", f"Expected {lo}..{hi} for {name} but received {v}")
    for m in memory:
        if not 128 <= m <= 10240:
            raise PipelineBenchError("INVALID_ARGUMENT", f"Expected 128..10240 MB for --memory but received {m}")
    for b in args.backend_list:
        if b not in DEFAULT_BACKENDS:
            raise PipelineBenchError("INVALID_ARGUMENT", f"Expected pillow|vips for --backends but received {b!r}")
    source = FIXTURES_DIR / "generated" / args.input
    if not source.is_file():
        raise PipelineBenchError(
            "INVALID_ARGUMENT", f"Expected a fixture for --input but received {args.input!r} (make fixtures)"
        )
    latency = LatencyModel(
        args.s3_get_first_byte_ms, args.s3_get_mb_per_s, args.s3_put_first_byte_ms, args.s3_put_mb_per_s
    )
    blocks = len(args.backend_list) * len(memory) * rounds * len(MODES)
    images = blocks * (batches * args.batch_size + min(2, args.batch_size))
    started = time.time()
    meta: dict[str, Any] = {
        "kind": "bench-pipeline",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "memory_sizes": list(memory),
        "backends": list(args.backend_list),
        "rounds": rounds,
        "batches_per_block": batches,
        "batch_size": args.batch_size,
        "input": args.input,
        "input_bytes": source.stat().st_size,
    }
    proxy = None
    settings: Any = None
    if args.target:
        target = resolve(
            args.target,
            profile=args.aws_profile,
            region=args.region,
            endpoint_url=args.endpoint_url,
            as_remote=bool(getattr(args, "as_remote", False)),
        )
        check_caps(images, 0.0)
        from harness.target import estimate

        require_consent(target, estimate(images, target.outputs, batch_size=args.batch_size), args.yes, log)
        meta.update(
            mode="target",
            target=target.describe(),
            arch=target.outputs.architecture if target.outputs.architecture in ("arm64", "x86_64") else ARCH_LOCAL,
            latency_model=None,
            cpu_share="as deployed (the target's own CPU allocation)",
            note=(
                f"measured against the deployed stack {target.name} at {target.label}: the bench cannot set an S3 "
                "latency model or a CPU share there, so S3 time and CPU are what the target is. MemorySize, "
                "THUMB_BACKEND and THUMB_OVERLAP were changed for the runs and restored afterwards."
            ),
        )
        s3_endpoint = None
    else:
        from harness.chaos.proxy import FaultProxy
        from harness.emulator import ensure_running
        from harness.load.runner import deploy_stack
        from harness.settings import HarnessSettings

        settings = HarnessSettings.from_env()
        ensure_running(settings)
        log(f"==> stack {STACK} on {settings.endpoint}")
        outputs = deploy_stack(settings, STACK, STACK_OVERRIDES)
        session, region = session_for(profile=None, region=settings.region, endpoint=settings.endpoint)
        target = DeployedTarget(STACK, outputs, session, region, settings.endpoint)
        proxy = FaultProxy(settings.endpoint, latency=latency).start()
        s3_endpoint = proxy.endpoint
        meta.update(
            mode="local",
            target=target.describe(),
            arch=ARCH_LOCAL,
            latency_model={**latency.to_dict(), "sources": list(LATENCY_SOURCES_())},
            cpu_share="(read from the executor's log after the run)",
            note=(
                "local emulator: S3 time from the latency model in the fault proxy (on top of the emulator's own "
                "S3 time), the executor's CPU share per MemorySize; x86_64 prices (ARM64 figures come only from "
                "--target on an arm64 function in AWS)"
            ),
        )
    bench = Bench(
        target,
        memory=memory,
        backends=args.backend_list,
        rounds=rounds,
        batches=batches,
        batch_size=args.batch_size,
        source=source,
        s3_endpoint_for_function=s3_endpoint,
        log=log,
        pause_mapping=not args.target,
    )
    log(
        f"==> {blocks} blocks ({len(args.backend_list)} backends x {len(memory)} sizes x {rounds} rounds x 2 modes), "
        f"{batches} batch(es) of {args.batch_size} each"
    )
    try:
        bench.run()
    finally:
        if proxy is not None:
            meta["latency_s_added"] = round(proxy.latency_s_total, 2)
            proxy.stop()
        try:
            from harness.target import cleanup_run

            meta["cleanup"] = cleanup_run(target, bench.run_id)
        except Exception as exc:  # noqa: BLE001 - report, do not mask the run's own outcome
            meta["cleanup"] = {"error": str(exc)}
    if not args.target:
        meta["cpu_share"] = cpu_share_state(settings)
    meta["elapsed_s"] = round(time.time() - started, 1)
    meta["run_id"] = bench.run_id
    return build_results(bench, meta)


def LATENCY_SOURCES_() -> tuple[str, ...]:  # noqa: N802 - a constant of harness.chaos.proxy, imported lazily
    from harness.chaos.proxy import LATENCY_SOURCES

    return LATENCY_SOURCES


def cpu_share_state(settings: Any) -> str:
    """What the executor logged about the CPU share (the emulator log under HARNESS_HOME), else what was asked."""
    asked = os.environ.get("HARNESS_CPU_SHARE") or "auto"  # what Bench puts in its function's environment
    said = ""
    try:
        with open(Path(settings.home) / "localstack.log", errors="replace") as f:
            for line in f:
                low = line.lower()
                if "cpu share" in low or ("local-process lambda executor:" in low and "cpu" in low):
                    said = line.strip()
    except OSError:
        pass
    return f"HARNESS_CPU_SHARE={asked}; executor: {said[-240:] if said else 'said nothing about a CPU share'}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or RESULTS_DIR / f"pipeline-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    try:
        results = run(args)
    except (PipelineBenchError, TargetError) as exc:
        print(f"error: {exc}")
        return 2
    write_results(results, out)
    if args.out is None:
        update_latest(out)
    print(report_md.summary(results))
    print(f"report: {out / 'report.md'}")
    return 0
