"""The simulator's engine, knobs, arrivals, CLI, sweep and lint (offline, synthetic calibrations)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.load.scenario import Profile, Scenario, arrival_offsets, load_scenario
from harness.simulate import cli
from harness.simulate.arrivals import arrival_times
from harness.simulate.calibration import Calibration, Dist, InputClass, chaos_rates
from harness.simulate.errors import KNOB_INVALID, SimulateError
from harness.simulate.knobs import Knobs
from harness.simulate.simulation import Simulation
from harness.simulate.sweep import lint, sweep

CAL = Calibration(
    "test",
    "pillow",
    (InputClass("a.jpg", 0.9, 100.0), InputClass("bad.jpg", 0.1, 1.0, True)),
    handler_overhead_cpu_ms=20.0,
    put_ms=Dist.constant(10.0),
    notify_ms=Dist.constant(20.0),
)


def scenario(profile: Profile, duration_s: float, count: int | None = None) -> Scenario:
    return Scenario(
        name="t",
        profile=profile,
        duration_s=duration_s,
        count=count,
        max_uploads=count or 10**9,
        corpus_dir="/nonexistent",
        mix=(("a.jpg", 0.9), ("bad.jpg", 0.1)),
    )


@pytest.mark.parametrize(
    "profile",
    [
        Profile("constant", rate=7.3),
        Profile("spike", rate=2.0, spike_at_s=3, spike_duration_s=2, spike_factor=10),
        Profile("step", rate=1.0, steps=((0.0, 1.0), (5.0, 4.5))),
    ],
)
def test_arrivals_match_the_load_generator_schedule(profile: Profile) -> None:
    expected = arrival_offsets(profile, 10.0, 10_000)
    got = arrival_times(profile, 10.0, 10_000)
    assert len(got) == len(expected)
    assert np.allclose(got, expected)


@pytest.mark.parametrize("mode", ["aws", "local"])
def test_every_upload_ends_in_exactly_one_outcome(mode: str) -> None:
    knobs = Knobs(mode=mode, maximum_concurrency=4, retryable_rate=0.2, visibility_timeout_s=20.0)
    summary = Simulation(
        scenario(Profile("spike", rate=5.0, spike_at_s=5, spike_duration_s=5, spike_factor=10), 30.0), CAL, knobs
    ).run()
    c = summary["accounting"]["counts"]
    assert c["complete"] + c["dlq"] + c["missing"] == summary["uploads"]["planned"]
    assert c["missing"] == 0 and summary["simulation"]["finished"]
    assert summary["simulation"]["redeliveries"] > 0
    assert summary["accounting"]["dlq_codes"]["PERMANENT"] > 0  # the bad input goes to the DLQ at once
    assert summary["simulation"]["max_concurrency"] <= 4


def test_same_seed_same_result_and_backlog_grows_when_capacity_is_short() -> None:
    sc = scenario(Profile("constant", rate=200.0), 60.0)
    knobs = Knobs(maximum_concurrency=5)
    a, b = Simulation(sc, CAL, knobs).run(), Simulation(sc, CAL, knobs).run()
    assert a["latency_ms"]["e2e"] == b["latency_ms"]["e2e"]
    # 5 environments x ~7 records/s each cannot take 200/s: the queue grows about linearly
    visible = np.asarray(a["series"]["visible"])
    t = np.asarray(a["series"]["t"])
    growth = np.polyfit(t[(t > 10) & (t < 55)], visible[(t > 10) & (t < 55)], 1)[0]
    assert 140 < growth < 190


def test_knobs_reject_bad_values_with_a_code() -> None:
    with pytest.raises(SimulateError) as err:
        Knobs().with_sets(["maximum_concurrency=1"])
    assert err.value.code == KNOB_INVALID and "Expected" in err.value.message
    for bad in (["nope=1"], ["batch_size=20", "batching_window_s=0"], ["memory_mb=abc"], ["mode=cloud"]):
        with pytest.raises(SimulateError):
            Knobs().with_sets(bad)
    k = Knobs().with_sets(["maximum_concurrency=none", "memory_mb=1024", "rate=500"])
    assert k.maximum_concurrency is None and k.memory_mb == 1024 and k.rate == 500.0


def test_lint_says_what_the_settings_cannot_sustain() -> None:
    sim = Simulation(scenario(Profile("constant", rate=500.0), 60.0), CAL, Knobs(maximum_concurrency=50, batch_size=10))
    sentences = lint(sim.run(), sim)
    assert sentences[0].startswith("at 500/s with MaximumConcurrency 50")
    assert "backlog grows by" in sentences[0] and "concurrent environments are needed" in sentences[0]
    assert "exceeds the 4.0 days retention after" in sentences[0]


def test_sweep_covers_the_grid() -> None:
    sim = Simulation(scenario(Profile("constant", rate=100.0), 20.0), CAL, Knobs())
    result = sweep(sim, (512, 1769), (1, 10), (10, 100))
    assert len(result["rows"]) == 8
    rows = {(r["memory_mb"], r["batch_size"], r["maximum_concurrency"]): r for r in result["rows"]}
    assert rows[(1769, 10, 100)]["sustains"] and not rows[(512, 1, 10)]["sustains"]


def test_chaos_rates_from_a_chaos_report() -> None:
    doc = {
        "all_held": True,
        "scenarios": [
            {"name": "retryable", "uploads": 10, "redeliveries": 10, "outcomes": {"complete": 10}},
            {"name": "poison", "uploads": 10, "redeliveries": 0, "outcomes": {"complete": 8, "CORRUPT_IMAGE": 2}},
        ],
    }
    assert chaos_rates(doc, "retryable") == (0.5, 0.0)
    assert chaos_rates(doc) == (10 / 30, 0.1)
    with pytest.raises(SimulateError):
        chaos_rates(doc, "nope")


def test_cli_writes_the_report(tmp_path: Path) -> None:
    ext = tmp_path / "cal.json"
    ext.write_text(json.dumps({"calibration": CAL.to_dict(), "measured": {}}))
    out = tmp_path / "out"
    code = cli.main(
        ["spike", "--from", str(ext), "--set", "rate=50", "--set", "maximum_concurrency=10", "--out", str(out)]
    )
    assert code == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["uploads"]["planned"] == 50 * 80 + 500 * 10  # spike: x10 from 30 s to 40 s
    assert {p.name for p in out.iterdir()} >= {
        "report.md",
        "report.json",
        "backlog.png",
        "concurrency.png",
        "latency_cdf.png",
    }
    assert "## AWS rules applied" in (out / "report.md").read_text()
    assert cli.main(["spike", "--from", str(ext), "--set", "maximum_concurrency=0"]) == 2


def test_register_adds_the_subcommand() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    args = parser.parse_args(["simulate", "spike", "--set", "rate=10"])
    assert args.func is cli.run and args.sets == ["rate=10"]
    assert load_scenario("spike").name == "spike"
