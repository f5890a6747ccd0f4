"""The side-by-side chaos report (`make chaos-compare`) and the chaos CLI's stack profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.chaos import cli, compare
from harness.chaos.errors import ChaosError


def _result(name: str, status: str, outcomes: dict[str, int], lost: int, causes: dict[str, int]) -> dict[str, Any]:
    return {
        "name": name,
        "uploads": sum(outcomes.values()),
        "status": status,
        "outcomes": outcomes,
        "proof": {"fault": {"met": True, "counter": "c", "observed": 1, "required": 1}},
        "verdict": {"lost_count": lost, "causes": causes},
    }


def _write(root: Path, stamp: str, stack: str, results: list[dict[str, Any]]) -> None:
    folder = root / f"chaos-{stamp}"
    folder.mkdir(parents=True)
    doc = {"stack": stack, "wall_s": 12.0, "endpoint": "http://127.0.0.1:1", "scenarios": results}
    (folder / "report.json").write_text(json.dumps(doc))


def test_compare_puts_both_stacks_of_each_scenario_side_by_side_from_the_newest_reports(tmp_path: Path) -> None:
    seed, ours = tmp_path / "seed", tmp_path / "ours"
    _write(seed, "20260101T000000", "old", [])  # older: ignored
    _write(
        seed,
        "20261203T100000",
        "chaos-seed",
        [_result("crash", "FAILED (lost uploads)", {"complete": 2, "MISSING": 7}, 7, {"lost_deleted": 7, "x": 0})],
    )
    _write(ours, "20261203T101000", "chaos", [_result("crash", "PASSED", {"complete": 9}, 0, {})])

    assert compare.main([str(seed), str(ours), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "compare.md").read_text()

    assert "stack `chaos-seed`" in text and "Lost in all: seed replica 7, ours 0" in text
    lines = [line for line in text.splitlines() if line.startswith("| crash")]
    assert lines == [
        "| crash | 9 | seed replica | FAILED (lost uploads) | yes | complete 2, MISSING 7 | 7 | lost_deleted 7 |",
        "| crash | 9 | ours | PASSED | yes | complete 9 | 0 | - |",
    ]


def test_a_scenario_run_on_one_stack_only_says_not_run_for_the_other() -> None:
    table = compare.rows([_result("poison", "PASSED", {"complete": 1}, 0, {})], [])
    assert table[1] == ("poison", "-", "ours", "not run", "-", "-", "-", "-")


def test_compare_without_a_report_fails_with_a_code(tmp_path: Path) -> None:
    with pytest.raises(ChaosError) as err:
        compare.latest_report(tmp_path)
    assert err.value.code == "NO_CHAOS_REPORT"
    assert compare.main([str(tmp_path), str(tmp_path), "--out", str(tmp_path / "o")]) == 2


@pytest.mark.parametrize(
    ("argv", "stack", "profile"),
    [
        (["crash"], None, "default"),
        (["crash", "--stack-profile", "seed"], None, "seed"),
        (["crash", "--stack-profile", "seed", "--stack", "mine"], "mine", "seed"),
    ],
)
def test_the_chaos_cli_takes_a_stack_profile(argv: list[str], stack: str | None, profile: str) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    assert (args.stack, args.stack_profile) == (stack, profile)
    with pytest.raises(SystemExit):
        parser.parse_args(["crash", "--stack-profile", "sead"])
