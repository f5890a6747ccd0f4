"""harness compare on two stored small load reports (tests/data/compare: a local run and a --target run, both real)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.compare import cli as compare_cli
from harness.compare.figures import CompareError, Row, cost_per_image, label, outcome_differences, rows
from harness.compare.report import markdown, read_report, write

DATA = Path(__file__).resolve().parents[1] / "data" / "compare"


@pytest.fixture
def pair() -> tuple[dict, dict]:
    return dict(read_report(DATA / "local.json")), dict(read_report(DATA / "target.json"))


def _row(compared: list[Row], section: str, name: str) -> Row:
    return next(r for r in compared if r.section == section and r.label == name)


def test_rows_carry_both_reports_figures_per_stage_throughput_cost_and_outcomes(pair: tuple[dict, dict]) -> None:
    a, b = pair
    compared = rows(a, b)
    e2e = _row(compared, "latency (ms)", "e2e p50")
    assert (e2e.a, e2e.b) == (a["latency_ms"]["e2e"]["p50"], b["latency_ms"]["e2e"]["p50"])
    assert e2e.ratio == pytest.approx(b["latency_ms"]["e2e"]["p50"] / a["latency_ms"]["e2e"]["p50"])
    thr = _row(compared, "throughput", "uploads/s completed")
    assert thr.b == b["pipeline"]["completed_per_s"]
    assert _row(compared, "outcomes", "complete").a == a["accounting"]["counts"]["complete"]
    assert _row(compared, "outcomes", "lost").b == 0
    cost = _row(compared, "cost per image", "USD per 1000 images")
    assert cost.a is not None and cost.b is not None and cost.a > 0


def test_verdicts_follow_the_direction_of_each_figure() -> None:
    assert Row("latency (ms)", "e2e p50", 100.0, 50.0, True).verdict == "B better"
    assert Row("throughput", "uploads/s", 100.0, 50.0, False).verdict == "B worse"
    assert Row("throughput", "uploads/s", 100.0, 105.0, False).verdict == "same"
    assert Row("outcomes", "dlq", 1.0, 1.0, None).verdict == ""
    assert Row("latency (ms)", "e2e p50", None, 5.0, True).ratio is None


def test_cost_per_image_is_lambda_duration_at_the_stack_memory_plus_requests(pair: tuple[dict, dict]) -> None:
    a, _ = pair
    cost = cost_per_image(a)
    assert cost is not None
    memory = a["stack"]["outputs"]["memory_mb"]
    expected_gb_s = a["pipeline"]["handler_ms_sum"] / a["pipeline"]["completed"] / 1000 * memory / 1024
    assert cost["gb_s"] == pytest.approx(expected_gb_s)
    assert cost["usd"] == pytest.approx(cost["lambda_usd"] + cost["requests_usd"])
    old = {k: v for k, v in a.items() if k != "stack"}  # a report written before the stack was recorded
    assert cost_per_image(old) is None


def test_outcome_differences_name_lost_uploads_and_codes_on_one_side(pair: tuple[dict, dict]) -> None:
    a, b = pair
    assert outcome_differences(a, b) == []
    b2 = json.loads(json.dumps(b))
    b2["accounting"]["lost"] = 2
    b2["accounting"]["dlq_codes"] = {"CORRUPT_IMAGE": 1}
    notes = outcome_differences(a, b2)
    assert "B lost 2 upload(s)" in notes
    assert "DLQ codes only in B: CORRUPT_IMAGE" in notes


def test_markdown_names_both_stacks_and_png_is_written(pair: tuple[dict, dict], tmp_path: Path) -> None:
    a, b = pair
    text = markdown(a, b)
    assert label(a) in text and label(b) in text
    assert "cdkj2" in label(b)  # the --target run names the deployed stack
    for section in ("## latency (ms)", "## throughput", "## cost per image", "## outcomes"):
        assert section in text
    files = write(a, b, tmp_path)
    assert [f.name for f in files] == ["compare.md", "compare.png"]
    assert files[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_file_that_is_not_a_load_report_is_refused_with_a_code(tmp_path: Path) -> None:
    bad = tmp_path / "report.json"
    bad.write_text(json.dumps({"run_id": "x"}))
    with pytest.raises(CompareError) as err:
        read_report(bad)
    assert err.value.code == "COMPARE_REPORT_INVALID"
    (tmp_path / "junk.json").write_text("not json")
    with pytest.raises(CompareError):
        read_report(tmp_path / "junk.json")


def test_cli_prints_markdown_and_exits_2_on_a_bad_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    compare_cli.register(parser.add_subparsers())
    args = parser.parse_args(["compare", str(DATA / "local.json"), str(DATA / "target.json"), "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert "# Two load runs side by side" in capsys.readouterr().out
    args = parser.parse_args(["compare", str(tmp_path / "missing.json"), str(DATA / "target.json"), "--no-png"])
    assert args.func(args) == 2
    assert "COMPARE_REPORT_INVALID" in capsys.readouterr().err
