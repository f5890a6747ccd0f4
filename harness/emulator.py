"""Lifecycle of the emulator: start (or reuse) LocalStack on 127.0.0.1, wait for health, stop it and its runtimes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from common.errors import CodedError
from common.waiting import WaitTimeout, wait_until
from harness import paths
from harness.probe import HEALTH_PATH, health, port_in_use  # noqa: F401 (part of this module's API)
from harness.runtimes import RUNTIMES_DIRNAME, RuntimeRecord, read_records, runtimes_dir
from harness.settings import HarnessSettings
from harness.state_save import SAVING_MARKER, wait_for_exit_or_save

SERVICES = "s3,sqs,lambda,logs,iam,sts,cloudwatch,cloudformation,ssm"  # cloudformation+ssm: `cdk bootstrap|deploy`

# Environment LocalStack is started with for Lambda and event-source mappings (owned by the executor plugin's author).
LAMBDA_ENV: dict[str, str] = {
    # our executor plugin (harness/executor): each execution environment is a local process
    "LAMBDA_RUNTIME_EXECUTOR": "local-process",
    # SQS mappings long-poll (3 s) when they have no batching window: a message is picked up as soon as it arrives
    # and an idle mapping costs one request per 3 s. The poll interval is the pause between two non-empty polls.
    "HARNESS_ESM_LONG_POLL_SEC": "3",
    "LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC": "0.02",
    # only used without long polling (HARNESS_ESM_LONG_POLL_SEC=0): LocalStack's default 10 s delays pickup by seconds
    "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC": "0.5",
}

START_TIMEOUT_S = 90.0
# LocalStack stops in 2-6 s; after chaos runs (killed runtimes, changed configs) it can hang in its service
# shutdown: there is no state to save, so SIGKILL the group after this grace period.
STOP_TIMEOUT_S = 10.0
# ...unless it is saving its state (harness.state_save: the plugin's marker, waited for at most SAVE_TIMEOUT_S)


class EmulatorError(CodedError):
    """The emulator could not be started, reached or stopped; `code` is stable."""


@dataclass(frozen=True)
class EmulatorHandle:
    endpoint: str
    pid: int | None
    started_here: bool


@dataclass(frozen=True)
class StatePaths:
    home: Path

    @property
    def log(self) -> Path:
        return self.home / "localstack.log"

    @property
    def pidfile(self) -> Path:
        return self.home / "localstack.pid"

    @property
    def runtimes(self) -> Path:
        return runtimes_dir(self.home)

    @property
    def outputs(self) -> Path:
        return self.home / "outputs"

    def make(self) -> None:
        for sub in ("fs", "tmp", "home", RUNTIMES_DIRNAME, "outputs"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)


def _read_pid_port(state: StatePaths) -> tuple[int | None, int | None]:
    """(pid, port) of the emulator this state directory's pid file names; pid None when it is not alive, port None
    when the file does not say (files of older harness versions)."""
    try:
        fields = state.pidfile.read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None, None
    try:
        port: int | None = int(fields[1])
    except (ValueError, IndexError):
        port = None
    return (pid if _alive(pid) else None), port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still "exists": treat it as dead
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


START_MARKER = "===== harness: starting LocalStack"  # opens each run's part of the embedded emulator's log
# The LocalStack settings of the plugin's lean request path (harness/executor/local_executor/lean.py ENVIRONMENT;
# the plugin runs in the emulator venv, so they are spelled twice; tests/unit/test_lean.py checks they agree).
LEAN_ENV = {"SQS_DISABLE_CLOUDWATCH_METRICS": "1", "IN_MEMORY_CLIENT": "1"}
LEAN_DEFAULT = "1"  # HARNESS_LEAN when unset (the plugin's lean.LEAN_DEFAULT says the same)


def lean_environment(env: dict[str, str]) -> dict[str, str]:
    """LEAN_ENV for HARNESS_LEAN=1 , minus variables `env` already sets; {} for HARNESS_LEAN=0."""
    if env.get("HARNESS_LEAN", LEAN_DEFAULT).strip().lower() in ("0", "false", "no", "off"):
        return {}
    return {key: value for key, value in LEAN_ENV.items() if key not in env}


def emulator_environment(settings: HarnessSettings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment LocalStack runs with: everything it writes stays under settings.home."""
    env = dict(os.environ if base is None else base)
    # the emulator venv must not see the project venv
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(key, None)
    env.update(
        {
            "GATEWAY_LISTEN": f"127.0.0.1:{settings.port}",
            # twisted: LocalStack's default and fastest gateway. On its own it ignores the host of GATEWAY_LISTEN and
            # binds every interface; our plugin's start-up hook makes it bind 127.0.0.1 (tests check the listener).
            "GATEWAY_SERVER": "twisted",
            "LOCALSTACK_HOST": f"127.0.0.1:{settings.port}",
            "SERVICES": SERVICES,
            "EAGER_SERVICE_LOADING": "0",
            "DNS_ADDRESS": "0",
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(settings.home / "fs"),
            "TMPDIR": str(settings.home / "tmp"),
            "HOME": str(settings.home / "home"),
            "PERSISTENCE": "0",
            "SQS_ENDPOINT_STRATEGY": "path",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            "LOCALSTACK_TELEMETRY_DISABLED": "1",
            "HARNESS_HOME": str(settings.home),
            "HARNESS_LAMBDA_PYTHON": env.get("HARNESS_LAMBDA_PYTHON") or str(paths.project_python()),
            # artifact mode on arm64 imports the handler under qemu (~5 s of CPU, 20 s+ on a loaded machine): give
            # environment start-up more than LocalStack's 20 s (a runtime that dies is still reported at once)
            "LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT": env.get("LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT") or "180",
            "AWS_DEFAULT_REGION": settings.region,
        }
    )
    env.update(LAMBDA_ENV)
    env.update(lean_environment(env))  # HARNESS_LEAN: LocalStack settings of the lean request path
    env["HARNESS_LEAN"] = env.get("HARNESS_LEAN") or LEAN_DEFAULT  # the plugin reads it too
    return env


