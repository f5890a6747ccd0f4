"""Unit tests of the pipeline bench's pure figures: REPORT lines, cost per million images, knee, recommendation and
the targets list, on synthetic curves (including a flat one)."""

from __future__ import annotations

import pytest

from benchmarks.pipeline.model import (
    CurvePoint,
    PipelineBenchError,
    cpu_floor_ms,
    evaluate_targets,
    is_flat,
    knee,
    max_pixels_for,
    memory_floor_mb,
    parse_report,
    percentile,
    recommend,
    resize_floor_ms,
    summarise,
    usd_per_million_images,
    without_cpu_ratio,
)
from benchmarks.pipeline.report import markdown
from benchmarks.pipeline.run import Invocation, curves_of, invocation_cpu_from_log, paired_ratios, resize_of_line
from infra.pricing import PRICES

REPORT = (
    "END RequestId: abc\nREPORT RequestId: abc\tDuration: 812.31 ms\tBilled Duration: 813 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 97 MB\tInit Duration: 401.00 ms\n"
)


def point(
    mem: int, ms: float, *, peak: int = 90, failures: int = 0, resize: float | None = None, cpu: float | None = None
) -> CurvePoint:
    usd = {a: usd_per_million_images(ms * 10, mem, 10, a) for a in PRICES}
    return CurvePoint(mem, 3, ms, ms * 1.1, ms * 10, ms * 11, usd, peak, resize, failures, cpu)


def test_report_line_is_parsed() -> None:
    r = parse_report("noise\n" + REPORT)
    assert (r.request_id, r.billed_ms, r.memory_mb, r.max_memory_used_mb) == ("abc", 813, 512, 97)
    assert r.duration_ms == pytest.approx(812.31)
    with pytest.raises(PipelineBenchError) as info:
        parse_report("START RequestId: x\n")
    assert info.value.code == "NO_REPORT_LINE"


def test_cost_per_million_images_spreads_duration_and_request_over_the_batch() -> None:
    price = PRICES["x86_64"]
    got = usd_per_million_images(1000, 1024, 10, "x86_64")
    assert got == pytest.approx((1.0 * price.usd_per_gb_s + price.usd_per_million_requests / 1e6) / 10 * 1e6)
    with pytest.raises(PipelineBenchError):
        usd_per_million_images(10, 128, 0, "x86_64")
    with pytest.raises(PipelineBenchError):
        usd_per_million_images(10, 128, 1, "sparc")


def test_summarise_takes_billed_ms_per_image_and_the_peak() -> None:
    p = summarise(256, [1000, 2000, 3000], [999.0, 1999.0, 2999.0], [10, 10, 10], [80, 95, 90], [50.0, 60.0])
    assert p.billed_ms_per_image_p50 == 200.0 and p.billed_ms_per_image_p99 == pytest.approx(298.0)
    assert p.max_memory_used_mb == 95 and p.resize_ms_per_image == 55.0 and p.batches == 3
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_a_cpu_bound_curve_has_its_knee_where_it_bends_and_the_cheapest_size_wins() -> None:
    # duration halves with memory up to 1769 MB, then flat: cost rises after the bend
    pts = [point(128, 1400), point(256, 700), point(512, 360), point(1024, 190), point(1769, 120), point(3008, 118)]
    assert not is_flat(pts)
    k = knee(pts)
    assert k in (512, 1024)  # the bend of a halving curve on a log axis sits in the middle, not at either end
    rec = recommend("pillow", pts, "x86_64")
    cheapest = min(pts, key=lambda p: p.usd_per_million["x86_64"])
    assert rec.memory_mb == cheapest.memory_mb or rec.usd_per_million <= cheapest.usd_per_million["x86_64"] * 1.01
    assert rec.knee_mb == k and not rec.flat


def test_a_flat_curve_has_no_knee_and_recommends_the_smallest_size() -> None:
    pts = [point(m, 300 + (m % 7)) for m in (128, 256, 512, 1024, 1769, 3008)]
    assert is_flat(pts) and knee(pts) is None
    rec = recommend("vips", pts, "x86_64")
    assert rec.memory_mb == 128 and rec.flat and "flat" in rec.reason


def test_sizes_with_failures_or_a_peak_over_the_memory_are_never_recommended() -> None:
    pts = [point(128, 900, peak=140), point(256, 460, failures=1), point(512, 240)]
    rec = recommend("pillow", pts, "x86_64")
    assert rec.memory_mb == 512 and "128 MB" in rec.reason and "256 MB" in rec.reason
    assert recommend("pillow", [point(128, 900, peak=200)], "x86_64").memory_mb is None


