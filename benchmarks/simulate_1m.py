"""`python -m benchmarks.simulate_1m`: how long the simulator takes for a spike of one million uploads (target < 60 s).

Scenario `spike` scaled up: 5,000 uploads/s with a x10 burst (50,000/s) from 30 s to 40 s, capped at 1,000,000
uploads, MaximumConcurrency 1000, calibrated from the stored steady run. Prints the wall time next to the simulated
time (their ratio is the speed-up over real time) and writes the report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from harness.simulate import cli

TARGET_S = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate_1m", description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=cli.RESULTS_DIR / "simulate-1m")
    args = parser.parse_args(argv)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    code = cli.main(
        [
            "spike",
            "--set",
            "rate=5000",
            "--set",
            f"count={args.count}",
            "--set",
            "duration_s=120",
            "--set",
            "maximum_concurrency=1000",
            "--out",
            str(args.out),
        ]
    )
    wall = time.perf_counter() - t0
    doc = json.loads((args.out / "report.json").read_text())
    sim = doc["simulation"]
    print(
        f"{doc['uploads']['planned']:,} uploads, {sim['events']:,} events: simulated {sim['simulated_s']:,.0f} s in "
        f"{sim['wall_s']:.1f} s of engine time ({wall:.1f} s with report and charts); "
        f"{sim['simulated_s'] / max(sim['wall_s'], 1e-9):,.0f}x real time; target < {TARGET_S:.0f} s: "
        f"{'met' if wall < TARGET_S else 'MISSED'}; load average {load0[0]:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end on {os.cpu_count()} CPUs"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
