"""Measure Node.js execution environments beside a Python one on a running emulator: cold start, warm invoke, crashes.

Run with the project venv against an emulator you started (numbers, not assertions):
    HARNESS_PORT=4601 HARNESS_HOME=$PWD/.harness-4601 .venv/bin/python harness/executor/measure_node.py
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.waiting import wait_until  # noqa: E402
from harness.aws import client  # noqa: E402
from harness.settings import HarnessSettings  # noqa: E402
from tests.lambdas import LAMBDA_ROLE, unique_name, zip_sources  # noqa: E402

NODE_FN = """
exports.handler = async (event) => {
  if (event.sleep) await new Promise((resolve) => setTimeout(resolve, event.sleep * 1000));
  if (event.exit) setTimeout(() => process.exit(3), 0);
  if (event.exit) return new Promise(() => {});
  return { pid: process.pid, node: process.version };
};
"""
PYTHON_FN = """
import os, time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        os._exit(3)
    return {"pid": os.getpid()}
"""
ROUNDS = 30


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(lam: Any, runtime: str) -> str:
    name = unique_name(f"measure-{runtime.replace('.', '')}")
    node = runtime.startswith("nodejs")
    files = {"index.js": NODE_FN} if node else {"app.py": PYTHON_FN}
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=LAMBDA_ROLE,
        Handler="index.handler" if node else "app.handler",
        Code={"ZipFile": zip_sources(files)},
        Timeout=60,
        MemorySize=256,
    )
    wait_until(lambda: lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active", 60, what=name)

    def invoke(event: dict) -> tuple[float, dict, str]:
        t0 = time.perf_counter()
        r = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
        dt = (time.perf_counter() - t0) * 1000
        return dt, json.loads(r["Payload"].read()), base64.b64decode(r.get("LogResult", "")).decode()

    try:
        cold_ms, first, logs = invoke({})
        init = re.search(r"Init Duration: ([\d.]+) ms", logs)
        warm = [invoke({})[0] for _ in range(ROUNDS)]
        exits = []
        for _ in range(3):
            dt, payload, _ = invoke({"exit": True})
            assert payload.get("errorType") == "Runtime.ExitError", payload
            exits.append(dt)
        kills = []
        for _ in range(3):
            _, warm_payload, _ = invoke({})
            box: dict[str, float] = {}
            caller = threading.Thread(
                target=lambda box=box: (invoke({"sleep": 20}), box.__setitem__("at", time.monotonic()))
            )
            caller.start()
            time.sleep(0.5)  # let the handler start sleeping (measurement script, not a test)
            killed = time.monotonic()
            os.kill(warm_payload["pid"], signal.SIGKILL)
            caller.join(30)
            kills.append((box["at"] - killed) * 1000)
    finally:
        lam.delete_function(FunctionName=name)
    version = f" ({first['node']})" if node else ""
    return (
        f"{runtime}{version}: cold invoke {cold_ms:.0f} ms (Init Duration {init.group(1) if init else '?'} ms); "
        f"warm invoke p50 {statistics.median(warm):.1f} ms, p95 {_pct(warm, 0.95):.1f} ms ({ROUNDS} rounds); "
        f"process exit -> Runtime.ExitError at the caller: {', '.join(f'{e:.0f}' for e in exits)} ms "
        f"(invoke round trip included); SIGKILL -> ExitError: {', '.join(f'{k:.0f}' for k in kills)} ms"
    )


def main() -> int:
    lam = client("lambda", HarnessSettings.from_env())
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for runtime in ("python3.13", "nodejs20.x", "nodejs22.x"):
        print(measure(lam, runtime), flush=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
