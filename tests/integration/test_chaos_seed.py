"""Chaos on the seed replica (STACK_PROFILE=seed): the faults fire on its Node.js function as on ours, and the
accounting names what its design loses under them (batch-mates deleted without output, PNG stored as image/jpeg)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from harness import emulator as emu
from harness.chaos import scenarios
from harness.chaos.runners import run_scenario
from harness.chaos.session import ChaosSession, open_session
from harness.load.accounting import LOST_DELETED, WRONG_CONTENT_TYPE
from harness.settings import HarnessSettings
from infra.seed_artifact import build_seed, default_output, host_arch

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


@pytest.fixture(scope="module")
def seed_chaos(emulator: emu.EmulatorHandle, harness_settings: HarnessSettings) -> Iterator[ChaosSession]:
    if not default_output(host_arch()).exists():
        build_seed(host_arch())
    session = open_session(harness_settings, stack="chaos-seed-it", deploy_stack=True, profile="seed")
    assert session.target.flat and session.profile == "seed"
    with session:
        yield session


def test_a_runtime_killed_on_the_seed_loses_the_batch_mates(seed_chaos: ChaosSession) -> None:
    if seed_chaos.settings.emulator == "docker":
        pytest.skip("docker mode: the runtimes are the container's processes, not recorded in the host's HARNESS_HOME")
    result = run_scenario(seed_chaos, replace(scenarios.get("crash"), images=6, visibility_s=4))
    detail = result.to_dict()
    assert any(a.startswith("SIGKILL") for a in result.actions), detail  # the fault fired on the Node.js runtime
    assert result.proof is not None and result.proof.fault.met, detail
    causes = detail["verdict"]["causes"]
    assert not result.held and causes[LOST_DELETED] >= 1, detail
    assert causes[WRONG_CONTENT_TYPE] >= 1, detail  # the crash scenario uploads PNGs; the seed labels them JPEG


def test_an_s3_fault_on_the_seed_fires_on_its_thumbnail_writes(seed_chaos: ChaosSession) -> None:
    result = run_scenario(seed_chaos, replace(scenarios.get("output-denied"), images=3))
    detail = result.to_dict()
    assert result.faults_injected.get("AccessDenied", 0) >= 1, detail  # the seed's own PUTs, seen by the proxy
    # the seed throws, the whole batch is retried and dead-lettered as the raw S3 event: no reason, no code
    assert result.outcomes == {"REDRIVEN": 3}, detail
