"""Unit tests of the harness foundations: settings, wait_until, the emulator environment, docker-compose.yml, CLIs."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from common.errors import CodedError
from common.paths import ROOT
from common.waiting import WaitTimeout, wait_until
from harness import cli, emulator
from harness.chaos import cli as chaos_cli
from harness.settings import HarnessSettings


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
    with pytest.raises(CodedError) as info:
        HarnessSettings.from_env(env)
    assert info.value.message == message
    assert info.value.code == "SETTINGS_INVALID" and str(info.value) == f"SETTINGS_INVALID: {message}"


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


# ---- docker-compose.yml, the opt-in `upstream` profile: not run here (no registry), checked statically --------------
# (our own image's service: tests/unit/test_docker_compose.py)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_pins_a_localstack_tag_that_starts_without_a_token(compose: dict) -> None:
    image = compose["services"]["localstack-upstream"]["image"]
    name, _, tag = image.partition(":")
    assert name == "localstack/localstack"
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", tag), f"tag must be pinned, got {tag!r}"
    assert tuple(int(p) for p in tag.split(".")[:2]) <= (4, 14), "images after 4.14 need LOCALSTACK_AUTH_TOKEN"


def test_compose_passes_token_mounts_docker_socket_and_binds_loopback(compose: dict) -> None:
    svc = compose["services"]["localstack-upstream"]
    env = svc["environment"]
    assert "LOCALSTACK_AUTH_TOKEN=${LOCALSTACK_AUTH_TOKEN:-}" in env
    assert any(v.startswith("/var/run/docker.sock:/var/run/docker.sock") for v in svc["volumes"])
    assert svc["ports"] == ["127.0.0.1:${HARNESS_PORT:-4566}:4566"]
    services = next(e for e in env if e.startswith("SERVICES=")).split("=", 1)[1].split(",")
    assert services == emulator.SERVICES.split(","), "docker and embedded modes must run the same services"
    assert "SQS_ENDPOINT_STRATEGY=path" in env


# ---- the command lines: a coded error is `error CODE: message` and exit 2; anything else is a bug --------------


def test_harness_cli_registers_every_part_by_plain_imports() -> None:
    parser = cli.build_parser()
    for argv in (["chaos", "list"], ["load", "--list"], ["stack", "lint"], ["lint"], ["down"]):
        assert callable(parser.parse_args(argv).func), argv


def test_a_coded_error_is_reported_on_stderr_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a port that is not a number
    monkeypatch.setenv("HARNESS_PORT", "abc")
    # WHEN any command reads the settings
    code = cli.main(["down"])
    # THEN: exit 2, the code and the message on stderr, nothing on stdout
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == "error SETTINGS_INVALID: Expected an integer for HARNESS_PORT but received 'abc'\n"


def test_an_emulator_error_from_up_is_a_coded_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))

    def refuse(settings: HarnessSettings) -> emulator.EmulatorHandle:
        raise emulator.EmulatorError("PORT_IN_USE", "port 4566 on 127.0.0.1 is taken by another program")

    monkeypatch.setattr(emulator, "ensure_running", refuse)
    assert cli.main(["up", "--no-deploy"]) == 2
    assert capsys.readouterr().err == "error PORT_IN_USE: port 4566 on 127.0.0.1 is taken by another program\n"


def test_an_unexpected_exception_propagates_with_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))

    def broken(settings: HarnessSettings) -> list[str]:
        raise ValueError("a bug, not an expected failure")

    monkeypatch.setattr(emulator, "stop", broken)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["down"])


def test_chaos_cli_reports_coded_errors_and_lets_bugs_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a state folder without deploy outputs
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    # WHEN redrive is asked for a stack that was never deployed, directly and through `harness chaos`
    for main, argv in (
        (chaos_cli.main, ["redrive", "--stack", "nope"]),
        (cli.main, ["chaos", "redrive", "--stack", "nope"]),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error PIPELINE_UNAVAILABLE: Expected deploy outputs for stack 'nope'"), err

    # AND a failure that is not a CodedError is a bug: it propagates
    def broken(settings: HarnessSettings, stack: str) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(chaos_cli, "read_outputs", broken)
    with pytest.raises(KeyError):
        chaos_cli.main(["redrive", "--stack", "nope"])
