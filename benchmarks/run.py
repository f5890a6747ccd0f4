"""`python -m benchmarks`: run every measurement, model Lambda sizing, write results/<timestamp>/ and results/latest."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.paths import RESULTS_DIR
from infra.pricing import PRICE_TABLE_DATE, PRICE_TABLE_SOURCE

from . import cost
from .errors import BenchError
from .inputs import BenchInput, discover
from .report import BACKENDS, evaluate_targets, readme_section, render_markdown
from .runner import (
    TimingResult,
    aligned,
    measure_ceilings,
    measure_fresh_rss,
    measure_quality,
    measure_timing,
    median_phases,
)
from .stats import ratio, summarize
from .workers import ALL_VARIANTS, ROOT, sharp_status, worker_env

SIZING_INPUTS = ("jpeg-12mp", "jpeg-24mp", "jpeg-12mp-progressive", "png-rgba")
QUICK_TIMED_INPUTS = ("jpeg-12mp", "jpeg-24mp")
MICRO_INPUTS = ("jpeg-12mp", "jpeg-24mp", "jpeg-12mp-progressive", "jpeg-orientation6")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Everything one run does; `quick` trims inputs, rounds and ceilings to stay under 2 minutes."""

    mode: str
    rounds: int
    min_rounds: int
    warmup: int
    timing_budget_s: float
    rss_budget_s: float
    ceilings_mb: tuple[int, ...]
    ceiling_backends: tuple[str, ...]
    ceiling_runs: int
    ceiling_budget_s: float
    ceiling_infer_above_pass: bool
    ceiling_measure_top: bool
    micro_rounds: int
    micro_budget_s: float
    latency_target_ms: float
    latency_inputs: tuple[str, ...]
    cost_input: str
    images_per_invocation: int
    cpu_speed_factor: float
    io_wait_ms: float
    seed: int
    ratio_basis: str = "cpu"
    variants: tuple[str, ...] = ALL_VARIANTS
    only_inputs: tuple[str, ...] = ()

    @classmethod
    def preset(cls, quick: bool, **overrides: Any) -> BenchConfig:
        base: dict[str, Any] = dict(
            mode="quick" if quick else "full",
            rounds=8 if quick else 30,
            min_rounds=3 if quick else 7,
            warmup=1 if quick else 2,
            timing_budget_s=30.0 if quick else 170.0,
            rss_budget_s=15.0 if quick else 80.0,
            ceilings_mb=(128, 512, 1769) if quick else cost.DEFAULT_CEILINGS_MB,
            ceiling_backends=BACKENDS if quick else (*BACKENDS, "sharp"),
            ceiling_runs=1 if quick else 3,
            ceiling_budget_s=20.0 if quick else 100.0,
            ceiling_infer_above_pass=quick,
            ceiling_measure_top=False,
            micro_rounds=3 if quick else 5,
            micro_budget_s=30.0 if quick else 75.0,
            latency_target_ms=1000.0,
            latency_inputs=("jpeg-12mp", "jpeg-24mp"),
            cost_input="jpeg-12mp",
            images_per_invocation=1,
            cpu_speed_factor=1.0,
            io_wait_ms=0.0,
            seed=5,
        )
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib: float | str = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = "AVX2" if " avx2" in text else ("SSE4.2" if "sse4_2" in text else "")
    except OSError:
        pass
    return {
        "cpu_model": cpu + (f" ({flags})" if flags else ""),
        "cpus": os.cpu_count(),
        "mem_gib": mem_gib,
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _say(msg: str) -> None:
    print(msg, flush=True)


def timing_section(
    inputs: Sequence[BenchInput], cfg: BenchConfig, out_dir: Path
) -> tuple[dict[str, Any], TimingResult]:
    tr = measure_timing(
        inputs,
        cfg.variants,
        rounds=cfg.rounds,
        min_rounds=cfg.min_rounds,
        warmup=cfg.warmup,
        budget_s=cfg.timing_budget_s,
        seed=cfg.seed,
        save_dir=out_dir / "outputs",
        progress=_say,
    )
    rows = []
    for inp in inputs:
        for v in cfg.variants:
            ps = tr.samples.get((v, inp.id))
            if ps is None:
                continue
            row: dict[str, Any] = {"variant": v, "input": inp.id}
            if ps.wall_ms:
                row.update(
                    ok=True,
                    wall_ms=summarize(ps.wall_ms).to_dict(),
                    cpu_ms=summarize(ps.cpu_ms).to_dict(),
                    samples_wall_ms=[round(x, 3) for x in ps.wall_ms],
                    rounds=ps.rounds,
                    out_bytes={o["name"]: o["bytes"] for o in ps.outputs},
                    out_dims={o["name"]: [o["width"], o["height"]] for o in ps.outputs},
                    out_format=ps.outputs[0]["format"] if ps.outputs else None,
                    phases=median_phases(ps),
                )
            else:
                row.update(ok=False)
            if ps.error:
                row["error"] = ps.error
                row["ok"] = False  # a pair that failed once is excluded: its partial samples are not compared
            rows.append(row)
    ratios = []
    for inp in inputs:
        for v in cfg.variants:
            a = tr.samples.get((v, inp.id))
            if a is None or not a.wall_ms or a.error:
                continue
            for ref in ("sharp", "floor"):
                b = tr.samples.get((ref, inp.id))
                if ref == v or b is None or not b.wall_ms or b.error:
                    continue
                for basis in ("cpu", "wall"):
                    xs, ys = aligned(a, b, basis)
                    if xs:
                        ratios.append(
                            {"variant": v, "input": inp.id, "vs": ref, "basis": basis, **ratio(xs, ys).to_dict()}
                        )
    timing = {
        "rounds_done": tr.rounds_done,
        "warmup": tr.warmup,
        "seconds": round(tr.seconds, 1),
        "results": rows,
        "skipped_variants": tr.skipped_variants,
        "long_lived_hwm_mb": {v: (round(k / 1024, 1) if k else None) for v, k in tr.long_lived_hwm_kb.items()},
    }
    return {"timing": timing, "ratios": ratios, "versions": tr.versions}, tr


def micro_section(inputs: Sequence[BenchInput], cfg: BenchConfig, out_dir: Path) -> dict[str, Any]:
    """pytest-benchmark over the Python variants, in a subprocess with the same single-thread environment."""
    inputs_file = out_dir / "micro-inputs.json"
    # the JPEG roles only (the PNG alone would take as long as all of them): a cross-check, not the main numbers
    chosen = [i for i in inputs if i.id in MICRO_INPUTS][: 1 if cfg.mode == "quick" else None] or list(inputs)[:1]
    inputs_file.write_text(json.dumps([{"id": i.id, "path": str(i.path)} for i in chosen], indent=1))
    json_out = out_dir / "pytest-benchmark.json"
    variants = ",".join(v for v in cfg.variants if v in ("pillow", "vips", "floor"))
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "benchmarks" / "micro"),
        "-q",
        "-p",
        "no:cacheprovider",
        f"--bench-inputs={inputs_file}",
        f"--bench-variants={variants}",
        f"--bench-rounds={cfg.micro_rounds}",
        f"--benchmark-json={json_out}",
        "--benchmark-columns=median,min,max,rounds",
        "--benchmark-sort=name",
        "-o",
        "testpaths=benchmarks/micro",
    ]
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=worker_env(), capture_output=True, text=True, timeout=cfg.micro_budget_s
        )
    except subprocess.TimeoutExpired:
        return {"skipped": f"pytest-benchmark did not finish within its {cfg.micro_budget_s:.0f} s budget"}
    (out_dir / "pytest-benchmark.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not json_out.exists():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        return {
            "skipped": f"pytest-benchmark exited {proc.returncode}: {' | '.join(tail)}",
            "log": "pytest-benchmark.txt",
        }
    data = json.loads(json_out.read_text())
    rows = []
    for b in data.get("benchmarks", []):
        st, extra = b["stats"], b.get("extra_info", {})
        rows.append(
            {
                "variant": extra.get("variant"),
                "input": extra.get("input"),
                "median_ms": st["median"] * 1000,
                "min_ms": st["min"] * 1000,
                "max_ms": st["max"] * 1000,
                "rounds": st["rounds"],
            }
        )
    return {"rows": rows, "json": "pytest-benchmark.json", "log": "pytest-benchmark.txt"}


