"""Reports from fake runs: figures, accounting section, side-by-side table, PNG plots; progress bar; resize baseline."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from common.paths import SHARED_CORPORA
from harness.load import report
from harness.load.baseline import measure
from harness.load.generator import GenerationResult, Progress, UploadRecord
from harness.load.observe import PipelineTarget, Sample, ThumbnailObservation, account
from harness.load.progress import ProgressBar

TARGET = PipelineTarget.from_outputs({"input_bucket": "in", "queue_url": "q", "dlq_url": "d", "function_name": "f"})
RUN = "r1"
T0 = 1_700_000_000_000.0


def fake_run(n: int = 50) -> tuple[GenerationResult, object]:
    records, thumbs = [], []
    for i in range(n):
        key = f"uploads/{RUN}/{i:06d}-a.jpg"
        start = T0 + i * 100
        records.append(UploadRecord(i, key, "a.jpg", 1000, start, start, start + 5, "etag"))
        if i % 10 != 9:  # every 10th upload never completes
            for size in ("large", "small"):
                thumbs.append(
                    ThumbnailObservation(
                        f"thumbnails/{size}/{RUN}/{i:06d}-a.jpg.jpg", size, key, RUN, start + 40, 30.0, 60.0, "pillow"
                    )
                )
    gen = GenerationResult(RUN, tuple(records), T0, T0 + n * 100, None)
    return gen, account(RUN, gen.expected_keys, TARGET, thumbs, [], None)


def test_percentile_interpolates() -> None:
    assert report.percentile([], 50) is None
    assert report.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert report.percentile([5.0], 99) == 5.0


def test_summary_figures_come_from_the_records(tmp_path: Path) -> None:
    gen, acc = fake_run()
    samples = [Sample(T0 + i * 1000, 3 - min(i, 3), 1, 0, 0, 1) for i in range(6)]
    summary = report.summarize(
        scenario={"name": "fake"},
        backend="pillow",
        generation=gen,
        accounting=acc,
        samples=samples,
        baseline={"images_per_s": 20.0, "processes": 2},
    )
    assert summary["uploads"]["accepted"] == 50
    assert summary["accounting"]["counts"] == {"complete": 45, "dlq": 0, "missing": 5}
    e2e = summary["latency_ms"]["e2e"]
    assert e2e["n"] == 45 and e2e["p50"] == pytest.approx(100.0)  # start -> handler start 40 + total 60
    assert summary["latency_ms"]["overhead"]["p50"] == pytest.approx(70.0)
    assert summary["latency_ms"]["overhead_after_put"]["p50"] == pytest.approx(65.0)  # minus the 5 ms PUT
    assert summary["latency_ms"]["to_handler"]["p50"] == pytest.approx(35.0)
    assert summary["pipeline"]["thumbnails"] == 90
    assert summary["efficiency"]["ratio"] == pytest.approx(summary["pipeline"]["service_rate_per_s"] / 20.0)
    assert summary["efficiency"]["saturated"]  # messages were waiting in most samples
    files = report.write(summary, tmp_path)
    names = {p.name for p in files}
    assert names == {"report.json", "report.md", "latency_cdf.png", "throughput.png", "queue_depth.png"}
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    md = (tmp_path / "report.md").read_text()
    assert (
        "lost (missing, nothing left to wait for): **5**" in md
        and "not lost; the run did not drain): **0**" in md
        and "**pipeline efficiency**" in md
    )
    assert json.loads((tmp_path / "report.json").read_text())["run_id"] == RUN


def test_efficiency_is_not_claimed_when_the_pipeline_was_never_saturated() -> None:
    gen, acc = fake_run()
    idle = [Sample(T0 + i * 1000, 0, 1, 0, 0, 1) for i in range(6)]
    summary = report.summarize(
        scenario={"name": "fake"},
        backend="pillow",
        generation=gen,
        accounting=acc,
        samples=idle,
        baseline={"images_per_s": 20.0, "processes": 2},
    )
    assert not summary["efficiency"]["saturated"]
    assert "not measured" in report.markdown(summary)


def test_side_by_side_has_one_column_per_backend() -> None:
    gen, acc = fake_run(10)
    a = report.summarize(scenario={"name": "x"}, backend="pillow", generation=gen, accounting=acc)
    b = {**a, "backend": "vips"}
    table = report.comparison_markdown([a, b])
    assert "pillow" in table and "vips" in table
    assert table.count("| lost |") == 1


def test_progress_bar_writes_a_final_line() -> None:
    out = io.StringIO()
    bar = ProgressBar("smoke", out)
    bar(Progress(10, 10, 4, 0, 1.0))
    bar(Progress(10, 10, 9, 1, 2.0))
    text = out.getvalue()
    assert "10/10 ok 9 failed 1" in text and text.endswith("\n")


@pytest.mark.corpora
@pytest.mark.slow
def test_baseline_resizes_real_images_in_a_fresh_process() -> None:
    folder = SHARED_CORPORA / "exif-orientation"
    if not folder.is_dir():
        pytest.skip(f"shared corpora not present at {folder}")
    bodies = [p.read_bytes() for p in sorted(folder.glob("*.jpg"))[:4]]
    base = measure("pillow", bodies, processes=1, seconds=0.5, sizes="small:64x64")
    assert base.images > 0 and base.failed == 0 and base.images_per_s > 0
