"""Docker mode (EMULATOR=docker): LocalStack and its Lambda runtimes run in our container, on loopback, and go away."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.paths import ROOT
from common.waiting import wait_until
from harness import docker_emulator
from harness import emulator as emu
from harness.aws import client
from harness.settings import HarnessSettings
from tests.lambdas import create_function, unique_name
from tests.ports import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def docker_mode(emulator: emu.EmulatorHandle, harness_settings: HarnessSettings) -> HarnessSettings:
    if harness_settings.emulator != "docker" or harness_settings.endpoint_override:
        pytest.skip("docker mode only (EMULATOR=docker make test)")
    return harness_settings


def _host_localstack_pids(port: int) -> list[int]:
    """Host pids of LocalStack processes serving `port` (their environment says GATEWAY_LISTEN=127.0.0.1:port)."""
    needle = f"GATEWAY_LISTEN=127.0.0.1:{port}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"localstack.runtime.main" in (proc / "cmdline").read_bytes() and needle in (
                proc / "environ"
            ).read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _container_of(pid: int) -> str:
    """The container id in the process's cgroup path ('' for a process of the host)."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return ""
    for part in re.split(r"[:/\s]+", text):
        part = part.removeprefix("docker-").removesuffix(".scope")
        if len(part) == 64 and all(c in "0123456789abcdef" for c in part):
            return part
    return ""


def _listeners(port: int) -> list[str]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # LISTEN
                found.append(
                    socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]) if len(address) == 8 else address
                )
    return found


def test_localstack_runs_inside_our_container_not_on_the_host(docker_mode: HarnessSettings) -> None:
    project = docker_emulator.DockerCompose(docker_mode)
    container = project.container_id()
    assert container is not None and project.state(container) == "running"
    inside = [p for p in project.processes(container) if "localstack.runtime.main" in p.command]
    assert inside and inside[0].command.startswith("/opt/emulator/bin/python"), inside
    full_id = project.docker("inspect", "-f", "{{.Id}}", container).stdout.strip()
    serving = _host_localstack_pids(docker_mode.port)
    assert serving, "the LocalStack process must be visible from the host kernel"
    assert {_container_of(pid) for pid in serving} == {full_id}, "every LocalStack on this port is in the container"


def test_the_gateway_listens_on_loopback_only(docker_mode: HarnessSettings) -> None:
    assert _listeners(docker_mode.port) == ["127.0.0.1"]


def test_lambda_runs_in_the_container_with_the_layer_interpreter(
    docker_mode: HarnessSettings, aws: Callable[..., Any]
) -> None:
    lam = aws("lambda")
    name = unique_name("docker-layer")
    source = (
        "import sys, PIL, pyvips\n"
        "def handler(event, context):\n"
        "    return {'python': sys.executable, 'pillow': PIL.__version__, 'vips': pyvips.version(0)}\n"
    )
    create_function(lam, name, source)
    try:
        result = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
        assert result["python"] == "/opt/layer/bin/python" and result["vips"] >= 8, result
        project = docker_emulator.DockerCompose(docker_mode)
        container = project.container_id()
        assert container is not None
        runtimes = [p for p in project.processes(container) if "bootstrap.py" in p.command]
        assert any(p.command.startswith("/opt/layer/bin/python") for p in runtimes), runtimes
        assert all(_container_of(p.pid) for p in runtimes), "runtimes are processes of the container"
    finally:
        lam.delete_function(FunctionName=name)


def test_down_leaves_no_container_no_listener_and_no_localstack(docker_mode: HarnessSettings, tmp_path: Path) -> None:
    # GIVEN a second docker-mode emulator (own port and state), with a Lambda runtime alive in it
    port = free_port()
    home = tmp_path / "state"
    env = dict(os.environ, EMULATOR="docker", HARNESS_PORT=str(port), HARNESS_HOME=str(home))
    env.pop("HARNESS_ENDPOINT", None)
    up = subprocess.run(
        [sys.executable, "-m", "harness", "up", "--no-deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    settings = HarnessSettings(port=port, home=home, emulator="docker")
    project = docker_emulator.DockerCompose(settings)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        lam = client("lambda", settings)
        name = unique_name("docker-down")
        create_function(lam, name, "def handler(event, context):\n    return {'ok': True}\n")
        assert json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == {"ok": True}
        assert _host_localstack_pids(port), "expected LocalStack to run for the second project"
    finally:
        # WHEN the user runs EMULATOR=docker make down
        down = subprocess.run(
            ["make", "--no-print-directory", "down"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )
    # THEN no container, no listener and no LocalStack process of that project is left
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped and removed the emulator container" in down.stdout
    assert project.container_id() is None
    assert not emu.port_in_use(port)
    wait_until(lambda: not _host_localstack_pids(port), 10.0, what="LocalStack processes to be gone")
