"""Suite-wide pytest configuration: shared paths and the corpora skip."""

from __future__ import annotations

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
    """../shared/corpora (real images written by others); absent in a user's clone, so tests skip."""
    if not SHARED_CORPORA.is_dir():
        pytest.skip(f"shared corpora not found at {SHARED_CORPORA} (only present on the team's machines)")
    return SHARED_CORPORA
