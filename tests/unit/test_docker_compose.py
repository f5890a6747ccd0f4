"""docker-compose.yml, statically: our image's service (loopback, state, health, knobs) and the upstream profile."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from common.paths import ROOT
from harness import docker_emulator, emulator
from harness.settings import HarnessSettings

# knobs whose value is a path or address: the container has its own (checked separately below)
PER_PLACE = {
    "GATEWAY_LISTEN",
    "LOCALSTACK_HOST",
    "FILESYSTEM_ROOT",
    "TMPDIR",
    "HOME",
    "HARNESS_HOME",
    "HARNESS_LAMBDA_PYTHON",
    "AWS_DEFAULT_REGION",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def ours(compose: dict) -> dict:
    return compose["services"][docker_emulator.SERVICE]


def test_our_service_builds_our_image_from_the_repo_with_a_base_image_argument(ours: dict) -> None:
    assert ours["build"]["context"] == "."
    assert (ROOT / ours["build"]["dockerfile"]).is_file()
    assert ours["build"]["args"]["BASE_IMAGE"] == "${HARNESS_BASE_IMAGE:-python:3.13-slim}"
    assert ours["image"] == docker_emulator.IMAGE
    assert "profiles" not in ours, "our image is the default service"


def test_our_service_needs_no_token_no_docker_socket_and_no_bridge_network(ours: dict, compose: dict) -> None:
    text = yaml.safe_dump(ours)
    assert "docker.sock" not in text
    assert "LOCALSTACK_AUTH_TOKEN" not in text
    assert ours["network_mode"] == "host"
    assert "ports" not in ours, "host networking publishes nothing: LocalStack binds loopback itself"
    assert "networks" not in compose and "networks" not in ours


def test_localstack_binds_loopback_on_harness_port(ours: dict) -> None:
    env = ours["environment"]
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:${HARNESS_PORT:-4566}"
    assert env["LOCALSTACK_HOST"] == "127.0.0.1:${HARNESS_PORT:-4566}"
    # the twisted gateway honours the host part only through our plugin's hook, which runs with our executor
    assert env["GATEWAY_SERVER"] == "twisted" and env["LAMBDA_RUNTIME_EXECUTOR"] == "local-process"


def test_state_lives_under_the_harness_state_folder(ours: dict) -> None:
    assert ours["volumes"] == [f"${{HARNESS_HOME:-./.harness}}/docker:{docker_emulator.CONTAINER_HOME}"]
    env = ours["environment"]
    home = docker_emulator.CONTAINER_HOME
    assert env["HARNESS_HOME"] == home
    for key, sub in (("FILESYSTEM_ROOT", "fs"), ("TMPDIR", "tmp"), ("HOME", "home")):
        assert env[key] == f"{home}/{sub}"
    assert env["HARNESS_LAMBDA_PYTHON"] == "/opt/layer/bin/python"


def test_healthcheck_asks_localstack_health_on_the_same_port(ours: dict) -> None:
    check = ours["healthcheck"]
    assert check["test"][0] == "CMD"
    assert f"http://127.0.0.1:${{HARNESS_PORT:-4566}}{emulator.HEALTH_PATH}" in check["test"][-1]
    assert int(check["retries"]) * float(check["interval"].rstrip("s")) >= 60


def test_same_knobs_as_embedded_mode(ours: dict, tmp_path: Path) -> None:
    embedded = emulator.emulator_environment(HarnessSettings(port=4999, home=tmp_path), base={})
    # the lean path's settings follow HARNESS_LEAN: the container's entrypoint sets them from the plugin's own list
    for key in emulator.LEAN_ENV:
        embedded.pop(key, None)
    env = {key: str(value) for key, value in ours["environment"].items()}
    assert env["HARNESS_LEAN"] == "${HARNESS_LEAN:-1}"
    assert "lean.environment()" in (ROOT / "docker" / "entrypoint.sh").read_text()
    missing = sorted(set(embedded) - set(env))
    assert not missing, f"knobs of embedded mode missing in docker-compose.yml: {missing}"
    for key in sorted(set(embedded) - PER_PLACE):
        if key in ("HARNESS_ESM_LONG_POLL_SEC", "LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT", "HARNESS_LEAN"):  # overridable
            assert env[key] == "${" + key + ":-" + embedded[key] + "}"
            continue
        assert env[key] == embedded[key], key
    assert env["AWS_DEFAULT_REGION"] == "${HARNESS_REGION:-us-east-1}"


def test_upstream_variant_is_an_opt_in_profile_marked_not_run_here(compose: dict) -> None:
    upstream = compose["services"]["localstack-upstream"]
    assert upstream["profiles"] == ["upstream"]
    assert upstream["ports"] == ["127.0.0.1:${HARNESS_PORT:-4566}:4566"]
    header = (ROOT / "docker-compose.yml").read_text().split("services:")[0]
    assert "NOT RUN HERE" in header and "--profile upstream" in header


def test_no_top_level_keys_docker_compose_v1_rejects(compose: dict) -> None:
    # docker-compose 1.29 (Debian's) takes the compose spec without `version`, but not a top-level `name`
    assert set(compose) <= {"services", "volumes"} | {key for key in compose if key.startswith("x-")}


def test_project_is_per_port_and_state_is_under_home(tmp_path: Path) -> None:
    settings = HarnessSettings(port=4616, home=tmp_path)
    assert docker_emulator.project_name(settings) == "thumbnail-harness-4616"
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", docker_emulator.project_name(settings))
    assert docker_emulator.state_dir(settings) == tmp_path / "docker"
    env = docker_emulator.compose_environment(settings, base={"PATH": "/usr/bin"})
    assert env == {
        "PATH": "/usr/bin",
        "HARNESS_PORT": "4616",
        "HARNESS_HOME": str(tmp_path),
        "HARNESS_REGION": "us-east-1",
    }


def test_container_path_maps_the_state_mount(tmp_path: Path) -> None:
    settings = HarnessSettings(port=4616, home=tmp_path)
    folder = docker_emulator.state_dir(settings) / "test-results" / "run 1"
    assert docker_emulator.container_path(settings, folder) == f"{docker_emulator.CONTAINER_HOME}/test-results/run 1"
    with pytest.raises(ValueError):
        docker_emulator.container_path(settings, tmp_path / "elsewhere")


def test_the_image_carries_the_staged_node_binaries_and_exports_their_paths() -> None:
    # make docker-image stages the host's node 20/22 into docker/node/<major>/bin/node (gitignored, in the context)
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "COPY docker/node/ /opt/node/" in dockerfile
    assert "!docker/node/" in (ROOT / ".dockerignore").read_text().splitlines()
    assert (ROOT / "docker" / "node").is_dir()
    entrypoint = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert "HARNESS_LAMBDA_NODE$major" in entrypoint and "/opt/node/*/bin/node" in entrypoint
