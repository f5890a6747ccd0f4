"""`make bench-emulator`: emulator CPU per call and per image, LocalStack before/after the lean path and MiniStack.

CPU of a side = utime + stime of its emulator process (/proc/<pid>/stat: its own threads; Lambda runtime processes,
which are its children, are not in it and are reported apart as `children_ms`). A sample is `calls` operations in a
row on one side; rounds interleave the sides (the order rotates each round), so a neighbour's burst on this shared
machine hits every side of a round, and ratios are taken per round (paired) and then their median.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.emulator import sides as sides_mod
from benchmarks.emulator.arith import Sample, per_call_ms, summarize, targets
from common.credentials import DEFAULT_REGION, TEST_ACCESS_KEY, TEST_SECRET_KEY
from common.paths import FIXTURES_DIR, RESULTS_DIR
from common.waiting import wait_until
from harness.load.cpu import process_cpu_s

OPS = ("s3_get", "s3_put", "sqs_send", "sqs_receive_delete")
BENCH_BUCKET = "emubench"
BENCH_QUEUE = "emubench"
OBJECT_BYTES = 2 * 1024 * 1024
# uploads a second in the per-image sample: the steady load of issue 16's measurement (122.7 ms of LocalStack CPU
# per upload at 3 uploads/s); a burst (0) leaves the pollers' CPU out of the window and measures the calls alone
DEFAULT_RATE = 3.0
LOG = logging.getLogger("benchmarks.emulator")
IMAGE = FIXTURES_DIR / "generated" / "jpeg-12mp-baseline.jpg"


def _clients(endpoint: str) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config

    kw = {
        "endpoint_url": endpoint,
        "region_name": DEFAULT_REGION,
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "config": Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}),
    }
    return boto3.client("s3", **kw), boto3.client("sqs", **kw)


def _children_cpu_s(pid: int) -> float:
    """CPU of the live descendants of `pid` (Lambda runtimes / workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier and p not in tree}
        tree |= frontier
    return sum(v for p in tree if (v := process_cpu_s(p)) is not None)


