"""Integration fixtures: one emulator per session (started or reused through the harness), boto3 clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness import emulator as emu
from harness.aws import client
from harness.settings import HarnessSettings
from infra.deploy.outputs import StackOutputs


@pytest.fixture(scope="session")
def harness_settings() -> HarnessSettings:
    return HarnessSettings.from_env()


@pytest.fixture(scope="session")
def emulator(harness_settings: HarnessSettings) -> Iterator[emu.EmulatorHandle]:
    """The running emulator: reused if `make up` started it, else started here and stopped at the end."""
    try:
        handle = emu.ensure_running(harness_settings)
    except emu.EmulatorError as exc:
        pytest.fail(f"cannot start or reach the emulator: {exc}")
    yield handle
    if handle.started_here:
        emu.stop(harness_settings)


@pytest.fixture(scope="session")
def aws(emulator: emu.EmulatorHandle, harness_settings: HarnessSettings) -> Callable[..., Any]:
    """Factory of boto3 clients bound to the emulator: aws("s3"), aws("lambda"), ..."""

    def make(service: str, **kwargs: Any) -> Any:
        return client(service, harness_settings, **kwargs)

    return make


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # every test in this folder needs the emulator
    for item in items:
        if "tests/integration/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.emulator)


# ---- pipeline stack fixture (issue 3, infra) -------------------------------------------------------------------


@pytest.fixture(scope="session")
def pipeline(emulator: emu.EmulatorHandle, harness_settings: HarnessSettings) -> Iterator[StackOutputs]:
    """The default stack `thumbs` on the emulator, deployed (or brought up to date) once per session.

    Yields its outputs (infra.deploy.outputs.StackOutputs: input_bucket, output_bucket, queue_url, queue_arn, dlq_url,
    dlq_arn, function_name, stack_name, ...; the same value as $HARNESS_HOME/outputs/thumbs.json). Destroyed at the
    end only if this session created it: a stack that `make up` deployed stays.
    """
    from harness.deployment import emulator_stack, outputs_file
    from infra.deploy.apply import deploy
    from infra.deploy.destroy import destroy

    stack, clients = emulator_stack(harness_settings, "thumbs", "default")
    report = deploy(stack, clients, outputs_path=outputs_file(harness_settings, stack.name))
    created_here = any(change.startswith(f"created function {stack.function.name}") for change in report.changes)
    assert report.outputs is not None
    yield report.outputs
    if created_here:
        destroy(stack, clients)
        outputs_file(harness_settings, stack.name).unlink(missing_ok=True)
