"""The restart scenario: the emulator restarted mid-batch, uploads continuing; its persisted state keeps every upload
(before, during and after the restart) on its way to thumbnails or the DLQ."""

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
    if harness_settings.endpoint_override:
        pytest.skip("restarts the emulator this harness runs")
    if harness_settings.emulator == "docker":
        # the restart itself works in docker mode (test_persistence.py, test_target.py run there)
        pytest.skip("docker mode: the scenario proves the restart by the emulator's host pid, which a container lacks")
    session = open_session(harness_settings, stack="chaos-it", deploy_stack=True)
    with session:
        yield session


def test_restart_mid_batch_loses_nothing(chaos: ChaosSession) -> None:
    result = run_scenario(chaos, replace(scenarios.get("restart"), images=6))
    detail = result.to_dict()
    assert result.evidence["emulator_restarted"] == 1 and result.evidence["stack_restored"] == 1, detail
    assert result.evidence["uploads_after_restart"] >= 2, detail
    assert result.limitation is None and result.held, detail
    assert result.outcomes.get("OK") == result.uploads and result.uploads >= 6, detail
    assert result.passed, detail