def sizing_section(inputs: Sequence[BenchInput], cfg: BenchConfig) -> dict[str, Any]:
    ids = {i.id for i in inputs}
    sizing_inputs = [i for i in inputs if i.id in SIZING_INPUTS] or list(inputs)[:2]
    backends = tuple(b for b in cfg.ceiling_backends if b in cfg.variants)
    ok_sharp, _ = sharp_status()
    if not ok_sharp:
        backends = tuple(b for b in backends if b != "sharp")
    runs, mechanism = measure_ceilings(
        sizing_inputs,
        backends,
        cfg.ceilings_mb,
        runs=cfg.ceiling_runs,
        budget_s=cfg.ceiling_budget_s,
        infer_above_pass=cfg.ceiling_infer_above_pass,
        measure_top=cfg.ceiling_measure_top,
        progress=_say,
    )
    rows = cost.model_rows(
        runs,
        cpu_speed_factor=cfg.cpu_speed_factor,
        images_per_invocation=cfg.images_per_invocation,
        io_wait_ms=cfg.io_wait_ms,
    )
    latency_inputs = [i for i in cfg.latency_inputs if i in ids]
    cost_input = cfg.cost_input if cfg.cost_input in ids else sizing_inputs[0].id
    required = [i.id for i in sizing_inputs]
    recs = [
        cost.recommend(
            rows,
            backend=b,
            arch=a,
            latency_target_ms=cfg.latency_target_ms,
            latency_inputs=latency_inputs or [cost_input],
            cost_input=cost_input,
            required_inputs=required,
        ).to_dict()
        for b in backends
        for a in cost.PRICES
    ]
    return {
        "mechanism": mechanism,
        "runs": cfg.ceiling_runs,
        "ceilings_mb": list(cfg.ceilings_mb),
        "inputs": required,
        "ceilings": [asdict(r) for r in runs],
        "rows": [r.to_dict() for r in rows],
        "latency_target_ms": cfg.latency_target_ms,
        "latency_inputs": latency_inputs or [cost_input],
        "cost_input": cost_input,
        "recommendations": recs,
        "model": {
            "full_vcpu_mb": cost.FULL_VCPU_MB,
            "images_per_invocation": cfg.images_per_invocation,
            "cpu_speed_factor": cfg.cpu_speed_factor,
            "io_wait_ms": cfg.io_wait_ms,
            "cost_tie_tolerance": cost.COST_TIE_TOLERANCE,
            "price_table_date": PRICE_TABLE_DATE,
            "price_table_source": PRICE_TABLE_SOURCE,
            "prices": cost.price_table_rows(),
        },
    }


