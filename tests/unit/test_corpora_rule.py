"""The corpora rule: a missing ../shared/corpora skips on a laptop and is an error when CI=true."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import corpora_skip_is_an_error, require_corpora


def test_present_corpora_are_returned(tmp_path: Path) -> None:
    assert require_corpora(tmp_path, {"CI": "true"}) == tmp_path


def test_missing_corpora_skip_outside_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception, match="shared corpora not found"):
        require_corpora(tmp_path / "absent", {})


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_missing_corpora_fail_in_ci(tmp_path: Path, value: str) -> None:
    with pytest.raises(pytest.fail.Exception, match="CI=true requires them"):
        require_corpora(tmp_path / "absent", {"CI": value})


def test_a_skipped_corpora_test_is_an_error_only_in_ci_with_the_corpora_missing() -> None:
    ci = {"CI": "true"}
    assert corpora_skip_is_an_error(True, True, ci, present=False)
    assert not corpora_skip_is_an_error(True, True, {}, present=False)  # a user's clone: skipping is fine
    assert not corpora_skip_is_an_error(True, True, ci, present=True)  # skipped for another reason
    assert not corpora_skip_is_an_error(True, False, ci, present=False)  # not a corpora test
    assert not corpora_skip_is_an_error(False, True, ci, present=False)  # it did not skip
