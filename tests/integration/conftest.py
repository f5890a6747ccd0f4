"""Integration fixtures: one emulator per session (started or reused through the harness), boto3 clients."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from harness import emulator as emu
from harness.aws import client
from harness.settings import HarnessSettings


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
