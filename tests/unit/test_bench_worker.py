"""Benchmark tool: the worker protocol end to end (real worker processes on a small image), and fail-fast errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.errors import BenchError, BenchErrorCode
from benchmarks.workers import Worker, sharp_status, worker_command


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1600x1200 JPEG with a gradient (big enough that the 1024 box shrinks it)."""
    img = Image.linear_gradient("L").resize((1600, 1200)).convert("RGB")
    path = tmp_path_factory.mktemp("bench") / "photo.jpg"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("variant", ["floor", "pillow"])
def test_worker_runs_the_job_and_reports_time_memory_and_outputs(variant: str, photo: Path, tmp_path: Path) -> None:
    with Worker(variant) as w:
        assert w.ready.variant == variant and w.ready.baseline_hwm_kb
        w.load("p", photo)
        res = w.run("p", save_dir=tmp_path)
        mem = w.mem()
    assert res["wall_ms"] > 0 and res["cpu_ms"] > 0
    dims = [(o["name"], o["width"], o["height"], o["format"]) for o in res["outputs"]]
    assert dims == [("large", 1024, 768, "jpeg"), ("small", 256, 192, "jpeg")]
    with Image.open(tmp_path / "large.jpg") as im:
        assert im.size == (1024, 768)
    assert mem["hwm_kb"] >= mem["rss_kb"] > 0


def test_worker_reports_bad_requests_with_a_stable_code(photo: Path) -> None:
    with Worker("floor") as w:
        with pytest.raises(BenchError) as err:
            w.run("never-loaded")
        assert err.value.code == BenchErrorCode.INVALID_ARGUMENT
        assert "Expected a loaded input id" in err.value.message
        w.load("p", photo)  # the worker survives a bad request
        assert w.run("p")["outputs"]


def test_unknown_variant_is_rejected_before_anything_starts() -> None:
    with pytest.raises(BenchError, match="Expected one of pillow|vips|sharp|floor for variant"):
        worker_command("imagemagick")


def test_sharp_is_skipped_with_a_clear_message_when_node_or_the_package_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import benchmarks.workers as workers

    monkeypatch.setattr(workers.shutil, "which", lambda _name: None)
    ok, why = sharp_status()
    assert not ok and "`node` is not on PATH" in why
    monkeypatch.setattr(workers.shutil, "which", lambda _name: "/usr/bin/node")
    monkeypatch.setattr(workers, "SHARP_MODULE", tmp_path / "missing" / "package.json")
    ok, why = sharp_status()
    assert not ok and "make bench-deps" in why
    with pytest.raises(BenchError) as err:
        worker_command("sharp")
    assert err.value.code == BenchErrorCode.REFERENCE_MISSING


def test_ceilings_run_under_the_executor_memory_limit_and_infer_above_a_pass(photo: Path) -> None:
    from benchmarks.imaging import probe
    from benchmarks.inputs import BenchInput
    from benchmarks.runner import measure_ceilings

    inp = BenchInput("photo", "test photo", "generated", probe(photo))
    runs, mechanism = measure_ceilings([inp], ["floor"], [1024, 512], runs=1, budget_s=60, infer_above_pass=True)
    assert mechanism in ("cgroup1", "cgroup2", "rss")
    assert [(r.memory_mb, r.ok, r.inferred_from_mb) for r in runs] == [(512, True, None), (1024, True, 512)]
    assert runs[0].cpu_ms and runs[0].cpu_ms > 0 and runs[0].peak_rss_mb and runs[0].peak_rss_mb < 512
    assert runs[1].cpu_ms == runs[0].cpu_ms


def test_every_benchmark_module_imports_in_a_fresh_interpreter() -> None:
    import subprocess
    import sys

    from benchmarks.workers import ROOT

    modules = [
        "benchmarks." + p.stem
        for p in sorted((ROOT / "benchmarks").glob("*.py"))
        if p.stem not in ("__init__", "__main__")
    ]
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    result = subprocess.run(
        [sys.executable, "-c", code, *modules],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'handlers'}", "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(modules) >= 12


def test_ceilings_past_the_time_budget_are_skipped_not_failed(photo: Path) -> None:
    from benchmarks.cost import SKIPPED
    from benchmarks.imaging import probe
    from benchmarks.inputs import BenchInput
    from benchmarks.runner import measure_ceilings

    inp = BenchInput("photo", "test photo", "generated", probe(photo))
    runs, _ = measure_ceilings([inp], ["floor"], [256, 512], runs=1, budget_s=0.0)
    assert [(r.memory_mb, r.ok, r.error_code) for r in runs] == [(256, False, SKIPPED), (512, False, SKIPPED)]
    assert all(not r.measured for r in runs)
