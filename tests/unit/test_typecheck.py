"""The code type-checks: mypy over harness/, handlers/, infra/, fixtures/ and benchmarks/ (config in pyproject)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.paths import ROOT


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
