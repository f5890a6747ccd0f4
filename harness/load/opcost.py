"""Emulator CPU per API operation (S3 PUT/GET of a corpus image, SQS calls): `python -m harness.load.opcost`."""

# It explains the emulator's share in the load report's "Where the CPU goes" section.

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.paths import ROOT
from harness.load.cpu import process_cpu_s, self_cpu_s
from harness.load.storage import client, require_loopback
from harness.settings import HarnessSettings
from thumbnailer.contract import META_RESIZE_MS, META_RUN_ID


@dataclass(frozen=True)
class OpCost:
    """Mean CPU of the emulator and of this client, and wall time, per call of one operation (ms)."""

    label: str
    calls: int
    emulator_ms: float | None
    client_ms: float
    wall_ms: float


def measure_op(
    label: str,
    op: Callable[[int], Any],
    calls: int,
    emulator_cpu: Callable[[], float | None],
    own_cpu: Callable[[], float] = self_cpu_s,
    clock: Callable[[], float] = time.perf_counter,
) -> OpCost:
    """Run op(0..calls-1) back to back; CPU deltas of the emulator process and of this process, per call."""
    e0, c0, t0 = emulator_cpu(), own_cpu(), clock()
    for i in range(calls):
        op(i)
    e1, c1, t1 = emulator_cpu(), own_cpu(), clock()
    n = max(1, calls)
    emulator = None if e0 is None or e1 is None else 1000 * (e1 - e0) / n
    return OpCost(label, calls, emulator, 1000 * (c1 - c0) / n, 1000 * (t1 - t0) / n)


def measure_all(settings: HarnessSettings, body: bytes, calls: int = 30) -> list[OpCost]:
    """The operations one upload causes, on a scratch bucket and queue (deleted afterwards)."""
    require_loopback(settings.endpoint)
    pid = int((Path(settings.home) / "localstack.pid").read_text().split()[0])
    s3, sqs = client("s3", settings), client("sqs", settings)
    name = f"opcost-{secrets.token_hex(3)}"
    s3.create_bucket(Bucket=name)
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    thumb = body[: max(1, min(len(body), 150_000))]

    def receive_delete(_: int) -> None:
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", []):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    def emu() -> float | None:
        return process_cpu_s(pid)

    ops: list[tuple[str, Callable[[int], Any]]] = [
        ("idle 50 ms (background: pollers)", lambda i: time.sleep(0.05)),
        (f"S3 PutObject {len(body) / 1e6:.1f} MB", lambda i: s3.put_object(Bucket=name, Key=f"in/{i}", Body=body)),
        (f"S3 GetObject {len(body) / 1e6:.1f} MB", lambda i: s3.get_object(Bucket=name, Key=f"in/{i}")["Body"].read()),
        (
            f"S3 PutObject {len(thumb) / 1e3:.0f} kB + metadata",
            lambda i: s3.put_object(
                Bucket=name, Key=f"out/{i}", Body=thumb, Metadata={META_RUN_ID: "x" * 30, META_RESIZE_MS: "12.5"}
            ),
        ),
        ("S3 HeadObject", lambda i: s3.head_object(Bucket=name, Key=f"in/{i}")),
        ("SQS SendMessage 1.5 kB", lambda i: sqs.send_message(QueueUrl=queue, MessageBody="x" * 1500)),
        ("SQS ReceiveMessage + DeleteMessage", receive_delete),
        (
            "SQS GetQueueAttributes (a depth read)",
            lambda i: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"]),
        ),
    ]
    try:
        return [measure_op(label, op, calls, emu) for label, op in ops]
    finally:
        for i in range(calls):
            for key in (f"in/{i}", f"out/{i}"):
                s3.delete_object(Bucket=name, Key=key)
        s3.delete_bucket(Bucket=name)
        sqs.delete_queue(QueueUrl=queue)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load.opcost", description=__doc__)
    parser.add_argument("--n", type=int, default=30, help="calls per operation (1..500)")
    parser.add_argument("--image", default=str(ROOT / "fixtures" / "generated" / "jpeg-12mp-baseline.jpg"))
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 500:
        parser.error(f"Expected --n in [1, 500] but received {args.n}")
    settings = HarnessSettings.from_env()
    costs = measure_all(settings, Path(args.image).read_bytes(), args.n)
    print(f"emulator at {settings.endpoint}, {args.n} calls each (ms per call)")
    print(f"{'operation':42s} {'emulator CPU':>12s} {'client CPU':>10s} {'wall':>8s}")
    for c in costs:
        emu = "n/a" if c.emulator_ms is None else f"{c.emulator_ms:.1f}"
        print(f"{c.label:42s} {emu:>12s} {c.client_ms:>10.1f} {c.wall_ms:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