class Bench:
    """Per-side clients and fixtures, and one sample of an op."""

    def __init__(self, side: sides_mod.Side) -> None:
        self.side = side
        self.s3, self.sqs = _clients(side.endpoint)
        self.data = os.urandom(OBJECT_BYTES)
        try:
            self.s3.create_bucket(Bucket=BENCH_BUCKET)
        except self.s3.exceptions.ClientError:
            pass  # already there
        self.queue = self.sqs.create_queue(QueueName=BENCH_QUEUE)["QueueUrl"]
        self.s3.put_object(Bucket=BENCH_BUCKET, Key="obj", Body=self.data)
        self.image = IMAGE.read_bytes()
        outputs = json.loads((side.home / "outputs" / "thumbs.json").read_text())
        self.input_bucket, self.input_prefix = outputs["input_bucket"], outputs["input_prefix"]
        self.output_bucket, self.output_prefix = outputs["output_bucket"], outputs["output_prefix"]
        self.sizes = len(str(outputs["sizes"]).split(","))

    def op(self, name: str) -> Callable[[], None]:
        def s3_get() -> None:
            self.s3.get_object(Bucket=BENCH_BUCKET, Key="obj")["Body"].read()

        def s3_put() -> None:
            self.s3.put_object(Bucket=BENCH_BUCKET, Key="obj", Body=self.data)

        def sqs_send() -> None:
            self.sqs.send_message(QueueUrl=self.queue, MessageBody="x" * 300)

        def sqs_receive_delete() -> None:
            for m in self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=1).get("Messages", []):
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])

        return {"s3_get": s3_get, "s3_put": s3_put, "sqs_send": sqs_send, "sqs_receive_delete": sqs_receive_delete}[
            name
        ]

    def cpu(self) -> float:
        value = process_cpu_s(self.side.pid or -1)
        if value is None:
            raise sides_mod.SideError("SIDE_GONE", f"{self.side.name}: emulator process {self.side.pid} is gone")
        return value

    def sample(self, name: str, calls: int, rnd: int) -> Sample:
        fn = self.op(name)
        if name == "sqs_receive_delete":  # the messages it takes, sent before the CPU window
            for _ in range(calls):
                self.sqs.send_message(QueueUrl=self.queue, MessageBody="x" * 300)
        fn()  # warm the connection
        c0, t0 = self.cpu(), time.monotonic()
        for _ in range(calls):
            fn()
        c1, t1 = self.cpu(), time.monotonic()
        ms = per_call_ms(c0, c1, calls)
        return Sample(self.side.name, name, rnd, calls, ms * calls / 1000, t1 - t0)

    def images(self, count: int, rnd: int, rate: float = 0.0, timeout: float = 300.0) -> tuple[Sample, float]:
        """Upload `count` images (`rate` a second, 0: all at once), wait for every thumbnail; emulator CPU (and its
        children's) per completed upload. Paced, the window holds what a steady load costs per image: the uploads'
        own calls and the pollers running meanwhile (ESM receives, the executor), as a load run measures it."""
        tag = f"emubench-{self.side.name}-{rnd}-{time.time_ns()}"
        keys = [f"{self.input_prefix}{tag}-{i}.jpg" for i in range(count)]
        c0, k0, t0 = self.cpu(), _children_cpu_s(self.side.pid or -1), time.monotonic()
        for i, key in enumerate(keys):
            if rate > 0:  # pacing the load (an open-loop schedule), not waiting for a condition
                time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            self.s3.put_object(Bucket=self.input_bucket, Key=key, Body=self.image, ContentType="image/jpeg")

        def done() -> bool:
            listed = self.s3.list_objects_v2(Bucket=self.output_bucket, Prefix=self.output_prefix)
            found = [o["Key"] for o in listed.get("Contents", []) if tag in o["Key"]]
            return len(found) >= count * self.sizes

        wait_until(done, timeout, interval=0.5, what=f"{count} uploads' thumbnails on {self.side.name}")
        c1, k1, t1 = self.cpu(), _children_cpu_s(self.side.pid or -1), time.monotonic()
        return Sample(self.side.name, "per_image", rnd, count, c1 - c0, t1 - t0), max(0.0, k1 - k0)


