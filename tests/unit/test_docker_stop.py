"""Stopping the docker-mode emulator: a state save in progress is waited for, as in embedded mode; else the grace."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from harness import docker_emulator
from harness.settings import HarnessSettings


class SavingContainer:
    """A container that, once signalled, 'saves' for `save_s` seconds (the marker present meanwhile), then exits."""

    def __init__(self, marker: Path, save_s: float, *, exits: bool = True) -> None:
        self.marker, self.save_s, self.exits = marker, save_s, exits
        self.signalled_at: float | None = None

    def term(self) -> None:
        self.signalled_at = time.monotonic()
        self.marker.touch()

    def running(self) -> bool:
        if self.signalled_at is None or not self.exits:
            return True
        if time.monotonic() - self.signalled_at < self.save_s:
            return True
        self.marker.unlink(missing_ok=True)
        return False


def test_a_save_longer_than_the_grace_period_is_waited_for(tmp_path: Path) -> None:
    container = SavingContainer(tmp_path / ".saving", save_s=1.5)
    container.term()
    waited = docker_emulator.wait_for_exit_or_save(container.running, container.marker, grace=0.3, save_timeout=10)
    assert not container.running() and not container.marker.exists()
    assert waited > 0


def test_without_a_save_marker_only_the_grace_period_is_waited(tmp_path: Path) -> None:
    container = SavingContainer(tmp_path / ".saving", save_s=5.0)
    container.term()
    t0 = time.monotonic()
    waited = docker_emulator.wait_for_exit_or_save(
        container.running, tmp_path / "another-marker", grace=0.3, save_timeout=10
    )
    assert waited == 0.0 and time.monotonic() - t0 < 2.0
    assert container.running()  # compose down then kills it


def test_a_save_that_never_ends_is_bounded(tmp_path: Path) -> None:
    container = SavingContainer(tmp_path / ".saving", save_s=0.0, exits=False)
    container.term()
    t0 = time.monotonic()
    docker_emulator.wait_for_exit_or_save(container.running, container.marker, grace=0.2, save_timeout=0.5)
    assert time.monotonic() - t0 < 3.0


def test_stop_signals_waits_for_the_save_then_removes_the_container(tmp_path: Path, monkeypatch: Any) -> None:
    # GIVEN a running container of this port whose LocalStack saves its state for longer than the grace period
    settings = HarnessSettings(port=4616, home=tmp_path, emulator="docker")
    marker = docker_emulator.state_dir(settings) / docker_emulator.SAVING_MARKER
    marker.parent.mkdir(parents=True)
    container = SavingContainer(marker, save_s=1.0)
    calls: list[list[str]] = []
    removed: list[bool] = []

    def run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        out = ""
        if argv[:2] == ["docker", "version"]:
            out = "28.0"
        elif argv[:2] == ["docker", "inspect"]:
            out = "running" if container.running() else "exited"
        elif argv[:2] == ["docker", "kill"]:
            assert argv[2:4] == ["--signal", "TERM"]
            container.term()
        elif "ps" in argv:
            out = "" if removed else "c0ffee000000\n"
        elif "down" in argv:
            assert not container.running(), "compose down before the save ended would SIGKILL it"
            removed.append(True)
        return subprocess.CompletedProcess(argv, 0, out, "")

    monkeypatch.setattr(docker_emulator, "port_in_use", lambda port: False)
    project = docker_emulator.DockerCompose(settings, run=run, compose=["docker-compose"])
    monkeypatch.setattr(docker_emulator, "wait_for_exit_or_save", _short_grace(docker_emulator.wait_for_exit_or_save))
    # WHEN the emulator is stopped
    done = docker_emulator.stop(settings, project)
    # THEN the save ended by itself, and only then was the container removed
    assert removed and not marker.exists()
    assert "state save" in done[0], done
    assert [argv[0:2] for argv in calls if argv[0] == "docker" and argv[1] == "kill"] == [["docker", "kill"]]


def _short_grace(wait: Any) -> Any:
    def short(running: Any, saving: Path, **_kw: Any) -> float:  # the stop's own grace and bound, made short
        return float(wait(running, saving, grace=0.3, save_timeout=10))

    return short
