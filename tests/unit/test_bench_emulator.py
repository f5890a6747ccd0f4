"""The emulator bench's arithmetic (benchmarks/emulator/arith.py) and the lean path's settings agreeing across venvs."""

from __future__ import annotations

import pytest

from benchmarks.emulator.arith import Sample, paired_ratios, per_call_ms, summarize, targets
from harness import emulator
from harness.executor.local_executor import lean


def test_per_call_ms_divides_the_cpu_delta() -> None:
    assert per_call_ms(10.0, 10.5, 50) == pytest.approx(10.0)
    assert per_call_ms(10.0, 9.0, 10) == 0.0  # a clock going back is no negative cost
    with pytest.raises(ValueError, match="positive call count"):
        per_call_ms(0.0, 1.0, 0)


def _s(side: str, op: str, rnd: int, ms: float, calls: int = 100) -> Sample:
    return Sample(side, op, rnd, calls, ms * calls / 1000, 1.0)


def test_ratios_are_paired_per_round_then_the_median() -> None:
    # round 1 is slowed for both sides (a neighbour): the paired ratio stays 0.5, a ratio of medians would not
    samples = [
        _s("before", "sqs_send", 0, 10),
        _s("after", "sqs_send", 0, 5),
        _s("before", "sqs_send", 1, 40),
        _s("after", "sqs_send", 1, 20),
        _s("before", "sqs_send", 2, 12),
        _s("after", "sqs_send", 2, 6),
        _s("after", "sqs_send", 3, 99),
    ]
    assert paired_ratios(samples, "sqs_send", "after", "before") == pytest.approx([0.5, 0.5, 0.5])
    table = summarize(samples, ["before", "after"], ["sqs_send"])
    row = table["sqs_send"]
    assert row["after_over_before"] == pytest.approx(0.5)
    assert row["ms"]["before"] == pytest.approx(12)
    assert row["ms"]["after"] == pytest.approx(13)  # median of 5, 20, 6, 99
    assert row["range"]["after"] == pytest.approx([5, 99])
    assert row["after_over_ministack"] is None


def test_targets_give_value_and_verdict() -> None:
    samples = [_s("before", "per_image", 0, 120, 10), _s("after", "per_image", 0, 50, 10)]
    for op, after in (("s3_get", 3.0), ("sqs_send", 2.0), ("sqs_receive_delete", 6.0)):
        samples += [_s("after", op, 0, after), _s("ministack", op, 0, 2.0)]
    table = summarize(
        samples, ["before", "after", "ministack"], ["s3_get", "sqs_send", "sqs_receive_delete", "per_image"]
    )
    verdicts = {t["name"].split(" ")[0]: (t["value"], t["verdict"]) for t in targets(table)}
    assert verdicts["emulator"] == (pytest.approx(50 / 120), "met")
    assert verdicts["s3_get"] == (pytest.approx(1.5), "met")
    assert verdicts["sqs_send"] == (pytest.approx(1.0), "met")
    assert verdicts["sqs_receive_delete"] == (pytest.approx(3.0), "missed")
    assert targets({})[0]["verdict"] == "not measured"


def test_lean_settings_are_spelled_the_same_in_the_harness_and_the_plugin() -> None:
    assert emulator.LEAN_ENV == lean.ENVIRONMENT


@pytest.mark.parametrize("knob", ["0", "off", "false"])
def test_lean_off_gives_localstack_defaults(knob: str) -> None:
    assert emulator.lean_environment({"HARNESS_LEAN": knob}) == {}
    assert lean.environment({"HARNESS_LEAN": knob}) == {}
    assert not lean.enabled({"HARNESS_LEAN": knob})


def test_lean_on_sets_its_variables_and_a_set_variable_wins() -> None:
    assert emulator.lean_environment({"HARNESS_LEAN": "1"}) == emulator.LEAN_ENV
    assert emulator.LEAN_DEFAULT == lean.LEAN_DEFAULT
    assert emulator.lean_environment({"HARNESS_LEAN": "1", "IN_MEMORY_CLIENT": "0"}) == {
        "SQS_DISABLE_CLOUDWATCH_METRICS": "1"
    }
    assert lean.environment({"HARNESS_LEAN": "1", "IN_MEMORY_CLIENT": "0"}) == {"SQS_DISABLE_CLOUDWATCH_METRICS": "1"}
    env = emulator.emulator_environment(
        emulator.HarnessSettings.from_env({"HARNESS_PORT": "4999"}), base={"HARNESS_LEAN": "1"}
    )
    assert env["SQS_DISABLE_CLOUDWATCH_METRICS"] == "1"