def update_latest(out_dir: Path) -> Path:
    """results/latest -> the newest run (a symlink; a copy where symlinks are not possible)."""
    latest = out_dir.parent / "latest"
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.is_dir():
        shutil.rmtree(latest)
    try:
        latest.symlink_to(out_dir.name, target_is_directory=True)
    except OSError:
        shutil.copytree(out_dir, latest)
    return latest


def run(cfg: BenchConfig, results_root: Path = RESULTS_DIR) -> Path:
    t0 = time.monotonic()
    started = dt.datetime.now(dt.UTC)
    out_dir = results_root / started.strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    inputs, input_notes = discover(quick=cfg.mode == "quick", only=cfg.only_inputs or None)
    notes += input_notes
    ok_sharp, why = sharp_status()
    if "sharp" in cfg.variants and not ok_sharp:
        notes.append(why)
        _say(why)
    _say(f"benchmark ({cfg.mode}) -> {out_dir}")
    _say(f"inputs: {', '.join(i.id for i in inputs)}")
    results: dict[str, Any] = {
        "schema": 1,
        "started_at": started.isoformat(timespec="seconds"),
        "config": {
            **asdict(cfg),
            "job": "1024x1024 and 256x256 'inside' boxes, "
            "EXIF orientation applied, metadata stripped, JPEG q80 4:2:0 baseline "
            "optimised Huffman (WebP q80 effort 4 for alpha), one thread",
        },
        "machine": machine_info(),
        "inputs": [i.to_dict() for i in inputs],
    }
    _say("[1/5] interleaved timing")
    # quick mode times the two JPEGs the product targets name; the RGBA PNG only goes under the memory ceilings
    timed = [i for i in inputs if cfg.mode != "quick" or i.id in QUICK_TIMED_INPUTS] or list(inputs)
    timing, tr = timing_section(timed, cfg, out_dir)
    results.update(timing)
    if "sharp" in results["timing"]["skipped_variants"] and ok_sharp:
        notes.append("sharp reference failed to start: " + results["timing"]["skipped_variants"]["sharp"])
    _say("[2/5] quality (PSNR/SSIM of the largest output)")
    results["quality"] = measure_quality(timed, tr, progress=_say)
    _say("[3/5] peak RSS, fresh process per variant x input")
    rss_variants = [v for v in cfg.variants if v not in results["timing"]["skipped_variants"]]
    results["rss"] = measure_fresh_rss(timed, rss_variants, budget_s=cfg.rss_budget_s, progress=_say)
    _say("[4/5] memory ceilings and Lambda sizing")
    try:
        results["sizing"] = sizing_section(inputs, cfg)
    except BenchError as exc:
        results["sizing"] = {"error": exc.to_dict()}
        notes.append(f"memory ceilings not measured: {exc}")
    _say("[5/5] pytest-benchmark micro-benchmarks")
    results["micro"] = micro_section(inputs, cfg, out_dir)
    results["targets"] = evaluate_targets(results, basis=cfg.ratio_basis)
    results["machine"]["loadavg_end"] = _loadavg()
    results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results["seconds"] = round(time.monotonic() - t0, 1)
    results["notes"] = notes
    try:
        from .charts import write_charts

        results["charts"] = write_charts(results, out_dir)
    except Exception as exc:  # a chart failure must not lose the measurements
        notes.append(f"charts not written: {type(exc).__name__}: {exc}")
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out_dir / "summary.md").write_text(render_markdown(results))
    update_latest(out_dir)
    return out_dir


