"""Chaos scenarios, scaled down: poison, a retryable S3 fault, a SIGKILL mid-batch, redrive after the fix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from harness import emulator as emu
from harness.chaos import scenarios
from harness.chaos.runners import run_scenario
from harness.chaos.session import ChaosSession, open_session
from harness.settings import HarnessSettings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


@pytest.fixture(scope="module")
def chaos(emulator: emu.EmulatorHandle, harness_settings: HarnessSettings) -> Iterator[ChaosSession]:
    """A dedicated stack with the fault proxy in its function's S3 path (restored when the module ends)."""
    session = open_session(harness_settings, stack="chaos-it", deploy_stack=True)
    with session:
        yield session


def test_poison_is_dead_lettered_with_its_code_at_once_and_valid_images_complete(chaos: ChaosSession) -> None:
    scenario = replace(scenarios.get("poison"), images=2, poison=("corrupt", "bomb", "not_image"))
    result = run_scenario(chaos, scenario)
    detail = result.to_dict()
    assert result.held, detail
    assert result.verdict.unexpected == (), detail
    # each poison upload ended in the DLQ with one of its kind's codes (checked per upload by `unexpected`)
    assert result.outcomes["OK"] == 2 and result.outcomes["TOO_MANY_PIXELS"] == 1, detail
    assert sum(result.outcomes.values()) == 5 and "MISSING" not in result.outcomes, detail
    assert result.observed_uploads == 5, detail  # every upload read through the proxy, so deliveries are counted
    assert result.poison_redeliveries == 0, detail  # permanent errors are not retried
    assert result.passed and result.evidence["poison_dlq_first_receive"] == 3, detail


def test_retryable_s3_fault_is_redelivered_by_sqs_then_completes(chaos: ChaosSession) -> None:
    scenario = replace(scenarios.get("retryable"), images=3, visibility_s=4)
    result = run_scenario(chaos, scenario)
    detail = result.to_dict()
    assert result.held and result.outcomes == {"OK": 3}, detail
    assert result.faults_injected.get("InternalError", 0) >= 3, detail
    assert result.redeliveries >= 3, detail  # each upload's first delivery failed; a later one completed
    assert result.passed, detail


def test_runtime_killed_mid_batch_is_redelivered_with_identical_outputs(chaos: ChaosSession) -> None:
    if chaos.settings.emulator == "docker":
        pytest.skip("docker mode: the runtimes are the container's processes, not recorded in the host's HARNESS_HOME")
    scenario = replace(scenarios.get("crash"), images=6, visibility_s=4)
    result = run_scenario(chaos, scenario)
    detail = result.to_dict()
    assert any(a.startswith("SIGKILL") for a in result.actions), detail
    assert result.held and result.outcomes == {"OK": 6}, detail
    assert result.redeliveries >= 1, detail
    assert result.duplicate_writes >= 1 and not result.verdict.nonidentical, detail  # rewritten, byte-identical
    assert result.passed and result.evidence["runtime_killed"] >= 1, detail


def test_redrive_after_the_fix_completes_what_was_dead_lettered(chaos: ChaosSession) -> None:
    scenario = replace(scenarios.get("fix-redrive"), images=3)
    result = run_scenario(chaos, scenario)
    detail = result.to_dict()
    assert result.redrive is not None and result.redrive["moved"] == 3, detail
    by_code = result.redrive["by_code"]
    # non-empty and every moved message counted: a subset check alone would pass on an empty result
    assert by_code and sum(by_code.values()) == 3, detail
    assert set(by_code) <= {"ACCESS_DENIED", "STORAGE_ERROR"}, detail  # a denied write: retryable
    assert result.held and result.outcomes == {"OK": 3}, detail
    assert result.passed, detail
