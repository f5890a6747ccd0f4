"""Chaos scenarios without a test elsewhere, scaled down: throttling, 500s, denied writes, timeouts, visibility.

Each must prove itself: its fault fired (counted by the proxy, the logs or the action) and its consequence was seen;
a run where either is missing is FAILED whatever the invariant says.
"""

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
    session = open_session(harness_settings, stack="chaos-it", deploy_stack=True)
    with session:
        yield session


def test_s3_throttle_is_injected_and_retried_by_the_client(chaos: ChaosSession) -> None:
    result = run_scenario(chaos, replace(scenarios.get("s3-throttle"), images=6))
    detail = result.to_dict()
    assert result.evidence["injected:SlowDown"] > 0 and result.client_retries > 0, detail
    assert result.held and result.outcomes == {"OK": 6} and result.passed, detail


def test_s3_500_on_writes_is_injected_and_retried_by_the_client(chaos: ChaosSession) -> None:
    result = run_scenario(chaos, replace(scenarios.get("s3-500"), images=6))
    detail = result.to_dict()
    assert result.evidence["injected:InternalError"] > 0 and result.client_retries > 0, detail
    assert result.held and result.outcomes == {"OK": 6} and result.passed, detail
    assert not result.verdict.nonidentical, detail


def test_denied_writes_end_in_the_dlq_with_storage_error(chaos: ChaosSession) -> None:
    result = run_scenario(chaos, replace(scenarios.get("output-denied"), images=3, visibility_s=4))
    detail = result.to_dict()
    assert result.evidence["injected:AccessDenied"] > 0, detail
    assert result.outcomes == {"STORAGE_ERROR": 3} and result.verdict.unexpected == (), detail
    assert result.held and result.passed, detail


def test_a_stall_past_the_function_timeout_is_a_sandbox_timeout_and_a_redelivery(chaos: ChaosSession) -> None:
    result = run_scenario(chaos, replace(scenarios.get("timeout"), images=3))
    detail = result.to_dict()
    assert result.evidence["injected:delay"] >= 1, detail
    assert result.evidence["sandbox_timedout"] >= 1 and result.redeliveries >= 1, detail
    assert result.held and result.outcomes == {"OK": 3} and result.passed, detail


def test_visibility_shorter_than_processing_receives_a_message_twice_with_identical_outputs(
    chaos: ChaosSession,
) -> None:
    result = run_scenario(chaos, scenarios.get("visibility").scaled(0.1))  # 2 images, 8 s per source read
    detail = result.to_dict()
    assert result.evidence["overlapping_deliveries"] >= 1, detail
    assert result.held and not result.verdict.nonidentical and result.passed, detail
    assert result.outcomes == {"OK": 2} and result.duplicate_writes >= 1, detail  # every image thumbnailed, none DLQ