def parse_args(argv: Sequence[str]) -> tuple[BenchConfig, Path]:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="3 inputs, fewer rounds and ceilings (< 2 min)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="results root (default benchmarks/results)")
    p.add_argument("--rounds", type=int, help="interleaved timing rounds")
    p.add_argument("--latency-target-ms", type=float, help="modeled per-image latency target for the recommendation")
    p.add_argument("--latency-inputs", help="comma-separated input ids the latency target applies to")
    p.add_argument("--cost-input", help="input id whose cost is minimised")
    p.add_argument("--images-per-invocation", type=int, help="images one invocation handles (SQS batch); default 1")
    p.add_argument("--cpu-speed-factor", type=float, help="local core speed / Lambda core speed (model; default 1)")
    p.add_argument(
        "--io-wait-ms",
        type=float,
        help="modeled non-CPU wait per image added to every Lambda duration (S3 GET+PUT); default 0",
    )
    p.add_argument("--ceilings", help="comma-separated memory ceilings in MB")
    p.add_argument("--variants", help=f"comma-separated subset of {','.join(ALL_VARIANTS)}")
    p.add_argument("--inputs", help="comma-separated input ids (default: all discovered)")
    p.add_argument("--seed", type=int, help="shuffle seed")
    p.add_argument(
        "--readme-section",
        action="store_true",
        help="print the dated README section of results/latest (or --out's latest) and exit",
    )
    p.add_argument(
        "--ratio-basis",
        choices=("cpu", "wall"),
        help="what the headline table and targets compare: CPU ms (default; robust on a shared machine, "
        "the job is single-threaded) or wall ms",
    )
    a = p.parse_args(list(argv))

    def csv(text: str | None) -> tuple[str, ...] | None:
        return None if text is None else tuple(x.strip() for x in text.split(",") if x.strip())

    ceilings = csv(a.ceilings)
    try:
        ceilings_mb = tuple(sorted({int(c) for c in ceilings})) if ceilings else None
        for c in ceilings_mb or ():
            cost.cpu_share(c)  # validates 128..10240
    except (ValueError, BenchError):
        p.error(f"Expected comma-separated integers 128..10240 for --ceilings but received {a.ceilings!r}")
    cfg = BenchConfig.preset(
        a.quick,
        rounds=a.rounds,
        latency_target_ms=a.latency_target_ms,
        latency_inputs=csv(a.latency_inputs),
        cost_input=a.cost_input,
        images_per_invocation=a.images_per_invocation,
        cpu_speed_factor=a.cpu_speed_factor,
        io_wait_ms=a.io_wait_ms,
        ceilings_mb=ceilings_mb,
        variants=csv(a.variants),
        only_inputs=csv(a.inputs),
        seed=a.seed,
        ratio_basis=a.ratio_basis,
    )
    if cfg.rounds < cfg.min_rounds:
        cfg = BenchConfig.preset(a.quick, **{**asdict(cfg), "min_rounds": cfg.rounds})
    bad = [v for v in cfg.variants if v not in ALL_VARIANTS]
    if bad:
        p.error(f"Expected variants from {','.join(ALL_VARIANTS)} but received {','.join(bad)}")
    return cfg, a.out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cfg, out = parse_args(args)
    if "--readme-section" in args:
        latest = out / "latest" / "results.json"
        if not latest.exists():
            print(f"no results yet: {latest} is missing (run make bench)", file=sys.stderr)
            return 2
        print(readme_section(json.loads(latest.read_text())))
        return 0
    try:
        out_dir = run(cfg, out)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    print(f"\nwrote {out_dir}/summary.md (and results.json, charts/); latest -> {out_dir.name}")
    print((out_dir / "summary.md").read_text().split("## Product targets")[0].split("## Summary", 1)[-1])
    return 0
