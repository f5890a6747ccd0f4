"""`make bench-emulator` in quick mode: LocalStack (lean) measured per call and per image; MiniStack when installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.emulator import run as bench
from benchmarks.emulator.sides import MINISTACK_BIN
from tests.conftest import in_ci
from tests.ports import free_port_block


def test_quick_bench_measures_every_call_on_localstack(tmp_path: Path) -> None:
    port = free_port_block(3)  # its own LocalStack (and MiniStack at +1): never the session's emulator's port
    home = Path(os.environ.get("HARNESS_HOME", str(tmp_path))) / "bench-emulator-test"
    # CPU is read in clock ticks (10 ms): a lean sqs_send costs ~1 ms, so 5 calls often read 0 ticks; 40 span several
    report = bench.run(["after"], port=port, home=home, rounds=1, calls=40, images=1, keep=False)
    row = report["table"]
    for op in (*bench.OPS, "per_image"):
        assert row[op]["ms"]["after"] is not None and row[op]["ms"]["after"] > 0, op
    assert {t["verdict"] for t in report["targets"]} == {"not measured"}  # no before/peer side in this run
    assert "Emulator CPU per call" in bench.markdown(report)


def test_quick_bench_beside_ministack(tmp_path: Path) -> None:
    if not MINISTACK_BIN.exists():
        missing = f"{MINISTACK_BIN} is missing: run 'make ministack-venv' (make test installs it)"
        if in_ci(os.environ):
            pytest.fail(f"{missing}; CI=true requires it (the peer comparison must not pass by skipping)")
        pytest.skip(missing)
    port = free_port_block(3)  # its own LocalStack (and MiniStack at +1): never the session's emulator's port
    home = Path(os.environ.get("HARNESS_HOME", str(tmp_path))) / "bench-emulator-test"
    # MiniStack's sqs_send is ~0.5 ms of CPU: 200 calls span ~10 clock ticks, so no side reads 0 (ratio undefined)
    report = bench.run(["after", "ministack"], port=port, home=home, rounds=1, calls=200, images=0, keep=False)
    for op in bench.OPS:
        assert report["table"][op]["after_over_ministack"] is not None, op
    assert [t["verdict"] for t in report["targets"]][1:] != ["not measured"] * 3