def test_targets_have_measured_value_and_verdict_at_the_recommended_size() -> None:
    seq = [point(128, 1400, cpu=100), point(512, 500, cpu=90), point(1769, 300, cpu=95)]
    ovl = [point(128, 1100), point(512, 320), point(1769, 130)]
    curves = {"pillow": {"sequential": seq, "overlap": ovl}}
    rec = {"pillow": recommend("pillow", ovl, "x86_64")}
    mem = rec["pillow"].memory_mb
    targets = evaluate_targets(curves, rec, paired_ratios={"pillow": {mem: 0.62}})
    by = {t["target"]: t for t in targets}
    assert len(targets) == 4 and all({"measured", "met", "limit", "margin_pct"} <= set(t) for t in targets)
    assert by["overlapped billed ms/image <= 0.7 x sequential"]["met"] is True
    cpu = by["overlapped billed ms/image <= 1.15 x resize CPU ms/image at the CPU share"]
    resize_cpu = {p.memory_mb: p.resize_cpu_ms_per_image for p in seq}[mem]
    assert resize_cpu is not None
    at_share = resize_cpu / min(1.0, mem / 1769)  # below one vCPU a CPU ms takes 1769/mem ms
    ovl_ms = {p.memory_mb: p.billed_ms_per_image_p50 for p in ovl}[mem]
    assert cpu["measured"] == pytest.approx(ovl_ms / at_share, abs=1e-3) and cpu["met"] is (ovl_ms / at_share <= 1.15)
    assert by["memory curve not flat (slowest / fastest p50)"]["met"] is True
    assert by["peak RSS with overlap on <= memory ceiling"]["met"] is True


def test_the_resize_target_says_what_the_ratio_would_be_without_the_s3_client() -> None:
    # GIVEN an overlapped point billing 120 ms/image on 60 CPU ms/image, 15 of them the S3 client's, at 1769 MB
    from dataclasses import replace

    ovl = replace(point(1769, 120), cpu_ms_per_image=60.0, s3_cpu_ms_per_image=15.0)
    # THEN without those 15 ms the billed ms scale by 45/60: 90 ms over an 80 ms floor
    assert without_cpu_ratio(ovl, 15.0, 80.0) == pytest.approx(90.0 / 80.0)
    assert without_cpu_ratio(point(1769, 120), 15.0, 80.0) is None  # no invocation CPU: no estimate
    seq = [replace(point(1769, 300), resize_cpu_ms_per_image=80.0)]
    curves = {"vips": {"sequential": seq, "overlap": [ovl]}}
    targets = evaluate_targets(curves, {"vips": recommend("vips", [ovl], "x86_64")}, paired_ratios={})
    cpu = next(t for t in targets if t["target"].startswith("overlapped billed ms/image <= 1.15"))
    assert cpu["measured"] == pytest.approx(1.5) and cpu["met"] is False
    assert "15.0 ms per image (without it, the rest as measured: 1.12 x)" in cpu["note"]


def test_missing_figures_are_not_applicable_rather_than_met() -> None:
    flat = [point(m, 300) for m in (128, 256)]
    curves = {"vips": {"sequential": flat, "overlap": flat}}
    targets = evaluate_targets(curves, {"vips": recommend("vips", flat, "x86_64")}, paired_ratios={})
    by = {t["target"]: t for t in targets}
    assert by["overlapped billed ms/image <= 0.7 x sequential"]["met"] is None
    assert by["overlapped billed ms/image <= 1.15 x resize CPU ms/image at the CPU share"]["met"] is None  # no CPU ms
    assert by["memory curve not flat (slowest / fastest p50)"]["met"] is False


def test_paired_ratio_is_per_round_then_the_median() -> None:
    def inv(mode: str, rnd: int, billed: int) -> Invocation:
        return Invocation("vips", mode, 512, rnd, 10, billed, float(billed), 90, f"{mode}{rnd}", 0)

    invs = [inv("sequential", 0, 2000), inv("overlap", 0, 1000), inv("sequential", 1, 4000), inv("overlap", 1, 3000)]
    assert paired_ratios(invs) == {"vips": {512: pytest.approx(0.625)}}


def test_resize_ms_is_read_from_single_and_nested_log_lines() -> None:
    line = '{"request_id": "r1", "resize_ms": 12.5, "outcome": "ok"}'
    assert resize_of_line("2026 INFO " + line) == ("r1", [12.5])
    nested = '{"request_id": "r2", "objects": [{"resize_ms": 1.0}, {"resize_ms": 2.0}]}'
    assert resize_of_line(nested) == ("r2", [1.0, 2.0])
    assert resize_of_line("REPORT RequestId: x") == ("", [])


def test_the_resize_floor_scales_the_cpu_ms_below_one_vcpu_only() -> None:
    assert resize_floor_ms(point(1769, 100, cpu=50)) == pytest.approx(50.0)
    assert resize_floor_ms(point(3008, 100, cpu=50)) == pytest.approx(50.0)  # one thread: more vCPU does not help
    assert resize_floor_ms(point(512, 100, cpu=50)) == pytest.approx(50.0 * 1769 / 512)
    assert resize_floor_ms(point(512, 100)) is None
    # libvips runs a resize on one thread per whole vCPU: from 3538 MB two, and the floor halves
    assert resize_floor_ms(point(3008, 100, cpu=50), "vips") == pytest.approx(50.0)
    assert resize_floor_ms(point(4096, 100, cpu=50), "vips") == pytest.approx(25.0)
    assert resize_floor_ms(point(4096, 100, cpu=50), "pillow") == pytest.approx(50.0)
    assert cpu_floor_ms(60.0, 3008, threads=2) == pytest.approx(60.0 * 1769 / 3008)  # 1.7 vCPU, two resizers


