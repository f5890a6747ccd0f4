"""Unit tests of the harness foundations: settings, wait_until, the emulator environment, docker-compose.yml."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from harness import emulator
from common.paths import ROOT
from harness.settings import HarnessSettings
from common.waiting import WaitTimeout, wait_until


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    default = HarnessSettings.from_env({})
    assert default.port == 4566 and default.endpoint == "http://127.0.0.1:4566"
    assert default.home == ROOT / ".harness"
    custom = HarnessSettings.from_env({"HARNESS_PORT": "4999", "HARNESS_HOME": str(tmp_path)})
    assert custom.endpoint == "http://127.0.0.1:4999" and custom.home == tmp_path


@pytest.mark.parametrize(
    "env, message",
    [
        ({"HARNESS_PORT": "abc"}, "Expected an integer for HARNESS_PORT but received 'abc'"),
        ({"HARNESS_PORT": "70000"}, "Expected a TCP port (1-65535) for HARNESS_PORT but received 70000"),
        ({"EMULATOR": "podman"}, "Expected 'embedded' or 'docker' for EMULATOR but received 'podman'"),
    ],
)
def test_settings_reject_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        HarnessSettings.from_env(env)
    assert str(info.value) == message


def test_wait_until_returns_the_truthy_value() -> None:
    calls = iter([None, 0, "", "done"])
    assert wait_until(lambda: next(calls), timeout=5, interval=0.001) == "done"


def test_wait_until_times_out_with_last_value() -> None:
    start = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: 0, timeout=0.2, interval=0.01, what="nothing")
    assert 0.2 <= time.monotonic() - start < 2.0
    assert "nothing" in str(info.value) and info.value.last == 0


def test_wait_until_can_ignore_exceptions() -> None:
    attempts = []

    def flaky() -> bool:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("not yet")
        return True

    assert wait_until(flaky, timeout=5, interval=0.001, ignore=(ConnectionError,))
    with pytest.raises(ConnectionError):
        wait_until(lambda: (_ for _ in ()).throw(ConnectionError("boom")), timeout=1)


def test_emulator_environment_keeps_everything_under_home(tmp_path: Path) -> None:
    settings = HarnessSettings(port=4999, home=tmp_path)
    env = emulator.emulator_environment(settings, base={"VIRTUAL_ENV": "/x", "PATH": "/usr/bin"})
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4999"
    assert env["GATEWAY_SERVER"] == "twisted"  # bound to loopback by our plugin: see test_lifecycle
    for key in ("FILESYSTEM_ROOT", "TMPDIR", "HOME", "HARNESS_HOME"):
        assert Path(env[key]).is_relative_to(tmp_path), key
    assert env["OVERRIDE_IN_DOCKER"] == "0" and env["DNS_ADDRESS"] == "0"
    assert env["LAMBDA_RUNTIME_EXECUTOR"] == "local-process"
    assert "VIRTUAL_ENV" not in env
    assert set(env["SERVICES"].split(",")) >= {"s3", "sqs", "lambda", "logs"}


def test_stop_without_emulator_is_harmless(tmp_path: Path) -> None:
    settings = HarnessSettings(port=1, home=tmp_path)
    assert emulator.stop(settings) == ["no emulator of ours was running"]


# ---- docker-compose.yml: validated as far as a machine without a Docker engine allows ---------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_pins_a_localstack_tag_that_starts_without_a_token(compose: dict) -> None:
    image = compose["services"]["localstack"]["image"]
    name, _, tag = image.partition(":")
    assert name == "localstack/localstack"
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", tag), f"tag must be pinned, got {tag!r}"
    assert tuple(int(p) for p in tag.split(".")[:2]) <= (4, 14), "images after 4.14 need LOCALSTACK_AUTH_TOKEN"


def test_compose_passes_token_mounts_docker_socket_and_binds_loopback(compose: dict) -> None:
    svc = compose["services"]["localstack"]
    env = svc["environment"]
    assert "LOCALSTACK_AUTH_TOKEN=${LOCALSTACK_AUTH_TOKEN:-}" in env
    assert any(v.startswith("/var/run/docker.sock:/var/run/docker.sock") for v in svc["volumes"])
    assert svc["ports"] == ["127.0.0.1:${HARNESS_PORT:-4566}:4566"]
    services = next(e for e in env if e.startswith("SERVICES=")).split("=", 1)[1].split(",")
    assert services == emulator.SERVICES.split(","), "docker and embedded modes must run the same services"
    assert "SQS_ENDPOINT_STRATEGY=path" in env