def run(
    side_names: Sequence[str],
    *,
    port: int,
    home: Path,
    rounds: int,
    calls: int,
    images: int,
    keep: bool,
    rate: float = DEFAULT_RATE,
) -> dict[str, Any]:
    ports = {"after": port, "ministack": port + 1, "before": port + 2}
    skipped: dict[str, str] = {}
    wanted = list(side_names)
    if "ministack" in wanted and not sides_mod.MINISTACK_BIN.exists():
        wanted.remove("ministack")
        skipped["ministack"] = f"{sides_mod.MINISTACK_BIN} is missing (make ministack-venv)"
    started: list[sides_mod.Side] = []
    samples: list[Sample] = []
    children: dict[str, list[float]] = {}
    try:
        for name in wanted:
            LOG.info("starting %s on port %s", name, ports[name])
            started.append(sides_mod.start(sides_mod.Side(name, ports[name], home / name)))
        benches = [Bench(s) for s in started]
        for rnd in range(rounds):
            order = benches[rnd % len(benches) :] + benches[: rnd % len(benches)]
            for op in OPS:
                for b in order:
                    samples.append(b.sample(op, calls, rnd))
                    LOG.info("round %d %s %s: %.2f ms/call", rnd, b.side.name, op, samples[-1].ms_per_call)
            if images > 0:
                for b in order:
                    sample, kids = b.images(images, rnd, rate)
                    samples.append(sample)
                    LOG.info("round %d %s per image: %.1f ms", rnd, b.side.name, sample.ms_per_call)
                    children.setdefault(b.side.name, []).append(1000 * kids / images)
    finally:
        if not keep:
            for s in started:
                sides_mod.stop(s)
    names = [s.name for s in started]
    table = summarize(samples, names, (*OPS, "per_image") if images > 0 else OPS)
    return {
        "config": {
            "rounds": rounds,
            "calls_per_sample": calls,
            "images_per_sample": images,
            "uploads_per_s": rate,
            "ports": ports,
            "object_bytes": OBJECT_BYTES,
            "image": IMAGE.name,
        },
        "sides": names,
        "skipped": skipped,
        "table": table,
        "children_ms_per_image": {k: sorted(v)[len(v) // 2] for k, v in children.items() if v},
        "targets": targets(table),
        "samples": [asdict(s) for s in samples],
    }


def _fmt(v: float | None, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def markdown(report: dict[str, Any]) -> str:
    t = report["table"]
    lines = [
        "# Emulator CPU per call (make bench-emulator)",
        "",
        f"Median emulator-process CPU ms per call over {report['config']['rounds']} interleaved rounds of "
        f"{report['config']['calls_per_sample']} calls; per image: {report['config']['images_per_sample']} uploads of "
        f"{report['config']['image']} per round, "
        + (
            f"{rate:g} a second (the emulator's pollers run meanwhile, as in a steady load)"
            if (rate := report["config"].get("uploads_per_s"))
            else "all at once (a burst: the pollers' CPU barely enters the window)"
        )
        + ". Ratios are medians of per-round (paired) ratios.",
        "",
        "| call | LocalStack defaults (before) | LocalStack lean (after) | MiniStack | after/before "
        "| after/MiniStack |",
        "|---|---|---|---|---|---|",
    ]
    for op, row in t.items():
        ms = row["ms"]
        lines.append(
            f"| {op} | {_fmt(ms.get('before'))} | {_fmt(ms.get('after'))} | {_fmt(ms.get('ministack'))} | "
            f"{_fmt(row['after_over_before'], 2)} | {_fmt(row['after_over_ministack'], 2)} |"
        )
    if report.get("children_ms_per_image"):
        kids = ", ".join(f"{k} {v:.1f}" for k, v in report["children_ms_per_image"].items())
        lines += ["", f"Lambda runtime processes (children, not in the figures above), ms per image: {kids}"]
    lines += ["", "| target | limit | measured | verdict |", "|---|---|---|---|"]
    for tg in report["targets"]:
        lines.append(f"| {tg['name']} | {tg['limit']} | {_fmt(tg['value'], 2)} | {tg['verdict']} |")
    for name, why in report["skipped"].items():
        lines.append(f"\n- {name} skipped: {why}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.emulator", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 rounds of 20 calls, 2 images per round")
    p.add_argument("--sides", default="before,after,ministack", help="comma list of before, after, ministack")
    p.add_argument("--rounds", type=int)
    p.add_argument("--calls", type=int)
    p.add_argument("--images", type=int, help="uploads per side per round (0: no per-image figure)")
    p.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"uploads a second in the per-image sample (default {DEFAULT_RATE:g}, issue 16's steady load; 0: a burst)",
    )
    p.add_argument("--keep", action="store_true", help="leave the emulators running")
    p.add_argument("--out", type=Path, help="output folder (default benchmarks/results/emulator-<timestamp>)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    side_names = [s.strip() for s in a.sides.split(",") if s.strip()]
    bad = [s for s in side_names if s not in ("before", "after", "ministack")]
    if bad or not side_names:
        p.error(f"Expected before, after or ministack for --sides but received {a.sides!r}")
    port = int(os.environ.get("HARNESS_PORT", "4670"))
    home = Path(os.environ.get("HARNESS_HOME", "/tmp/harness-bench-emulator")).resolve() / "bench-emulator"
    report = run(
        side_names,
        port=port,
        home=home,
        rounds=a.rounds or (2 if a.quick else 5),
        calls=a.calls or (20 if a.quick else 100),
        images=a.images if a.images is not None else (2 if a.quick else 10),
        keep=a.keep,
        rate=a.rate,
    )
    out = a.out or RESULTS_DIR / f"emulator-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    print(markdown(report))  # the CLI's output (not library code)
    print(f"written: {out}/report.json, report.md")
    return 0