def find_running(settings: HarnessSettings) -> EmulatorHandle | None:
    """The emulator this harness started for these settings, if it is up and healthy."""
    state = StatePaths(settings.home)
    pid, port = _read_pid_port(state)
    if pid is None or "localstack" not in _cmdline(pid) or port not in (None, settings.port):
        return None
    if health(settings.endpoint) is None:
        return None
    return EmulatorHandle(settings.endpoint, pid, started_here=False)


def ensure_running(settings: HarnessSettings, *, timeout: float = START_TIMEOUT_S) -> EmulatorHandle:
    """Reuse the emulator if it runs, else start it; raise EmulatorError with a clear reason otherwise."""
    if settings.emulator == "docker" and not settings.endpoint_override:
        from harness import docker_emulator  # docker mode: our image through docker-compose.yml

        try:
            started = docker_emulator.ensure_running(settings, timeout=timeout)
        except docker_emulator.DockerEmulatorError as exc:
            raise EmulatorError(exc.code, exc.message) from exc
        return EmulatorHandle(settings.endpoint, None, started_here=started)
    if settings.endpoint_override:
        return _ensure_external(settings, timeout)
    running = find_running(settings)
    if running:
        return running
    state = StatePaths(settings.home)
    pid, port = _read_pid_port(state)
    if pid is not None and port not in (None, settings.port) and "localstack" in _cmdline(pid):
        # one emulator per state directory: a second would share its files (and its saved state) with the first
        raise EmulatorError(
            "EMULATOR_ELSEWHERE",
            f"this checkout's emulator (pid {pid}, state in {settings.home}) runs on port {port}, not "
            f"{settings.port}: use it with HARNESS_PORT={port}, or stop it first (HARNESS_PORT={port} make down); "
            f"a second emulator needs its own HARNESS_HOME",
        )
    if port_in_use(settings.port):
        if pid is not None and "localstack" in _cmdline(pid):
            # ours, still starting up (or wedged): wait for it
            try:
                wait_until(lambda: health(settings.endpoint), timeout, what="LocalStack health")
            except WaitTimeout as exc:
                raise EmulatorError(
                    "EMULATOR_UNHEALTHY",
                    f"our LocalStack (pid {pid}) holds port {settings.port} but is not healthy; "
                    f"see {state.log} or run 'make down'",
                ) from exc
            return EmulatorHandle(settings.endpoint, pid, started_here=False)
        other = "a LocalStack not started by this harness" if health(settings.endpoint) else "another program"
        raise EmulatorError(
            "PORT_IN_USE",
            f"port {settings.port} on 127.0.0.1 is taken by {other}. Stop it, or pick another port: "
            f"HARNESS_PORT=4567 make up (or EMULATOR=docker / HARNESS_ENDPOINT=... to use an emulator you run)",
        )
    return _start_embedded(settings, state, timeout)


