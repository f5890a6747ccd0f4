"""Suite-wide pytest configuration: shared paths and the corpora skip (an error in CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from common.paths import FIXTURES_DIR, ROOT, SHARED_CORPORA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def generated_fixtures() -> Path:
    """The deterministic corpus made by `make fixtures` (generated here if missing)."""
    out = FIXTURES_DIR / "generated"
    try:
        from fixtures.generate import generate
    except ImportError as exc:  # pragma: no cover - the generator is part of the repo
        pytest.fail(f"fixtures.generate is not importable: {exc}")
    generate(out)
    return out


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    """../shared/corpora (real images written by others); absent in a user's clone, so tests skip - but not in CI."""
    return require_corpora(SHARED_CORPORA, os.environ)


def in_ci(env: Mapping[str, str]) -> bool:
    return env.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_corpora(path: Path, env: Mapping[str, str]) -> Path:
    """`path` if it is a folder; else skip, or fail when CI=true (a CI run must not pass by skipping the corpora)."""
    if path.is_dir():
        return path
    where = f"shared corpora not found at {path}"
    if in_ci(env):
        pytest.fail(
            f"{where}: CI=true requires them (check them out next to the repository as ../shared/corpora)",
            pytrace=False,
        )
    pytest.skip(f"{where} (only present on the team's machines)")


def corpora_skip_is_an_error(skipped: bool, marked_corpora: bool, env: Mapping[str, str], present: bool) -> bool:
    """A `corpora` test skipped (by the fixture or its own pytest.skip) while CI=true and the corpora are absent."""
    return skipped and marked_corpora and in_ci(env) and not present


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI, turn the skip of a `corpora` test whose corpora are missing into a failure (no silent pass)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if corpora_skip_is_an_error(
        report.skipped, item.get_closest_marker("corpora") is not None, os.environ, SHARED_CORPORA.is_dir()
    ):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid}: skipped because {SHARED_CORPORA} is missing, but CI=true requires the shared corpora"
        )
