"""Each AWS rule in harness.simulate.rules has its effect tested here (the rules table names these tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.load.scenario import Profile, Scenario
from harness.simulate import rules
from harness.simulate.calibration import Calibration, Dist, InputClass
from harness.simulate.engine import COMPLETE, DLQ_HANDLER, EXPIRED, REDRIVEN, SimOutput, cpu_share
from harness.simulate.knobs import Knobs
from harness.simulate.report import markdown
from harness.simulate.simulation import Simulation


def calibration(cpu_ms: float = 100.0) -> Calibration:
    return Calibration(
        "test",
        "pillow",
        (InputClass("a.jpg", 1.0, cpu_ms),),
        handler_overhead_cpu_ms=0.0,
        put_ms=Dist.constant(0.0),
        notify_ms=Dist.constant(0.0),
    )


def scenario(rate: float, duration_s: float, count: int | None = None) -> Scenario:
    return Scenario(
        name="t",
        profile=Profile("constant", rate=rate),
        duration_s=duration_s,
        count=count,
        max_uploads=count or 10**9,
        corpus_dir="/nonexistent",
        mix=(("a.jpg", 1.0),),
    )


def aws(**changes: object) -> Knobs:
    base = dict(
        mode="aws",
        memory_mb=rules.FULL_VCPU_MB,
        s3_io_ms=0.0,
        invoke_overhead_ms=0.0,
        cold_start_ms=0.0,
        batching_window_s=0.0,
        maximum_concurrency=None,
    )
    base.update(changes)
    return Knobs(**base)  # type: ignore[arg-type]


def run(sc: Scenario, knobs: Knobs, cpu_ms: float = 100.0) -> tuple[dict, SimOutput]:
    sim = Simulation(sc, calibration(cpu_ms), knobs)
    out, _, _ = sim.run_raw()
    return sim.run(), out


def at(series: dict, key: str, t: float) -> float:
    """The sampled value of `key` at the last sample at or before t."""
    i = int(np.searchsorted(np.asarray(series["t"]), t, "right")) - 1
    return series[key][max(0, i)]


def test_esm_starts_with_five_batches() -> None:
    # GIVEN 5,000 uploads in a second and records of 10 s; WHEN simulated; THEN 5 batches run at first
    _, out = run(scenario(5000.0, 1.0), aws(sample_interval_s=0.1), cpu_ms=10_000.0)
    s = out.samples
    assert at(s, "pollers", 0.1) == rules.ESM_INITIAL_BATCHES
    assert at(s, "concurrency", 0.1) == rules.ESM_INITIAL_BATCHES
    assert at(s, "pollers", 2.0) > rules.ESM_INITIAL_BATCHES  # and then it grows


def test_esm_scales_up_by_300_per_minute() -> None:
    summary, _ = run(scenario(20000.0, 1.0), aws(), cpu_ms=10_000.0)
    s = summary["series"]
    after_minute = at(s, "pollers", 60.0)
    assert (
        rules.ESM_INITIAL_BATCHES + rules.ESM_SCALE_UP_PER_MIN - 10
        <= after_minute
        <= rules.ESM_INITIAL_BATCHES + rules.ESM_SCALE_UP_PER_MIN + 5
    )
    assert at(s, "pollers", 120.0) >= after_minute + rules.ESM_SCALE_UP_PER_MIN - 10  # still growing, same rate


def test_caps_bind_concurrency() -> None:
    # MaximumConcurrency caps the mapping without a single throttle; the mapping's own cap binds when it is unset
    capped, _ = run(scenario(20000.0, 1.0), aws(maximum_concurrency=50), cpu_ms=2_000.0)
    assert capped["simulation"]["max_concurrency"] == 50
    assert capped["simulation"]["throttled_invocations"] == 0
    mapping, _ = run(scenario(20000.0, 1.0), aws(esm_max_batches=120, esm_initial_batches=100), cpu_ms=2_000.0)
    assert mapping["simulation"]["max_concurrency"] == 120


def test_reserved_concurrency_below_pollers_throttles() -> None:
    # GIVEN reserved concurrency 10 and a mapping that scales past it: invocations beyond 10 are throttled and the
    # throttled batches come back after the visibility timeout
    knobs = aws(reserved_concurrency=10, esm_initial_batches=40, visibility_timeout_s=30.0, max_receive_count=1000)
    summary, _ = run(scenario(2000.0, 1.0), knobs, cpu_ms=500.0)
    sim = summary["simulation"]
    assert sim["max_concurrency"] == 10
    assert sim["throttled_invocations"] > 0 and sim["redeliveries"] > 0
    assert summary["accounting"]["counts"]["complete"] == 2000
    # the same with MaximumConcurrency = reserved: no throttles
    calm, _ = run(scenario(2000.0, 1.0), aws(reserved_concurrency=10, maximum_concurrency=10), cpu_ms=500.0)
    assert calm["simulation"]["throttled_invocations"] == 0
    # the account limit acts the same way when other functions hold most of it
    account, _ = run(scenario(2000.0, 1.0), aws(other_concurrency=990, esm_initial_batches=40), cpu_ms=500.0)
    assert account["simulation"]["max_concurrency"] == 10 and account["simulation"]["throttled_invocations"] > 0


def test_throttled_to_max_receive_is_redriven() -> None:
    # reserved concurrency 0: every receive is throttled; after maxReceiveCount receives SQS moves the message
    summary, out = run(scenario(50.0, 1.0), aws(reserved_concurrency=0, visibility_timeout_s=5.0))
    assert summary["accounting"]["counts"]["dlq"] == 50
    assert np.all(out.state == REDRIVEN)
    assert np.all(out.receives == 3)


def test_function_scaling_rate_limits_new_environments() -> None:
    # 20 new environments per 10 s: 200 pollers at once cannot get more than the bucket plus its refill
    knobs = aws(function_scale_per_10s=20, esm_initial_batches=200, max_receive_count=1000, visibility_timeout_s=20.0)
    summary, _ = run(scenario(2000.0, 1.0), knobs, cpu_ms=1_000.0)
    s = summary["series"]
    assert at(s, "environments", 1.0) <= 20 + 2 + 1
    assert at(s, "environments", 11.0) <= 20 + 2 * 11 + 1
    assert summary["simulation"]["throttled_invocations"] > 0


def test_visibility_shorter_than_batch_duplicates() -> None:
    # a batch of 10 x 1 s records outlives a 5 s visibility timeout: every message is delivered again
    short, _ = run(
        scenario(100.0, 1.0), aws(maximum_concurrency=2, visibility_timeout_s=5.0, max_receive_count=10), cpu_ms=1000.0
    )
    assert short["simulation"]["visibility_expired"] > 0 and short["simulation"]["duplicates"] > 0
    long, _ = run(scenario(100.0, 1.0), aws(maximum_concurrency=2, visibility_timeout_s=120.0), cpu_ms=1000.0)
    assert long["simulation"]["visibility_expired"] == 0 and long["simulation"]["duplicates"] == 0


def test_retryable_failures_end_in_dlq_after_max_receive() -> None:
    summary, out = run(scenario(100.0, 1.0), aws(retryable_rate=1.0, visibility_timeout_s=10.0, max_receive_count=3))
    assert np.all(out.state == DLQ_HANDLER)  # the handler dead-letters on the last allowed receive
    assert np.all(out.receives == 3)
    assert summary["simulation"]["redeliveries"] == 200
    assert summary["accounting"]["dlq_codes"]["RETRY_EXHAUSTED"] == 100


def test_retention_expires_old_messages() -> None:
    # 2 environments x 1 record/s cannot keep up with 10/s: messages older than a 60 s retention are deleted
    summary, out = run(
        scenario(10.0, 120.0), aws(maximum_concurrency=2, batch_size=1, queue_retention_s=60.0), cpu_ms=1000.0
    )
    expired = int(np.count_nonzero(out.state == EXPIRED))
    assert expired > 0
    assert summary["simulation"]["max_oldest_age_s"] <= 60.0 + 1.0
    c = summary["accounting"]["counts"]
    assert c["complete"] + c["dlq"] + c["missing"] == 1200


def test_s3_prefix_rate_throttles() -> None:
    # 5,000 records/s through one prefix (3,500 PUT/s): some records get 503 SlowDown and come back
    knobs = aws(
        maximum_concurrency=1000,
        esm_initial_batches=1000,
        batch_size=10,
        visibility_timeout_s=5.0,
        max_receive_count=100,
    )
    one, _ = run(scenario(5000.0, 4.0), knobs, cpu_ms=100.0)
    assert one["simulation"]["s3_throttles"] > 0
    two, _ = run(scenario(5000.0, 4.0), knobs.with_sets(["s3_prefixes=2"]), cpu_ms=100.0)
    assert two["simulation"]["s3_throttles"] == 0
    assert two["accounting"]["counts"]["complete"] == 20000


def test_function_timeout_fails_the_batch() -> None:
    # 10 records x 5 s = 50 s > 30 s: the invocation is killed; the records written before stay complete, the rest
    # come back, and on the last receive they land in the DLQ by SQS redrive
    summary, out = run(
        scenario(10.0, 1.0),
        aws(maximum_concurrency=2, function_timeout_s=30.0, visibility_timeout_s=60.0),
        cpu_ms=5000.0,
    )
    assert summary["simulation"]["timeouts"] > 0
    assert np.count_nonzero(out.state == COMPLETE) >= 5
    assert np.count_nonzero(out.state == REDRIVEN) > 0


def test_memory_stretches_cpu_time() -> None:
    half = rules.FULL_VCPU_MB / 2
    assert cpu_share(int(half)) == pytest.approx(0.5, rel=1e-3)
    assert cpu_share(10240) == 1.0
    fast, _ = run(scenario(10.0, 1.0), aws(maximum_concurrency=2, batch_size=1, memory_mb=rules.FULL_VCPU_MB))
    slow, _ = run(scenario(10.0, 1.0), aws(maximum_concurrency=2, batch_size=1, memory_mb=int(half)))
    ratio = slow["latency_ms"]["in_handler"]["p50"] / fast["latency_ms"]["in_handler"]["p50"]
    assert ratio == pytest.approx(rules.FULL_VCPU_MB / int(half), rel=1e-3)


def test_cost_per_million_matches_price_table() -> None:
    # one 100 ms record per invocation at 1,024 MB arm64: the benchmark's cost model gives the same figure
    summary, _ = run(scenario(10.0, 10.0), aws(maximum_concurrency=2, batch_size=1, memory_mb=1024), cpu_ms=100.0)
    gb_s = 0.1 * 1769 / 1024 * 1.0  # 100 ms CPU at 1,024 MB lasts 100 x 1769 / 1024 ms
    expect = (math.ceil(gb_s * 1000) / 1000 * rules.USD_PER_GB_S["arm64"] + 0.2 / 1e6) * 1e6
    assert summary["cost"]["usd_per_million_images"] == pytest.approx(expect, rel=1e-3)


def test_prices_match_the_benchmark_table() -> None:
    # one table (infra.pricing) serves both the benchmarks' cost model and the simulator
    from benchmarks import cost
    from infra import pricing

    assert cost.PRICES is pricing.PRICES and rules.PRICE_TABLE_DATE == pricing.PRICE_TABLE_DATE
    for arch, price in cost.PRICES.items():
        assert rules.USD_PER_GB_S[arch] == price.usd_per_gb_s
        assert rules.USD_PER_MILLION_REQUESTS[arch] == price.usd_per_million_requests
    assert rules.FULL_VCPU_MB == cost.FULL_VCPU_MB


def test_every_rule_names_a_test_here_and_every_report_prints_the_table() -> None:
    names = set(globals())
    for rule in rules.RULES:
        assert rule.test in names, rule
        assert rule.source.startswith("https://")
    summary, _ = run(scenario(10.0, 1.0), aws(maximum_concurrency=2))
    text = markdown(summary)
    for rule in rules.RULES:
        assert f"| {rule.key} |" in text and rule.source in text