def _start_embedded(settings: HarnessSettings, state: StatePaths, timeout: float) -> EmulatorHandle:
    python = paths.emulator_python()
    if not python.exists():
        raise EmulatorError("EMULATOR_NOT_INSTALLED", f"{python} is missing: run 'make install' first")
    state.make()
    log = open(state.log, "ab", buffering=0)
    log.write(f"\n{START_MARKER} at {time.strftime('%Y-%m-%dT%H:%M:%S')} =====\n".encode())
    proc = subprocess.Popen(
        [str(python), "-m", "localstack.runtime.main"],
        env=emulator_environment(settings),
        cwd=str(settings.home),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: 'down' signals the whole tree
    )
    log.close()
    state.pidfile.write_text(f"{proc.pid} {settings.port}\n")

    def healthy() -> dict | None:
        if proc.poll() is not None:
            raise EmulatorError(
                "EMULATOR_EXITED",
                f"LocalStack exited with code {proc.returncode} during start-up; last log lines:\n{tail(state.log)}",
            )
        return health(settings.endpoint, timeout=1.0)

    try:
        wait_until(healthy, timeout, interval=0.2, what="LocalStack /_localstack/health")
    except WaitTimeout as exc:
        _terminate_group(proc.pid)
        raise EmulatorError(
            "EMULATOR_START_TIMEOUT",
            f"LocalStack did not become healthy within {timeout:.0f}s; last log lines:\n{tail(state.log)}",
        ) from exc
    return EmulatorHandle(settings.endpoint, proc.pid, started_here=True)


def _ensure_external(settings: HarnessSettings, timeout: float) -> EmulatorHandle:
    try:
        wait_until(lambda: health(settings.endpoint), timeout, interval=0.5, what="emulator health")
    except WaitTimeout as exc:
        raise EmulatorError("EMULATOR_UNREACHABLE", f"no LocalStack answers at {settings.endpoint}") from exc
    return EmulatorHandle(settings.endpoint, None, started_here=False)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def log_text(settings: HarnessSettings) -> str:
    """The emulator's log in either mode: the embedded one's file (HARNESS_HOME/localstack.log), the container's log
    in docker mode; '' when there is none."""
    if settings.emulator == "docker" and not settings.endpoint_override:
        from harness import docker_emulator

        try:
            return docker_emulator.log_text(settings)
        except docker_emulator.DockerEmulatorError:
            return ""
    try:
        return StatePaths(settings.home).log.read_text(errors="replace")
    except OSError:
        return ""


def live_runtimes(folder: Path, function_name: str | None = None) -> list[RuntimeRecord]:
    """Recorded environments (in `folder`, see harness.runtimes) whose process is alive, optionally only those of one
    function (oldest record first)."""
    return [record for record in read_records(folder, function_name) if _alive(record.pid)]


def runtime_pids(settings: HarnessSettings) -> list[int]:
    """Live Lambda runtime processes recorded by the executor plugin under HARNESS_HOME/runtimes."""
    return [runtime.pid for runtime in live_runtimes(StatePaths(settings.home).runtimes)]


def _terminate_group(pid: int, timeout: float = STOP_TIMEOUT_S, *, saving: Path | None = None) -> float:
    """SIGTERM the process group, SIGKILL it after `timeout` s, or once `saving` (a file present while the process
    saves its state) has gone, at most SAVE_TIMEOUT_S later; returns the seconds waited for the save."""
    try:
        pgid = os.getpgid(pid)
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return 0.0
    waited = wait_for_exit_or_save(lambda: _alive(pid), saving, grace=timeout)
    if _alive(pid):
        try:
            os.killpg(pgid, signal.SIGKILL)
            wait_until(lambda: not _alive(pid), 5.0, interval=0.1, what=f"pid {pid} to exit")
        except (ProcessLookupError, WaitTimeout):
            pass
    return waited


def stop(settings: HarnessSettings) -> list[str]:
    """Stop our LocalStack and every runtime process; return what was done (lines for the CLI)."""
    state = StatePaths(settings.home)
    done: list[str] = []
    if settings.emulator == "docker":
        from harness import docker_emulator

        return docker_emulator.stop(settings)
    pid, recorded_port = _read_pid_port(state)
    if pid is not None and "localstack" in _cmdline(pid):
        waited = _terminate_group(pid, saving=settings.home / SAVING_MARKER)
        done.append(f"stopped LocalStack (pid {pid})" + (f" after a {waited:.0f} s state save" if waited else ""))
    leftovers = runtime_pids(settings)
    for rpid in leftovers:
        _terminate_group(rpid, timeout=3.0)
        try:
            os.kill(rpid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if leftovers:
        done.append(f"stopped {len(leftovers)} Lambda runtime process(es)")
    for record in state.runtimes.glob("*.json") if state.runtimes.exists() else []:
        record.unlink(missing_ok=True)
    state.pidfile.unlink(missing_ok=True)
    if pid is not None or leftovers:
        freed = recorded_port if pid is not None and recorded_port else settings.port  # the port it listened on
        try:
            wait_until(lambda: not port_in_use(freed), 10.0, what=f"port {freed} to be free")
        except WaitTimeout:
            done.append(f"warning: something still listens on port {freed}")
    if not done:
        done.append("no emulator of ours was running")
    return done
