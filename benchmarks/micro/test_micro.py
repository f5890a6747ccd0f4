"""Micro-benchmarks with pytest-benchmark: one in-process benchmark per variant x input (sequential, not interleaved).

These complement the interleaved side-by-side timing of benchmarks.runner (which gives the ratios): same job, same
inputs, pytest-benchmark's own statistics. Run through `make bench` (it writes the inputs file), or by hand:
    .venv/bin/python -m pytest benchmarks/micro --bench-inputs=<file> --benchmark-json=out.json -p no:cacheprovider
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from benchmarks.imaging import FloorJob, output_dims, probe
from thumbnailer.resizers import ResizeSpec, get_resizer

SPEC = ResizeSpec()


@cache
def _resizer(variant: str) -> Any:
    return get_resizer(variant, threads=1, cache=False) if variant == "vips" else get_resizer(variant)


def _job(variant: str, data: bytes) -> Callable[[], list[tuple[str, int, int]]]:
    if variant == "floor":
        floor = FloorJob(data, SPEC)
        return lambda: [(name, w, h) for name, w, h, _fmt, _data in floor.run()]
    resizer = _resizer(variant)

    def run() -> list[tuple[str, int, int]]:
        result = resizer.resize(bytes(bytearray(data)), SPEC)
        return [(t.name, t.width, t.height) for t in result.outputs]

    return run


def test_thumbnail_job(benchmark: Any, variant: str, bench_input: dict[str, Any], bench_rounds: int) -> None:
    # GIVEN one input loaded in memory and the variant's job prepared
    path = Path(bench_input["path"])
    data = path.read_bytes()
    job = _job(variant, data)
    benchmark.group = bench_input["id"]
    benchmark.extra_info.update(variant=variant, input=bench_input["id"], input_bytes=len(data))
    # WHEN it is timed by pytest-benchmark
    outputs = benchmark.pedantic(job, rounds=bench_rounds, warmup_rounds=1, iterations=1)
    # THEN every output has the dimensions the spec asks for (a broken job cannot be fast by accident)
    assert outputs == output_dims(probe(path), SPEC)


def test_inputs_were_given(request: pytest.FixtureRequest) -> None:
    if not request.config.getoption("--bench-inputs"):
        pytest.skip("no --bench-inputs file: run through `make bench` or pass one")