def test_the_recommendation_skips_sizes_below_the_memory_floor_and_names_the_cheaper_one() -> None:
    # GIVEN a curve whose cheapest size (256 MB) is below what the largest accepted image needs (923 MB)
    pts = [point(256, 300), point(512, 160), point(1024, 90), point(1769, 80)]
    floor = memory_floor_mb(100_000_000)
    assert floor == 923 and max_pixels_for(floor) >= 100_000_000 > max_pixels_for(floor - 1)

    # WHEN recommending with and without the floor
    with_floor, without = recommend("vips", pts, "x86_64", floor_mb=floor), recommend("vips", pts, "x86_64")

    # THEN the floor moves it to the cheapest size at or above 923 MB, and the cheaper one is named with its limit
    assert without.memory_mb == 256 and with_floor.memory_mb == 1024
    assert (with_floor.floor_mb, with_floor.cheapest_any_mb) == (923, 256)
    assert "256 MB is cheaper" in with_floor.reason and "at most 12.5 MP" in with_floor.reason
    # a floor above every measured size: the cheapest clean one, said so
    assert recommend("vips", pts, "x86_64", floor_mb=5000).memory_mb == 256
    assert "none measured at or above" in recommend("vips", pts, "x86_64", floor_mb=5000).reason


def test_the_invocation_cpu_is_read_from_the_handlers_emf_line() -> None:
    emf = '{"_aws": {"CloudWatchMetrics": []}, "InvocationCpuMs": [412.5], "service": "thumbnailer"}'
    assert invocation_cpu_from_log(f"START RequestId: x\n{emf}\nEND RequestId: x\n") == 412.5
    assert invocation_cpu_from_log(emf.replace("[412.5]", "12.0")) == 12.0
    assert invocation_cpu_from_log("REPORT RequestId: x\tDuration: 1 ms") is None


def test_the_s3_clients_cpu_per_image_comes_from_the_log_and_is_in_the_report() -> None:
    # GIVEN two overlapped invocations of 2 objects whose log lines carry s3_cpu_ms (one nested), and one without
    def inv(rnd: int, s3: list[float]) -> Invocation:
        i = Invocation("vips", "overlap", 1024, rnd, 2, 200, 200.0, 90, f"r{rnd}", 0, [40.0, 40.0], [45.0, 45.0], 110.0)
        i.s3_cpu_ms = s3
        return i

    lines = '{"request_id": "r0", "objects": [{"s3_cpu_ms": 7.5}, {"s3_cpu_ms": 8.5}]}'
    invs = [inv(0, resize_of_line(lines, "s3_cpu_ms")[1]), inv(1, [9.0, 11.0]), inv(2, [6.0])]

    # WHEN the curves are summarised and the report is written
    point = curves_of(invs, "x86_64")["vips"]["overlap"][0]
    report = markdown({"curves": {"vips": {"overlap": [point.to_dict()]}}, "recommendations": {}, "targets": []})

    # THEN the S3 client's CPU per image is the median over the complete invocations (8.0 and 10.0 ms), in its column
    assert point.s3_cpu_ms_per_image == pytest.approx(9.0)
    assert "S3 client CPU ms/image seq / overlap" in report and "| n/a / 9.0 |" in report


def test_fields_missing_from_the_log_tail_are_read_off_the_log_group_in_one_scan() -> None:
    from benchmarks.pipeline.run import Bench

    class Logs:
        """filter_log_events over two pages: r1's line on the first, r2's on the second."""

        def __init__(self) -> None:
            self.calls = 0

        def filter_log_events(self, **kwargs: object) -> dict[str, object]:
            self.calls += 1
            if "nextToken" not in kwargs:
                line = '{"request_id": "r1", "objects": [{"resize_ms": 1.0, "s3_cpu_ms": 2.0}]}'
                return {"events": [{"message": "INFO " + line}], "nextToken": "p2"}
            line = '{"request_id": "r2", "objects": [{"resize_ms": 3.0, "s3_cpu_ms": 4.0}]}'
            return {"events": [{"message": line}, {"message": "REPORT RequestId: r2"}]}

    bench = Bench.__new__(Bench)
    bench.function, bench.logs, bench.log = "fn", Logs(), print
    found = bench.fields_by_request(0, {"r1", "r2"}, ("resize_ms", "s3_cpu_ms"))
    assert found == {"resize_ms": {"r1": [1.0], "r2": [3.0]}, "s3_cpu_ms": {"r1": [2.0], "r2": [4.0]}}
    assert bench.logs.calls == 2  # both fields from one pass over the two pages
