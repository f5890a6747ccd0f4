"""pytest-benchmark options of the micro-benchmark suite (inputs file, variants, rounds); run by `make bench`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("thumbnail micro-benchmarks")
    group.addoption("--bench-inputs", default="", help="JSON file: [{id, path}] of inputs (written by benchmarks.run)")
    group.addoption("--bench-variants", default="pillow,vips,floor", help="comma-separated: pillow,vips,floor")
    group.addoption("--bench-rounds", type=int, default=5, help="timed rounds per benchmark (after 1 warm-up)")


def _inputs(config: pytest.Config) -> list[dict[str, Any]]:
    path = config.getoption("--bench-inputs")
    if not path:
        return []
    return list(json.loads(Path(path).read_text()))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bench_input" in metafunc.fixturenames:
        items = _inputs(metafunc.config)
        metafunc.parametrize("bench_input", items, ids=[i["id"] for i in items])
    if "variant" in metafunc.fixturenames:
        variants = [v for v in metafunc.config.getoption("--bench-variants").split(",") if v]
        metafunc.parametrize("variant", variants)


@pytest.fixture(scope="session")
def bench_rounds(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--bench-rounds"))
