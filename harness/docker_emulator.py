"""Docker mode's lifecycle: our emulator image started, reused, inspected and stopped through docker-compose.yml."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.errors import CodedError
from common.paths import ROOT
from common.waiting import WaitTimeout, wait_until
from harness.probe import health, port_in_use
from harness.settings import HarnessSettings
from harness.state_save import SAVING_MARKER, wait_for_exit_or_save

COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICE = "localstack"  # the compose service of our image (the upstream one is the opt-in profile `upstream`)
IMAGE = "thumbnail-harness-emulator:local"
CONTAINER_HOME = "/var/lib/harness"  # HARNESS_HOME inside the container (the state mount)
# LocalStack stops in 2-6 s; after this grace the container is killed (compose down), unless LocalStack is saving
# its state (the executor plugin's persist/.saving under the state mount): that save is waited for, as in embedded
# mode (harness.state_save), so a large save is not cut short by the SIGKILL
STOP_TIMEOUT_S = 15
DOCKER_CMD_TIMEOUT_S = 120.0
START_TIMEOUT_S = 90.0


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class DockerEmulatorError(CodedError):
    """Docker mode could not start, reach or stop the container; harness.emulator re-raises it as EmulatorError."""


@dataclass(frozen=True)
class ContainerProcess:
    """One process of the emulator container, as `docker top` lists it (pid as the host sees it)."""

    pid: int
    command: str


def project_name(settings: HarnessSettings) -> str:
    """One compose project per port, so emulators on different ports do not replace each other."""
    return f"thumbnail-harness-{settings.port}"


def state_dir(settings: HarnessSettings) -> Path:
    """The host folder mounted at /var/lib/harness (the container's HARNESS_HOME)."""
    return settings.home / "docker"


def container_path(settings: HarnessSettings, host_path: Path) -> str:
    """Where the container sees `host_path`, a path under state_dir(settings) (the state mount)."""
    return str(Path(CONTAINER_HOME) / host_path.resolve().relative_to(state_dir(settings).resolve()))


def compose_command(*, which: Callable[[str], str | None] = shutil.which, run: Runner = subprocess.run) -> list[str]:
    """`docker compose` (v2) when the CLI plugin answers, else `docker-compose` (v1); DOCKER_UNAVAILABLE otherwise."""
    if which("docker"):
        probe = run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if which("docker-compose"):
        return ["docker-compose"]
    raise DockerEmulatorError(
        "DOCKER_UNAVAILABLE",
        "EMULATOR=docker needs Docker Compose: neither 'docker compose' (v2) nor 'docker-compose' (v1) was found. "
        "Run 'make docker-engine' (installs Debian's docker.io and docker-compose as root and starts an engine).",
    )


def compose_environment(settings: HarnessSettings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What docker-compose.yml interpolates: the port, the state folder and the region of these settings."""
    env = dict(os.environ if base is None else base)
    env.update(
        {"HARNESS_PORT": str(settings.port), "HARNESS_HOME": str(settings.home), "HARNESS_REGION": settings.region}
    )
    return env


def compose_argv(compose: Sequence[str], settings: HarnessSettings, *args: str) -> list[str]:
    return [*compose, "-f", str(COMPOSE_FILE), "-p", project_name(settings), *args]


class DockerCompose:
    """The compose project of one settings (port): up, ps, logs, down; errors are EmulatorError with a code."""

    def __init__(
        self, settings: HarnessSettings, *, run: Runner = subprocess.run, compose: Sequence[str] | None = None
    ) -> None:
        self.settings = settings
        self._run = run
        self._compose = list(compose) if compose is not None else None

    @property
    def compose(self) -> list[str]:
        if self._compose is None:
            self._compose = compose_command(run=self._run)
        return self._compose

    def run(self, *args: str, timeout: float = DOCKER_CMD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        argv = compose_argv(self.compose, self.settings, *args)
        try:
            return self._run(
                argv,
                env=compose_environment(self.settings),
                capture_output=True,
                text=True,
                check=False,
                timeout=timeout,
                cwd=str(ROOT),
            )
        except subprocess.TimeoutExpired as exc:
            raise DockerEmulatorError("DOCKER_TIMEOUT", f"'{' '.join(argv)}' did not finish in {timeout:.0f}s") from exc

    def docker(self, *args: str, timeout: float = DOCKER_CMD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        try:
            return self._run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DockerEmulatorError("DOCKER_UNAVAILABLE", f"'docker {' '.join(args)}' failed: {exc}") from exc

    def engine_answers(self) -> bool:
        return self.docker("version", "--format", "{{.Server.Version}}", timeout=20).returncode == 0

    def container_id(self) -> str | None:
        """The id of the service's container (running or not), or None."""
        result = self.run("ps", "-a", "-q", SERVICE)
        ids = [line.strip() for line in result.stdout.splitlines() if line.strip()] if result.returncode == 0 else []
        return ids[0] if ids else None

    def state(self, container: str) -> str:
        """'running', 'exited', ... ('' when docker does not know the container)."""
        result = self.docker("inspect", "-f", "{{.State.Status}}", container)
        return result.stdout.strip() if result.returncode == 0 else ""

    def processes(self, container: str) -> list[ContainerProcess]:
        result = self.docker("top", container, "-eo", "pid,args")
        if result.returncode != 0:
            return []
        out = []
        for line in result.stdout.splitlines()[1:]:
            pid, _, command = line.strip().partition(" ")
            if pid.isdigit():
                out.append(ContainerProcess(int(pid), command.strip()))
        return out

    def logs_tail(self, lines: int = 25) -> str:
        result = self.run("logs", "--no-color", "--tail", str(lines), SERVICE)
        return (result.stdout + result.stderr).strip() or "(no log)"


def log_text(settings: HarnessSettings, project: DockerCompose | None = None) -> str:
    """The whole log of our container for these settings ('' when there is none): LocalStack's and the executor's."""
    project = project or DockerCompose(settings)
    result = project.run("logs", "--no-color", SERVICE)
    return result.stdout + result.stderr if result.returncode == 0 else ""


def _error_text(result: subprocess.CompletedProcess[str]) -> str:
    return "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])


def is_running(settings: HarnessSettings, project: DockerCompose | None = None) -> bool:
    """Our container for these settings runs and LocalStack answers in it."""
    project = project or DockerCompose(settings)
    container = project.container_id()
    if container is None or project.state(container) != "running":
        return False
    return health(settings.endpoint) is not None


def ensure_running(
    settings: HarnessSettings, *, timeout: float = START_TIMEOUT_S, project: DockerCompose | None = None
) -> bool:
    """Reuse our container if it is up, else `compose up -d` it (building the image if missing) and wait for health.

    Returns whether it was started here (False: reused)."""
    project = project or DockerCompose(settings)
    if not project.engine_answers():
        raise DockerEmulatorError(
            "DOCKER_UNAVAILABLE",
            "no Docker engine answers (DOCKER_HOST=" + os.environ.get("DOCKER_HOST", "unset") + "). "
            "Run 'make docker-engine', or start your engine and set DOCKER_HOST.",
        )
    container = project.container_id()
    running = container is not None and project.state(container) == "running"
    if running and health(settings.endpoint) is not None:
        return False
    if not running and port_in_use(settings.port):
        other = "a LocalStack not started by this harness" if health(settings.endpoint) else "another program"
        raise DockerEmulatorError(
            "PORT_IN_USE",
            f"port {settings.port} on 127.0.0.1 is taken by {other}. Stop it (an embedded emulator: "
            f"'make down' without EMULATOR=docker), or pick another port: HARNESS_PORT=4567 EMULATOR=docker make up",
        )
    state_dir(settings).mkdir(parents=True, exist_ok=True)
    up = project.run("up", "-d", SERVICE, timeout=max(DOCKER_CMD_TIMEOUT_S, 900.0))  # builds the image if missing
    if up.returncode != 0:
        raise DockerEmulatorError("DOCKER_UP_FAILED", f"compose up failed:\n{_error_text(up)}")
    started = project.container_id()

    def healthy() -> dict | None:
        if started is not None and project.state(started) in ("exited", "dead"):
            raise DockerEmulatorError(
                "EMULATOR_EXITED",
                f"the emulator container exited during start-up; last log lines:\n{project.logs_tail()}",
            )
        return health(settings.endpoint, timeout=1.0)

    try:
        wait_until(healthy, timeout, interval=0.25, what="LocalStack /_localstack/health in the container")
    except WaitTimeout as exc:
        raise DockerEmulatorError(
            "EMULATOR_START_TIMEOUT",
            f"the emulator container did not become healthy within {timeout:.0f}s; last log lines:\n"
            f"{project.logs_tail()}",
        ) from exc
    return True


def stop(settings: HarnessSettings, project: DockerCompose | None = None) -> list[str]:
    """`compose down`: the container is stopped and removed; check that no container and no listener are left."""
    project = project or DockerCompose(settings)
    try:
        if not project.engine_answers():
            return ["no Docker engine answers: no emulator container to stop"]
        container = project.container_id()
        if container is None:
            return [f"no emulator container of project {project_name(settings)}"]
        waited = _stop_saving_container(project, container, state_dir(settings) / SAVING_MARKER)
        down = project.run("down", "--remove-orphans", "--timeout", str(STOP_TIMEOUT_S))
    except DockerEmulatorError as exc:
        return [f"warning: {exc}"]
    if down.returncode != 0:
        return [f"warning: compose down failed: {_error_text(down)}"]
    done = [
        f"stopped and removed the emulator container {container[:12]} (project {project_name(settings)})"
        + (f" after a {waited:.0f} s state save" if waited else "")
    ]
    if project.container_id() is not None:
        done.append("warning: the emulator container is still there")
    try:
        wait_until(lambda: not port_in_use(settings.port), 10.0, what=f"port {settings.port} to be free")
    except WaitTimeout:
        done.append(f"warning: something still listens on port {settings.port}")
    return done


def _stop_saving_container(project: DockerCompose, container: str, saving: Path) -> float:
    """SIGTERM LocalStack in the container (docker-init forwards it) and wait STOP_TIMEOUT_S for it to exit; while
    `saving` (the state save's marker, seen through the state mount) is there, wait for the save too, at most
    SAVE_TIMEOUT_S. Returns the seconds waited for the save; `compose down` then removes the container (and kills
    it if it still runs)."""
    if project.state(container) != "running":
        return 0.0
    project.docker("kill", "--signal", "TERM", container)
    return wait_for_exit_or_save(lambda: project.state(container) == "running", saving, grace=STOP_TIMEOUT_S)


def container_processes(settings: HarnessSettings, project: DockerCompose | None = None) -> list[ContainerProcess]:
    """The processes of our running container (LocalStack, Lambda runtimes), [] when it is not running."""
    project = project or DockerCompose(settings)
    container = project.container_id()
    return project.processes(container) if container else []
