"""Benchmark tool, pure parts: statistics, paired ratios, quality metrics, the Lambda cost model and recommendation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import cost
from benchmarks.cost import CeilingRun, cost_per_million_usd, cpu_share, model_rows, modeled_duration_ms, recommend
from benchmarks.errors import BenchError, BenchErrorCode
from benchmarks.quality import luma, psnr, ssim
from benchmarks.stats import quantile, ratio, summarize
from infra import pricing


# ---- stats -----------------------------------------------------------------------------------------------------
def test_summary_matches_numpy_on_an_uneven_sample() -> None:
    samples = [12.0, 10.0, 11.0, 50.0, 10.5, 11.5]
    s = summarize(samples)
    assert s.n == 6
    assert s.median == pytest.approx(np.median(samples))
    assert s.p25 == pytest.approx(np.percentile(samples, 25))
    assert s.p75 == pytest.approx(np.percentile(samples, 75))
    assert (s.min, s.max) == (10.0, 50.0)
    assert s.images_per_s == pytest.approx(1000.0 / s.median)
    assert s.to_dict()["iqr"] == pytest.approx(s.p75 - s.p25)


def test_single_sample_has_zero_spread() -> None:
    s = summarize([42.0])
    assert (s.median, s.stdev, s.iqr) == (42.0, 0.0, 0.0)


@pytest.mark.parametrize("bad", [[], [1.0, -2.0], [math.nan], [True]])
def test_summary_rejects_bad_samples_with_a_stable_code(bad: list) -> None:
    with pytest.raises(BenchError) as err:
        summarize(bad)
    assert err.value.code == BenchErrorCode.INVALID_ARGUMENT
    assert err.value.message.startswith("Expected ")


def test_quantile_interpolates_linearly() -> None:
    assert quantile([0.0, 10.0], 0.25) == 2.5
    with pytest.raises(BenchError):
        quantile([1.0], 1.5)


def test_paired_ratio_cancels_a_slow_round_that_hit_both() -> None:
    # round 2 was slow for both (another tenant); per-round ratios stay at 0.5
    variant = [50.0, 50.0, 150.0, 50.0]
    reference = [100.0, 100.0, 300.0, 100.0]
    r = ratio(variant, reference)
    assert r.median == pytest.approx(0.5)
    assert (r.paired_min, r.paired_median, r.paired_max) == (pytest.approx(0.5),) * 3
    assert r.throughput == pytest.approx(2.0)
    assert r.rounds == 4


def test_paired_ratio_shows_spread_when_rounds_disagree() -> None:
    r = ratio([10.0, 30.0], [20.0, 20.0])
    assert r.paired_min == pytest.approx(0.5)
    assert r.paired_max == pytest.approx(1.5)


# ---- quality ---------------------------------------------------------------------------------------------------
def test_psnr_of_a_known_error() -> None:
    a = np.zeros((8, 8))
    b = np.full((8, 8), 1.0)  # MSE 1 -> 10*log10(255^2)
    assert psnr(a, b) == pytest.approx(20 * math.log10(255), rel=1e-9)
    assert psnr(a, a) == math.inf


def test_ssim_is_one_for_identical_images_and_drops_with_noise() -> None:
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (64, 64))
    assert ssim(img, img) == pytest.approx(1.0)
    noisy = np.clip(img + rng.normal(0, 40, img.shape), 0, 255)
    assert 0.0 < ssim(img, noisy) < 0.9


def test_ssim_of_two_flat_images_is_the_luminance_term() -> None:
    a = np.full((16, 16), 100.0)
    b = np.full((16, 16), 120.0)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)
    assert ssim(a, b) == pytest.approx(expected)


def test_quality_metrics_reject_mismatched_shapes() -> None:
    with pytest.raises(BenchError, match="Expected an array of shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(BenchError):
        ssim(np.zeros((4, 4)), np.zeros((4, 4)))  # smaller than the 7x7 window


def test_luma_weights() -> None:
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    assert luma(px)[0].tolist() == pytest.approx([0.299 * 255, 0.587 * 255, 0.114 * 255])


# ---- cost model ------------------------------------------------------------------------------------------------
def test_cpu_share_is_linear_below_one_vcpu_and_capped() -> None:
    assert cpu_share(1769) == 1.0
    assert cpu_share(3008) == 1.0
    assert cpu_share(128) == pytest.approx(128 / 1769)
    with pytest.raises(BenchError, match="Expected an integer 128..10240"):
        cpu_share(64)


def test_modeled_duration_stretches_cpu_and_adds_the_modeled_wait() -> None:
    assert modeled_duration_ms(100.0, 1769) == pytest.approx(100.0)
    assert modeled_duration_ms(100.0, 512) == pytest.approx(100.0 * 1769 / 512)
    assert modeled_duration_ms(100.0, 512, wait_ms=40.0) == pytest.approx(100.0 * 1769 / 512 + 40.0)
    assert modeled_duration_ms(100.0, 3008, cpu_speed_factor=1.5) == pytest.approx(150.0)
    with pytest.raises(BenchError, match="cpu_ms"):
        modeled_duration_ms(-1.0, 512)


def test_an_io_wait_makes_larger_memory_dearer() -> None:
    runs = [CeilingRun("vips", "x", m, True, wall_ms=300.0, cpu_ms=100.0) for m in (256, 1769)]
    flat = {r.memory_mb: r.usd_per_million["arm64"] for r in model_rows(runs)}
    waiting = {r.memory_mb: r.usd_per_million["arm64"] for r in model_rows(runs, io_wait_ms=50.0)}
    assert flat[256] == pytest.approx(flat[1769], rel=0.01)  # CPU-bound: flat below one vCPU
    assert waiting[1769] > waiting[256] * 1.2


def test_cost_per_million_matches_the_price_table() -> None:
    # 1000 ms at 1024 MB = 1 GB-s per image
    x86 = cost_per_million_usd(1000.0, 1024, "x86_64")
    assert x86 == pytest.approx((0.0000166667 + 0.20 / 1e6) * 1e6)
    arm = cost_per_million_usd(1000.0, 1024, "arm64")
    assert arm == pytest.approx((0.0000133334 + 0.20 / 1e6) * 1e6)
    assert arm < x86
    # billed per started millisecond
    assert cost_per_million_usd(10.2, 1024, "x86_64") == pytest.approx(cost_per_million_usd(11.0, 1024, "x86_64"))
    # ten images per invocation share one request charge
    assert cost_per_million_usd(100.0, 1024, "arm64", 10) < cost_per_million_usd(100.0, 1024, "arm64", 1)
    with pytest.raises(BenchError, match="architecture"):
        cost_per_million_usd(1.0, 1024, "ppc")


def test_price_table_is_dated() -> None:
    assert pricing.PRICE_TABLE_DATE and pricing.PRICE_TABLE_SOURCE
    assert {r["arch"] for r in cost.price_table_rows()} == {"arm64", "x86_64"}


def _runs() -> list[CeilingRun]:
    runs = []
    for mem in (128, 256, 512, 1024, 1769):
        runs.append(CeilingRun("pillow", "small", mem, True, wall_ms=100.0, cpu_ms=100.0, peak_rss_mb=60.0))
        big_ok = mem >= 256
        runs.append(
            CeilingRun(
                "pillow",
                "big",
                mem,
                big_ok,
                wall_ms=400.0 if big_ok else None,
                cpu_ms=400.0 if big_ok else None,
                error_code=None if big_ok else "BENCH_OUT_OF_MEMORY",
            )
        )
    return runs


def test_recommendation_skips_sizes_that_fail_and_sizes_that_are_too_slow() -> None:
    rows = model_rows(_runs())
    # 256 MB: big needs 400*1769/256 = 2764 ms > 1000; 512 MB: 1382 ms > 1000; 1024 MB: 691 ms -> first that fits
    rec = recommend(
        rows,
        backend="pillow",
        arch="arm64",
        latency_target_ms=1000,
        latency_inputs=["small", "big"],
        cost_input="small",
    )
    assert rec.memory_mb == 1024
    assert "128 MB fails on big" in rec.reason
    assert "512 MB too slow" in rec.reason
    assert rec.worst_modeled_ms == pytest.approx(400 * 1769 / 1024)


def test_recommendation_prefers_the_smaller_size_when_costs_tie() -> None:
    rows = model_rows(_runs())
    rec = recommend(
        rows,
        backend="pillow",
        arch="x86_64",
        latency_target_ms=10_000,
        latency_inputs=["small"],
        cost_input="small",
        required_inputs=["small"],
    )
    # CPU-bound below 1769 MB: duration x memory is constant, so cost ties up to rounding; the smallest wins
    assert rec.memory_mb == 128


def test_recommendation_says_why_when_nothing_qualifies() -> None:
    rows = model_rows(_runs())
    rec = recommend(
        rows, backend="pillow", arch="arm64", latency_target_ms=50, latency_inputs=["small"], cost_input="small"
    )
    assert rec.memory_mb is None and rec.usd_per_million is None
    assert rec.reason.startswith("no measured memory size qualifies")
    with pytest.raises(BenchError):
        recommend(
            rows, backend="pillow", arch="arm64", latency_target_ms=0, latency_inputs=["small"], cost_input="small"
        )


def test_failed_runs_are_kept_as_failures_in_the_model() -> None:
    rows = model_rows(_runs())
    failed = [r for r in rows if not r.ok]
    assert [(r.input, r.memory_mb, r.error_code) for r in failed] == [("big", 128, "BENCH_OUT_OF_MEMORY")]
    assert failed[0].modeled_ms is None and failed[0].usd_per_million == {}


def test_a_skipped_ceiling_is_not_measured_rather_than_failed() -> None:
    runs = [
        CeilingRun("vips", "small", 128, True, 100.0, 100.0),
        CeilingRun("vips", "small", 256, False, error_code=cost.SKIPPED, error="time budget"),
    ]
    rows = model_rows(runs)
    rec = recommend(
        rows, backend="vips", arch="arm64", latency_target_ms=10_000, latency_inputs=["small"], cost_input="small"
    )
    assert rec.memory_mb == 128
    assert "256 MB not measured for small" in rec.reason and "fails" not in rec.reason


def test_cpu_is_pooled_over_ceilings_so_noise_does_not_pick_the_memory() -> None:
    # the same job measured at three ceilings, one run caught a quiet moment: the model uses the median for all
    runs = [
        CeilingRun("vips", "x", 256, True, 60.0, 60.0),
        CeilingRun("vips", "x", 512, True, 40.0, 40.0),
        CeilingRun("vips", "x", 1024, True, 55.0, 55.0),
        CeilingRun("vips", "x", 1769, True, 40.0, 40.0, inferred_from_mb=512),
    ]
    rows = {r.memory_mb: r for r in model_rows(runs)}
    assert rows[256].modeled_ms == pytest.approx(55.0 * 1769 / 256)
    assert rows[1769].modeled_ms == pytest.approx(55.0)
    rec = recommend(
        list(rows.values()), backend="vips", arch="arm64", latency_target_ms=1000, latency_inputs=["x"], cost_input="x"
    )
    assert rec.memory_mb == 256
