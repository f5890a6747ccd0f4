"""Benchmark tool: target verdicts, Markdown rendering, charts and input roles, from a synthetic results dict."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from benchmarks.cost import CeilingRun, model_rows, recommend
from benchmarks.imaging import InputFacts
from benchmarks.inputs import pick_roles
from benchmarks.report import evaluate_targets, render_markdown, summary_table
from benchmarks.stats import ratio, summarize

# CPU ms per round of each variant on each input (3 rounds), as the runner would record them
CPU = {
    ("pillow", "jpeg-12mp"): [100.0, 110.0, 105.0],
    ("vips", "jpeg-12mp"): [60.0, 66.0, 63.0],
    ("sharp", "jpeg-12mp"): [70.0, 77.0, 73.5],
    ("floor", "jpeg-12mp"): [50.0, 55.0, 52.5],
    ("pillow", "jpeg-24mp"): [150.0, 160.0, 155.0],
    ("vips", "jpeg-24mp"): [140.0, 150.0, 145.0],
    ("sharp", "jpeg-24mp"): [100.0, 110.0, 105.0],
    ("floor", "jpeg-24mp"): [80.0, 90.0, 85.0],
}


def _results() -> dict[str, Any]:
    rows, ratios = [], []
    for (v, i), cpu in CPU.items():
        wall = [x * 1.5 for x in cpu]  # a busy machine: waiting for the CPU inflates wall time
        rows.append(
            {
                "variant": v,
                "input": i,
                "ok": True,
                "wall_ms": summarize(wall).to_dict(),
                "cpu_ms": summarize(cpu).to_dict(),
                "out_bytes": {"large": 100_000, "small": 8_000},
                "phases": {"decode_ms": 10.0, "resize_ms": 40.0, "encode_ms": 5.0} if v == "pillow" else None,
            }
        )
    for (v, i), cpu in CPU.items():
        for ref in ("sharp", "floor"):
            if v != ref:
                for basis, k in (("cpu", 1.0), ("wall", 1.5)):
                    ratios.append(
                        {
                            "variant": v,
                            "input": i,
                            "vs": ref,
                            "basis": basis,
                            **ratio([x * k for x in cpu], [x * k for x in CPU[(ref, i)]]).to_dict(),
                        }
                    )
    runs = [
        CeilingRun(b, i, m, not (m == 128 and i == "jpeg-24mp"), 100.0, 100.0, 60.0)
        for b in ("pillow", "vips")
        for i in ("jpeg-12mp", "jpeg-24mp")
        for m in (128, 512, 1769)
    ]
    runs = [
        r if r.ok else CeilingRun(r.backend, r.input, r.memory_mb, False, error_code="BENCH_OUT_OF_MEMORY")
        for r in runs
    ]
    model = model_rows(runs)
    recs = [
        recommend(
            model, backend=b, arch="arm64", latency_target_ms=1000, latency_inputs=["jpeg-12mp"], cost_input="jpeg-12mp"
        ).to_dict()
        for b in ("pillow", "vips")
    ]
    res: dict[str, Any] = {
        "started_at": "2026-11-27T23:00:00+00:00",
        "config": {"mode": "quick", "ratio_basis": "cpu"},
        "machine": {"cpu_model": "Test CPU", "cpus": 2, "mem_gib": 24},
        "inputs": [{"id": "jpeg-12mp", "label": "12 MP JPEG"}, {"id": "jpeg-24mp", "label": "24 MP JPEG"}],
        "timing": {"results": rows, "rounds_done": 3, "warmup": 1, "skipped_variants": {}},
        "ratios": ratios,
        "quality": [
            {"variant": "vips", "input": "jpeg-12mp", "width": 1024, "height": 768, "psnr_db": 37.1, "ssim": 0.88}
        ],
        "rss": [
            {
                "variant": "vips",
                "input": "jpeg-24mp",
                "megapixels": 24.0,
                "ok": True,
                "baseline_mb": 25.0,
                "peak_mb": 60.0,
                "first_run_ms": 120.0,
            },
            {
                "variant": "sharp",
                "input": "jpeg-24mp",
                "megapixels": 24.0,
                "ok": False,
                "error": {"code": "BENCH_WORKER_DIED", "message": "x"},
            },
        ],
        "sizing": {
            "mechanism": "cgroup1",
            "runs": 1,
            "ceilings": [asdict(r) for r in runs],
            "rows": [r.to_dict() for r in model],
            "latency_target_ms": 1000,
            "latency_inputs": ["jpeg-12mp"],
            "cost_input": "jpeg-12mp",
            "recommendations": recs,
            "model": {"prices": [], "price_table_date": "2025-06"},
        },
        "micro": {"skipped": "not in this test"},
    }
    res["targets"] = evaluate_targets(res)
    return res


def test_targets_compare_the_best_backend_with_sharp_and_the_floor() -> None:
    t = {(v["kind"], v["input"]): v for v in evaluate_targets(_results())}
    sharp12 = t[("best_vs_sharp", "jpeg-12mp")]
    assert sharp12["variant"] == "vips"
    assert sharp12["measured"] == pytest.approx(73.5 / 63.0, abs=1e-3)  # throughput ratio = sharp ms / vips ms
    assert sharp12["met"] is True
    floor12 = t[("best_vs_floor", "jpeg-12mp")]
    assert floor12["measured"] == pytest.approx(63.0 / 52.5, abs=1e-3)  # 1.2 <= 1.35
    assert floor12["met"] is True and floor12["margin_pct"] == pytest.approx((1 - 1.2 / 1.35) * 100, abs=0.1)
    sharp24 = t[("best_vs_sharp", "jpeg-24mp")]
    assert sharp24["variant"] == "vips" and sharp24["met"] is False  # 105/145 = 0.72x sharp
    assert sharp24["margin_pct"] == pytest.approx((105 / 145 / 1.1 - 1) * 100, abs=0.1)
    pil24 = t[("pillow_vs_floor", "jpeg-24mp")]
    assert pil24["measured"] == pytest.approx(155 / 85, abs=1e-3) and pil24["met"] is True


def test_targets_say_what_is_missing_instead_of_guessing() -> None:
    res = _results()
    res["ratios"] = [r for r in res["ratios"] if r["vs"] != "sharp"]
    verdicts = [v for v in evaluate_targets(res) if "sharp" in v["target"]]
    assert verdicts and all(v["met"] is None and "no sharp measurement" in v["note"] for v in verdicts)


def test_wall_basis_uses_the_wall_clock_ratios() -> None:
    res = _results()
    cpu = {(v["target"], v["input"]): v["measured"] for v in evaluate_targets(res, basis="cpu")}
    wall = {(v["target"], v["input"]): v["measured"] for v in evaluate_targets(res, basis="wall")}
    assert cpu == pytest.approx(wall)  # every wall sample is 1.5x its CPU sample: same ratios


def test_summary_table_has_a_row_per_input_with_ratios() -> None:
    table = summary_table(_results())
    lines = table.splitlines()
    assert lines[0].startswith("| input | pillow ms | vips ms | sharp ms | floor ms | best |")
    row12 = next(line for line in lines if line.startswith("| 12 MP JPEG"))
    assert "| vips |" in row12 and "1.17×" in row12  # 73.5 / 63
    assert "63.0 (60–66) wall 94" in row12


def test_markdown_names_measured_and_modeled_and_every_section() -> None:
    md = render_markdown(_results())
    for heading in (
        "## What is measured and what is modeled",
        "## Summary",
        "## Product targets",
        "## Timing details",
        "## Quality",
        "## Peak memory",
        "## Lambda sizing",
        "## pytest-benchmark micro-benchmarks",
    ):
        assert heading in md
    assert "**Measured**" in md and "**Modeled**" in md
    assert "MISSED" in md and "pillow phases" not in md.split("## Timing details")[0].split("MISSED")[0]
    assert "failed: BENCH_WORKER_DIED" in md
    assert "fails (BENCH_OUT_OF_MEMORY)" in md
    assert "Not run: not in this test" in md


def test_charts_are_written_as_png(tmp_path: Path) -> None:
    from benchmarks.charts import write_charts

    res = _results()
    made = write_charts(res, tmp_path)
    assert set(made.values()) == {"charts/throughput.png", "charts/peak_memory.png", "charts/cost_vs_memory.png"}
    for rel in made.values():
        data = (tmp_path / rel).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def _facts(
    name: str, fmt: str, w: int, h: int, *, progressive: bool = False, orientation: int = 1, alpha: bool = False
) -> InputFacts:
    return InputFacts(name, fmt, w, h, "RGBA" if alpha else "RGB", 1000, progressive, orientation, alpha)


def test_input_roles_are_picked_by_header_facts() -> None:
    picked = pick_roles(
        [
            _facts("a.jpg", "JPEG", 4000, 3000),
            _facts("b.jpg", "JPEG", 4000, 3000, progressive=True),
            _facts("c.jpg", "JPEG", 3000, 4000, orientation=6),
            _facts("d.jpg", "JPEG", 6000, 4000),
            _facts("e.png", "PNG", 4000, 3000, alpha=True),
            _facts("f.png", "PNG", 16, 16, alpha=True),
        ]
    )
    got = {p.id: p.facts.path for p in picked}
    assert got == {
        "jpeg-12mp": "a.jpg",
        "jpeg-24mp": "d.jpg",
        "jpeg-12mp-progressive": "b.jpg",
        "jpeg-orientation6": "c.jpg",
        "png-rgba": "e.png",
    }


def test_headline_quotes_the_numbers_the_issue_asks_for() -> None:
    from benchmarks.report import headline

    res = _results()
    res["inputs"] = [
        {"id": "jpeg-12mp", "label": "12 MP JPEG", "megapixels": 12.0},
        {"id": "jpeg-24mp", "label": "24 MP JPEG", "megapixels": 24.0},
    ]
    lines = headline(res)
    assert lines[0] == "Best backend vs sharp, throughput (cpu time): jpeg-12mp: vips 1.17×; jpeg-24mp: vips 0.72×."
    assert lines[1].startswith("pillow vs floor (time): jpeg-12mp 2.00×; jpeg-24mp 1.82×")
    assert "Peak RSS on jpeg-24mp (fresh process, one job): vips 60 MB." in lines
    assert any(line.startswith("Recommended memory (<= 1000 ms modeled): pillow arm64") for line in lines)


def test_readme_section_is_dated_and_carries_the_table_and_verdicts() -> None:
    from benchmarks.report import readme_section

    text = readme_section(_results())
    assert text.startswith("Latest `make bench` (quick) on this machine, 2026-11-27T23:00:00+00:00: Test CPU")
    assert "| input | pillow ms |" in text
    assert "best backend >= 1.1x sharp throughput on jpeg-24mp: MISSED (0.72×" in text


def test_every_input_gets_a_level_with_sharp_target_on_the_paired_ratio() -> None:
    t = {(v["kind"], v["input"]): v for v in evaluate_targets(_results())}
    level12 = t[("level_with_sharp", "jpeg-12mp")]
    # per-round vips/sharp ratios 60/70, 66/77, 63/73.5 (all 6/7): paired throughput 7/6, above pillow's
    assert level12["variant"] == "vips" and level12["limit"] == 1.0
    assert level12["measured"] == pytest.approx(7 / 6, abs=1e-3) and level12["met"] is True
    level24 = t[("level_with_sharp", "jpeg-24mp")]
    # 24 MP: vips 145 vs sharp 105 ms, pillow 155: the best paired throughput is vips' 105/145, a miss
    assert level24["variant"] == "vips" and level24["met"] is False
    assert level24["measured"] == pytest.approx(105 / 145, abs=1e-3)
    assert level24["margin_pct"] == pytest.approx((105 / 145 - 1) * 100, abs=0.1)
    text = render_markdown(_results())
    assert "best backend >= 1.0x sharp paired throughput" in text and "MISSED" in text


def test_issue16_roles_cmyk_palette_gif_and_cmyk_is_not_the_12mp_baseline() -> None:
    cmyk = InputFacts("a-cmyk.jpg", "JPEG", 4000, 3000, "CMYK", 1, False, 1, False)
    base = InputFacts("b.jpg", "JPEG", 4000, 3000, "RGB", 1, False, 1, False)
    palette = InputFacts("p.png", "PNG", 800, 600, "P", 1, False, 1, True)
    gif = InputFacts("g.gif", "GIF", 400, 300, "P", 1, False, 1, True)
    got = {p.id: p.facts.path for p in pick_roles([cmyk, base, palette, gif])}
    assert got == {"jpeg-12mp": "b.jpg", "jpeg-cmyk": "a-cmyk.jpg", "png-palette": "p.png", "gif-animated": "g.gif"}


def test_discover_derives_an_avif_input_from_the_webp_photo(tmp_path: Path) -> None:
    from PIL import Image

    from benchmarks.inputs import discover

    gen = tmp_path / "generated"
    gen.mkdir()
    Image.new("RGB", (1200, 900), (200, 100, 50)).save(gen / "photo.webp", "WEBP")
    Image.new("RGB", (4000, 3000), (10, 20, 30)).save(gen / "big.jpg", "JPEG")
    inputs, notes = discover(gen, None, derived=tmp_path / "derived")
    ids = [i.id for i in inputs]
    assert ids == ["jpeg-12mp", "webp", "avif"]  # report order of the roles
    avif = inputs[-1]
    assert (
        avif.source == "derived"
        and avif.facts.format == "AVIF"
        and (avif.facts.width, avif.facts.height)
        == (
            1200,
            900,
        )
    )
    assert (tmp_path / "derived" / "avif-photo.avif").is_file()
    assert not any("avif" in n for n in notes)
    assert [i.id for i in discover(gen, None, derived=None)[0]] == ["jpeg-12mp", "webp"]  # opt out
