"""Measure the local-process executor on a running emulator: env start, warm invoke, crash detection, idle CPU, pickup.

Run with the project venv against an emulator you started (numbers, not assertions):
    HARNESS_PORT=4601 HARNESS_HOME=$PWD/.harness-4601 .venv/bin/python harness/executor/measure.py
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.waiting import wait_until  # noqa: E402
from harness.aws import client  # noqa: E402
from harness.settings import HarnessSettings  # noqa: E402
from tests.lambdas import create_function, unique_name  # noqa: E402

FN = """
import json, os, time
import boto3
sqs = boto3.client("sqs")
def handler(event, context):
    started = time.time()
    if event.get("sleep"):
        time.sleep(event["sleep"])
    for r in event.get("Records", []):
        body = {"sent": json.loads(r["body"])["sent"], "started": started}
        sqs.send_message(QueueUrl=os.environ["RESULTS_URL"], MessageBody=json.dumps(body))
    return {"pid": os.getpid()}
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    s = HarnessSettings.from_env()
    lam, sqs = client("lambda", s), client("sqs", s)
    ls_pid = int((s.home / "localstack.pid").read_text().split()[0])
    name = unique_name("measure")
    results_url = sqs.create_queue(QueueName=f"{name}-results")["QueueUrl"]
    src_url = sqs.create_queue(QueueName=f"{name}-src", Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
    src_arn = sqs.get_queue_attributes(QueueUrl=src_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_function(lam, name, FN, timeout=30, env={"RESULTS_URL": results_url})
    mapping = None
    try:

        def invoke(event: dict) -> tuple[float, dict, str]:
            t0 = time.perf_counter()
            r = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
            dt = (time.perf_counter() - t0) * 1000
            return dt, json.loads(r["Payload"].read()), base64.b64decode(r.get("LogResult", "")).decode()

        cold_ms, _, logs = invoke({})
        init = re.search(r"Init Duration: ([\d.]+) ms", logs)
        warm = [invoke({})[0] for _ in range(30)]
        print(
            f"cold invoke (env start + boto3 import + invoke): {cold_ms:.0f} ms; "
            f"Init Duration (spawn -> ready): {init.group(1) if init else '?'} ms"
        )
        print(
            f"warm invoke round trip (boto3 client -> LocalStack -> runtime): p50 {statistics.median(warm):.1f} ms, "
            f"p95 {_pct(warm, 0.95):.1f} ms"
        )

        crash = []
        for _ in range(3):
            _, first, _ = invoke({})
            box: dict[str, float] = {}

            def call(box: dict[str, float] = box) -> None:
                invoke({"sleep": 20})
                box["at"] = time.monotonic()

            caller = threading.Thread(target=call)
            caller.start()
            time.sleep(0.3)  # let the handler start sleeping (measurement script, not a test)
            killed = time.monotonic()
            os.kill(first["pid"], signal.SIGKILL)
            caller.join(30)
            crash.append((box["at"] - killed) * 1000)
        print("crash (SIGKILL) to Runtime.ExitError at the caller: " + ", ".join(f"{c:.0f} ms" for c in crash))
        invoke({})  # a warm environment again: pickup latency below is not a cold start

        mapping = lam.create_event_source_mapping(EventSourceArn=src_arn, FunctionName=name, BatchSize=10)["UUID"]
        wait_until(lambda: lam.get_event_source_mapping(UUID=mapping)["State"] == "Enabled", 30, what="mapping")
        time.sleep(3)
        c0, t0 = _cpu_seconds(ls_pid), time.monotonic()
        time.sleep(15)
        idle = (_cpu_seconds(ls_pid) - c0) / (time.monotonic() - t0) * 100
        print(f"LocalStack idle CPU with one idle SQS mapping (2 lanes): {idle:.2f} % of one core (15 s sample)")

        pickups = []
        for _ in range(6):
            time.sleep(2.5)  # idle gap before each message
            sqs.send_message(QueueUrl=src_url, MessageBody=json.dumps({"sent": time.time()}))
            msg = wait_until(
                lambda: sqs.receive_message(QueueUrl=results_url, WaitTimeSeconds=1).get("Messages"), 30, what="result"
            )[0]
            sqs.delete_message(QueueUrl=results_url, ReceiptHandle=msg["ReceiptHandle"])
            body = json.loads(msg["Body"])
            pickups.append((body["started"] - body["sent"]) * 1000)
        print(
            "first pickup after idle (send -> handler start): "
            + ", ".join(f"{p:.0f}" for p in pickups)
            + f" ms; median {statistics.median(pickups):.0f} ms"
        )
    finally:
        if mapping:
            lam.delete_event_source_mapping(UUID=mapping)
        lam.delete_function(FunctionName=name)
        sqs.delete_queue(QueueUrl=src_url)
        sqs.delete_queue(QueueUrl=results_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
