"""The emulators the bench compares: LocalStack with the lean path off ("before") and on ("after"), and MiniStack.

Each side runs in its own state folder under the bench's home and gets our stack deployed, unchanged, with
`python -m harness up` (MiniStack through HARNESS_ENDPOINT; LocalStack embedded, also under EMULATOR=docker). The
bench stops what it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from common.errors import CodedError
from common.paths import ROOT
from common.waiting import WaitTimeout, wait_until
from harness.probe import health

MINISTACK_BIN = ROOT / ".venv-ministack" / "bin" / "ministack"
DEPLOY_TIMEOUT_S = 420.0


class SideError(CodedError):
    """An emulator of the bench could not be started or deployed to (codes SIDE_START_FAILED, SIDE_DEPLOY_FAILED)."""


@dataclass
class Side:
    """One emulator: its name, endpoint, state folder and (once started) its process id."""

    name: str  # before | after | ministack
    port: int
    home: Path
    pid: int | None = None
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def harness_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_ENDPOINT", "HARNESS_LEAN")}
        # the LocalStack sides are embedded emulators whatever EMULATOR the caller runs with: the bench reads their
        # host process's CPU (its pid file), which a docker-mode emulator has not
        env.update({"HARNESS_PORT": str(self.port), "HARNESS_HOME": str(self.home), "EMULATOR": "embedded"})
        if self.name == "ministack":
            env["HARNESS_ENDPOINT"] = self.endpoint
        else:
            env["HARNESS_LEAN"] = "1" if self.name == "after" else "0"
        return env


def _harness(side: Side, *args: str, timeout: float = DEPLOY_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=str(ROOT),
        env=side.harness_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _fail(code: str, side: Side, what: str, proc: subprocess.CompletedProcess) -> SideError:
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return SideError(code, f"{side.name} ({side.endpoint}): {what} failed (exit {proc.returncode}):\n{tail}")


def start_localstack(side: Side) -> Side:
    """A fresh LocalStack for this side (any emulator of ours on its port/home is stopped first: the lean setting
    is read at start-up), with the stack deployed."""
    _harness(side, "down", timeout=120)
    proc = _harness(side, "up")
    if proc.returncode != 0:
        raise _fail("SIDE_START_FAILED", side, "harness up", proc)
    side.pid = int((side.home / "localstack.pid").read_text().split()[0])
    return side


def start_ministack(side: Side, timeout: float = 60.0) -> Side:
    if not MINISTACK_BIN.exists():
        raise SideError("SIDE_START_FAILED", f"{MINISTACK_BIN} is missing: run 'make ministack-venv'")
    (side.home / "tmp").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(
        {
            "GATEWAY_PORT": str(side.port),
            "BIND_HOST": "127.0.0.1",
            "S3_DATA_DIR": str(side.home / "s3"),
            "TMPDIR": str(side.home / "tmp"),
        }
    )
    log = open(side.home / "ministack.log", "ab", buffering=0)  # noqa: SIM115 - the child keeps it
    side.proc = subprocess.Popen(
        [str(MINISTACK_BIN)],
        cwd=str(side.home),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    side.pid = side.proc.pid

    def up() -> dict | None:
        if side.proc is not None and side.proc.poll() is not None:
            raise SideError("SIDE_START_FAILED", f"MiniStack exited with code {side.proc.returncode}; see its log")
        return health(side.endpoint, timeout=1.0)

    try:
        wait_until(up, timeout, interval=0.2, what="MiniStack health")
    except WaitTimeout as exc:
        stop(side)
        raise SideError("SIDE_START_FAILED", f"MiniStack on {side.endpoint} not healthy within {timeout:.0f}s") from exc
    proc = _harness(side, "up")
    if proc.returncode != 0:
        stop(side)
        raise _fail("SIDE_DEPLOY_FAILED", side, "harness up (deploy)", proc)
    return side


def start(side: Side) -> Side:
    side.home.mkdir(parents=True, exist_ok=True)
    return start_ministack(side) if side.name == "ministack" else start_localstack(side)


def stop(side: Side) -> None:
    if side.name == "ministack":
        if side.proc is not None and side.proc.poll() is None:
            try:
                os.killpg(side.proc.pid, 15)
                side.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(side.proc.pid, 9)
        side.proc = None
    else:
        _harness(side, "down", timeout=120)
    side.pid = None
