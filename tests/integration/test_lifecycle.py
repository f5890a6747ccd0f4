"""Emulator lifecycle through the harness: reuse, port conflicts, and `make down` leaving nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from common.paths import ROOT
from harness import emulator as emu
from harness.aws import client
from harness.settings import HarnessSettings
from tests.lambdas import create_function, unique_name
from tests.ports import free_port


def _processes_with_home(home: Path) -> list[int]:
    """Every live process whose environment carries HARNESS_HOME=home (LocalStack and its runtimes)."""
    needle = f"HARNESS_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                stat = (proc / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_second_up_reuses_the_running_emulator(emulator: emu.EmulatorHandle, harness_settings: HarnessSettings) -> None:
    # the running emulator, not the session's first handle: the restart and persistence tests restart it on purpose
    before = emu.find_running(harness_settings)
    again = emu.ensure_running(harness_settings)
    assert again.started_here is False
    assert again.endpoint == emulator.endpoint
    if before is not None and harness_settings.emulator == "embedded":
        assert again.pid == before.pid


def test_port_taken_by_something_else_is_reported(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = HarnessSettings(port=port, home=tmp_path)
        with pytest.raises(emu.EmulatorError) as info:
            emu.ensure_running(settings, timeout=5)
    assert info.value.code == "PORT_IN_USE"
    assert f"port {port}" in str(info.value) and "another program" in str(info.value)
    assert not (tmp_path / "localstack.pid").exists()


def test_a_second_emulator_on_the_same_state_is_refused(
    emulator: emu.EmulatorHandle, harness_settings: HarnessSettings
) -> None:
    if harness_settings.emulator == "docker" or harness_settings.endpoint_override:
        pytest.skip("the embedded emulator's state directory; docker mode keeps its state in its container")
    # GIVEN this checkout's emulator running, and its state directory asked for on another port
    pidfile = harness_settings.home / "localstack.pid"
    before = pidfile.read_text()
    port = free_port()
    elsewhere = HarnessSettings(port=port, home=harness_settings.home)
    # THEN it is not taken for that port's emulator, and none is started there beside it (they would share files)
    assert emu.find_running(elsewhere) is None
    with pytest.raises(emu.EmulatorError) as info:
        emu.ensure_running(elsewhere, timeout=5)
    assert info.value.code == "EMULATOR_ELSEWHERE"
    assert f"port {harness_settings.port}" in str(info.value) and f"HARNESS_PORT={harness_settings.port}" in str(
        info.value
    )
    assert pidfile.read_text() == before and not emu.port_in_use(port)
    assert emu.find_running(harness_settings) is not None  # the running one is untouched


@pytest.mark.slow
def test_make_down_leaves_no_process_and_no_listener(tmp_path: Path) -> None:
    if HarnessSettings.from_env().emulator == "docker":
        pytest.skip("embedded mode's processes; docker mode: test_docker_mode.py::test_down_leaves_no_container_...")
    # GIVEN a second emulator of our own, with a Lambda runtime process alive
    port = free_port()
    home = tmp_path / "state"
    env = dict(os.environ, HARNESS_PORT=str(port), HARNESS_HOME=str(home))
    up = subprocess.run(
        [sys.executable, "-m", "harness", "up", "--no-deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    settings = HarnessSettings(port=port, home=home)
    try:
        lam = client("lambda", settings)
        name = unique_name("lifecycle")
        create_function(lam, name, "def handler(event, context):\n    return {'ok': True}\n")
        result = lam.invoke(FunctionName=name, Payload=b"{}")
        assert json.loads(result["Payload"].read()) == {"ok": True}
        assert _processes_with_home(home), "expected LocalStack (and a runtime) to be running"
    finally:
        # WHEN the user runs make down
        down = subprocess.run(
            ["make", "--no-print-directory", "down"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    # THEN nothing of ours runs and nothing listens on the port
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped LocalStack" in down.stdout
    assert _processes_with_home(home) == []
    assert not emu.port_in_use(port)


def _listeners(port: int) -> list[str]:
    """Local addresses of LISTEN sockets on `port`, from /proc/net/tcp and tcp6 (no external tools)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                if len(address) == 8:
                    found.append(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    found.append(address)
    return found


def test_embedded_emulator_listens_on_loopback_only(
    emulator: emu.EmulatorHandle, harness_settings: HarnessSettings
) -> None:
    if harness_settings.emulator != "embedded" or emulator.pid is None:
        pytest.skip("only the embedded emulator's listener is ours to check")
    assert _listeners(harness_settings.port) == ["127.0.0.1"]
