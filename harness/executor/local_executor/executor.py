"""LocalStack RuntimeExecutor whose execution environments are local processes (timeouts, crashes, memory ceiling)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import CancelledError, Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

import requests
from localstack import config as ls_config
from localstack.aws.api.lambda_ import PackageType
from localstack.http import Response
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    InvokeSendError,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from werkzeug import Request

from .artifact import artifact_launch
from .cpushare import CpuShare, CpuShareError, remove_stale_cpu_cgroups
from .languages import Launch, RuntimeUnavailable, check_supported, launch_for, node_major
from .memlimit import MemoryCeiling, MemoryCeilingError, remove_stale_cgroups, vm_kb
from .runtimes import RuntimeRecord, remove_record, sweep_stale, write_record
from .settings import ExecutorSettings

LOG = logging.getLogger("localstack.harness.local_executor")

WORKDIR_PREFIX = "harness-lambda-"
LOG_TAIL_BYTES = 256 * 1024
# LocalStack's retry of an invocation whose connection is refused: the first try at once, then 5 more, 0.1 s apart
# and doubling up to 1 s (ExecutorEndpoint._perform_invoke)
INVOKE_CONNECT_RETRIES = 5
INVOKE_RETRY_FIRST_S, INVOKE_RETRY_MAX_S = 0.1, 1.0
NO_PROXY = {"http": "", "https": ""}
# what V8 prints when it aborts at its own heap limit (--max-old-space-size) before the memory ceiling is reached
V8_HEAP_EXHAUSTED = "JavaScript heap out of memory"
_mode_logged = threading.Event()
_cpu_logged: set[str] = set()  # CPU share mechanisms already announced at INFO


@lru_cache(maxsize=1)
def settings() -> ExecutorSettings:
    return ExecutorSettings.from_env()


def _to_env_str(value: object) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return {
            "SIGKILL": "signal: killed",
            "SIGSEGV": "signal: segmentation fault",
            "SIGTERM": "signal: terminated",
            "SIGABRT": "signal: aborted",
        }.get(name, f"signal: {name}")
    return f"exit status {returncode}"


class _Endpoint(ExecutorEndpoint):
    """LocalStack's endpoint, tolerant of late or duplicate answers (the executor may already have answered)."""

    _lock = threading.Lock()

    def _resolve(self, result: InvocationResult) -> bool:
        with self._lock:
            fut = self.invocation_future
            if fut is None or fut.done():
                return False
            try:
                fut.set_result(result)
            except InvalidStateError:
                return False
            return True

    def invocation_response(self, request: Request, req_id: str) -> Response:
        self._resolve(InvocationResult(req_id, request.data, is_error=False, logs=self.logs))
        return Response(status=HTTPStatus.ACCEPTED)

    def invocation_error(self, request: Request, req_id: str) -> Response:
        self._resolve(InvocationResult(req_id, request.data, is_error=True, logs=self.logs))
        return Response(status=HTTPStatus.ACCEPTED)

    def status_ready(self, request: Request, executor_id: str) -> Response:
        fut = self.startup_future
        if fut is not None and not fut.done():
            try:
                fut.set_result(True)
            except InvalidStateError:
                pass
        return Response(status=HTTPStatus.ACCEPTED)

    def fail_startup(self, payload: bytes) -> None:
        fut = self.startup_future
        if fut is not None and not fut.done():
            try:
                fut.set_exception(StatusErrorException("Environment startup failed", payload=payload))
            except InvalidStateError:
                pass

    def begin_invocation(self) -> Future:
        with self._lock:
            self.invocation_future = Future()
            self.logs = None
            return self.invocation_future

    def post_invoke(self, payload: dict) -> requests.Response:
        """Hand the invocation to the runtime, with LocalStack's retry on a refused connection, over one keep-alive
        session per environment: LocalStack's `requests.post` builds a session (reading proxy variables and
        ~/.netrc) and opens a connection for every invocation. Environment proxies never apply: the runtime is a
        local process."""
        url = f"http://{self.container_address}:{self.container_port}/invoke"
        delay, retries = INVOKE_RETRY_FIRST_S, INVOKE_CONNECT_RETRIES
        while True:
            try:
                return self._session().post(url, json=payload, proxies=NO_PROXY)
            except requests.exceptions.ConnectionError:
                if retries == 0:
                    raise
                retries -= 1
                time.sleep(delay)
                delay = min(delay * 2, INVOKE_RETRY_MAX_S)

    def _session(self) -> requests.Session:
        session = getattr(self, "_http", None)
        if session is None:
            session = self._http = requests.Session()
            session.trust_env = False
        return session

    def shutdown(self) -> None:
        session, self._http = getattr(self, "_http", None), None
        if session is not None:
            session.close()
        super().shutdown()


class LocalProcessRuntimeExecutor(RuntimeExecutor):
    """One execution environment = one runtime process (restarted after a timeout, crash or OOM)."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:  # noqa: A002 (LocalStack's signature)
        super().__init__(id=id, function_version=function_version)
        self.settings = settings()
        self.executor_endpoint = _Endpoint(id, container_address="127.0.0.1", container_port=None)
        self._lock = threading.RLock()  # process state
        self._invoke_lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._ceiling: MemoryCeiling | None = None
        self._cpu: CpuShare | None = None  # the runtime's CPU share (cpushare.py)
        self._pending: str | None = None  # request id of the invocation in flight
        self._pending_offset = 0
        self._stopped = False
        self._env: dict[str, str] = {}
        self._workdir: Path | None = None
        self._generation = 0
        self._launch: Launch | None = None

    # ---- lifecycle --------------------------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        self.executor_endpoint.start()
        self._workdir = Path(
            tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-{self.id[:12]}-", dir=self.settings.tmp_root)
        )
        (self._workdir / "tmp").mkdir()
        self._launch = self._make_launch()
        if self._launch.notice:
            LOG.warning("%s: %s", self._fn, self._launch.notice)
        self._env = self._runtime_env(env_vars)
        t0 = time.perf_counter()
        self._spawn()
        self.executor_endpoint.wait_for_startup()
        LOG.debug("environment %s of %s ready in %.0f ms", self.id, self._fn, (time.perf_counter() - t0) * 1000)

    def stop(self) -> None:
        self._stopped = True
        with self._lock:
            self._kill_current()
        try:
            self.executor_endpoint.shutdown()
        except Exception as exc:  # noqa: BLE001 (best effort, as LocalStack's own executors)
            LOG.debug("error while shutting down endpoint of %s: %s", self.id, exc)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    @property
    def _fn(self) -> str:
        return self.function_version.id.function_name

    @property
    def _log_path(self) -> Path:
        assert self._workdir is not None
        return self._workdir / "runtime.log"

    @property
    def _runtime_name(self) -> str:
        runtime = self.function_version.config.runtime
        return str(getattr(runtime, "value", runtime) or "")

    def _make_launch(self) -> Launch:
        """How to start the runtime (at an environment's start and at each respawn: the code folder is checked too)."""
        if self.function_version.config.code is not None:
            _unzipped_code(self.function_version.config.code, self._fn)
        node_options = str((self.function_version.config.environment or {}).get("NODE_OPTIONS", ""))
        try:
            if self.settings.artifact is not None:  # artifact mode: the function's own zip (local_executor/artifact.py)
                launch = artifact_launch(
                    self._fn, self.function_version.config, self.settings.artifact, venv_python=self.settings.python
                )
                if launch is not None:
                    return launch
            return launch_for(
                self._runtime_name,
                int(self.function_version.config.memory_size or 128),
                python=self.settings.python,
                node_overrides=dict(self.settings.node_overrides),
                node_root=self.settings.node_root,
                node_options=node_options,
            )
        except RuntimeUnavailable as exc:
            raise LambdaRuntimeException(str(exc)) from exc

    def _runtime_env(self, env_vars: dict) -> dict[str, str]:
        env = {k: _to_env_str(v) for k, v in env_vars.items() if v is not None}
        code = self.function_version.config.code
        if code is None:
            raise LambdaRuntimeException("The local-process executor needs a Zip package (no code found)")
        code_dir = str(code.get_unzipped_code_location())
        assert self._workdir is not None and self._launch is not None
        env["LAMBDA_TASK_ROOT"] = code_dir
        env["LAMBDA_RUNTIME_DIR"] = str(Path(self._launch.argv[-1]).parent)
        for key, value in self._launch.env.items():
            if key == "AWS_EXECUTION_ENV" and env.get(key) not in (None, "AWS_Lambda_rapid"):
                continue  # set by the user
            if key == "PATH":
                env.setdefault(key, value)
            else:
                env[key] = value
        if node_major(self._runtime_name) is not None:
            env.setdefault("NODE_PATH", code_dir)
        env.setdefault("LANG", "C.UTF-8")
        env.setdefault("TMPDIR", str(self._workdir / "tmp"))
        env.setdefault("HOME", str(self._workdir / "tmp"))
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["HARNESS_PARENT_PID"] = str(os.getpid())
        env["HARNESS_RUNTIME_LOG"] = str(self._log_path)
        return env

    def _make_ceiling(self) -> MemoryCeiling:
        memory_mb = int(self.function_version.config.memory_size or 128)
        name = f"{WORKDIR_PREFIX}{os.getpid()}-{self.id[:12]}-{self._generation}"
        try:
            ceiling = MemoryCeiling(memory_mb, name=name, mode=self.settings.memory_mode)
        except (MemoryCeilingError, OSError) as exc:
            LOG.warning(
                "memory ceiling mode %s unavailable (%s); using the RSS watchdog", self.settings.memory_mode, exc
            )
            ceiling = MemoryCeiling(memory_mb, name=name, mode="rss")
        if not _mode_logged.is_set():
            _mode_logged.set()
            LOG.info(
                "local-process Lambda executor: memory ceiling via %s, interpreter %s",
                ceiling.mode,
                self._launch.argv[0] if self._launch else self.settings.python,
            )
        return ceiling

    def _spawn(self) -> None:
        """Start a runtime process (caller holds no lock; LocalStack serialises start/invoke per environment)."""
        launch = self._make_launch()  # raises when the interpreter went away since start()
        self._generation += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.executor_endpoint.container_port = sock.getsockname()[1]
        env = dict(self._env, HARNESS_RUNTIME_LISTEN_FD=str(sock.fileno()), HARNESS_SPAWNED_AT=repr(time.time()))
        ceiling = self._make_ceiling()
        try:
            with open(self._log_path, "ab") as log:
                proc = subprocess.Popen(
                    list(launch.argv),
                    cwd=env["LAMBDA_TASK_ROOT"],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(sock.fileno(),),
                    start_new_session=True,  # own process group: a kill takes the handler's children too
                )
        except OSError:
            ceiling.close()
            raise
        finally:
            sock.close()
        try:
            ceiling.attach(proc.pid)
        except OSError as exc:
            LOG.warning("could not put runtime %s under its memory ceiling: %s", proc.pid, exc)
        cpu = self._make_cpu_share(ceiling.name, proc.pid)
        with self._lock:  # record and state change together: the watcher removes the record under the same lock
            self._proc, self._ceiling, self._cpu = proc, ceiling, cpu
            write_record(
                self.settings.runtimes_dir,
                RuntimeRecord(
                    executor_id=self.id,
                    function_name=self._fn,
                    pid=proc.pid,
                    started_at=time.time(),
                    memory_mode=ceiling.mode,
                    memory_limit_mb=ceiling.limit_mb,
                    localstack_pid=os.getpid(),
                ),
            )
        threading.Thread(
            target=self._watch, args=(proc, ceiling), name=f"runtime-watch-{self.id[:8]}", daemon=True
        ).start()

    def _make_cpu_share(self, name: str, pid: int) -> CpuShare | None:
        """The runtime's MemorySize share of a vCPU (the memory ceiling's cgroup name: one cgroup under cgroup v2)."""
        memory_mb = int(self.function_version.config.memory_size or 128)
        # the function's own HARNESS_CPU_SHARE (its environment) wins over the emulator's default: a benchmark turns
        # the share on for its functions without restarting an emulator that others use with it off
        mode = str((self.function_version.config.environment or {}).get("HARNESS_CPU_SHARE") or self.settings.cpu_share)
        try:
            cpu = CpuShare(memory_mb, name=name, mode=mode.strip())
            cpu.attach(pid)
        except (CpuShareError, OSError) as exc:
            LOG.warning("%s: cpu share: unavailable (%s)", self._fn, exc)
            return None
        if cpu.mode not in _cpu_logged:
            _cpu_logged.add(cpu.mode)
            LOG.info("local-process Lambda executor: %s", cpu.describe())
        LOG.debug("environment %s of %s: %s", self.id, self._fn, cpu.describe())
        return cpu

    def _kill_current(self) -> None:
        """Kill the runtime's process group, release its ceiling, CPU share and record (caller holds _lock)."""
        proc, ceiling, cpu = self._proc, self._ceiling, self._cpu
        self._proc = self._ceiling = self._cpu = None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                LOG.warning("runtime %s did not exit after SIGKILL", proc.pid)
        if ceiling is not None:
            ceiling.close()
        if cpu is not None:
            cpu.close()
        remove_record(self.settings.runtimes_dir, self.id)

    def _watch(self, proc: subprocess.Popen, ceiling: MemoryCeiling) -> None:
        """Answer at once when the runtime dies on its own (instead of LocalStack's 905 s wait)."""
        returncode = proc.wait()
        with self._lock:
            if proc is not self._proc or self._stopped:
                return  # we killed it (timeout, stop) or replaced it
            oom = ceiling.exceeded()
            cpu, self._cpu = self._cpu, None
            self._proc = self._ceiling = None
            request_id = self._pending
            offset = self._pending_offset
            remove_record(self.settings.runtimes_dir, self.id)
        ceiling.close()
        if cpu is not None:
            cpu.close()
        cause = " after passing its memory ceiling" if oom else ""
        if not oom and returncode in (-signal.SIGABRT, 134):  # V8 aborted at its heap limit (Node.js runtimes)
            oom = V8_HEAP_EXHAUSTED in self._partial_logs(offset if request_id is not None else 0)
            cause = " at V8's heap limit (JavaScript heap out of memory)" if oom else ""
        reason = _exit_reason(returncode)
        error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
        LOG.info("runtime %s of %s exited (%s)%s", proc.pid, self._fn, reason, cause)
        if request_id is None:
            doc = {"errorMessage": f"Runtime exited with error: {reason}", "errorType": error_type}
            self.executor_endpoint.fail_startup(json.dumps(doc).encode())
            return
        message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
        memory = ceiling.limit_mb if oom else None
        logs = (
            self._partial_logs(offset)
            + f"{message}\n{error_type}\n"
            + self._end_lines(request_id, None, memory, f"Status: error\tError Type: {error_type}")
        )
        self.executor_endpoint._resolve(
            InvocationResult(
                request_id,
                json.dumps({"errorType": error_type, "errorMessage": message}).encode(),
                is_error=True,
                logs=logs,
            )
        )

    def _partial_logs(self, offset: int) -> str:
        try:
            with open(self._log_path, "rb") as f:
                f.seek(offset)
                data = f.read(LOG_TAIL_BYTES)
        except OSError:
            return ""
        text = data.decode(errors="replace")
        return text if not text or text.endswith("\n") else text + "\n"

    def _end_lines(self, request_id: str, duration_s: float | None, max_mb: float | None, status: str) -> str:
        mem = self.function_version.config.memory_size
        duration = (
            f"\tDuration: {duration_s * 1000:.2f} ms\tBilled Duration: {int(duration_s * 1000)} ms"
            if duration_s
            else ""
        )
        used = f"\tMax Memory Used: {int(max_mb)} MB" if max_mb is not None else ""
        return (
            f"END RequestId: {request_id}\nREPORT RequestId: {request_id}{duration}\tMemory Size: {mem} MB"
            f"{used}\t{status}\n"
        )

    # ---- invocations ------------------------------------------------------------------------------------------
    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = str(payload.get("invoke-id") or "")
        timeout_s = float(self.function_version.config.timeout or 3)
        with self._invoke_lock:
            if self._stopped:
                raise LambdaRuntimeException(f"Execution environment {self.id} is stopped")
            with self._lock:
                alive = self._proc is not None and self._proc.poll() is None
            if not alive:
                init_error = self._restart(request_id)
                if init_error is not None:
                    return init_error
            fut = self.executor_endpoint.begin_invocation()
            with self._lock:
                self._pending = request_id
                try:
                    self._pending_offset = self._log_path.stat().st_size
                except OSError:
                    self._pending_offset = 0
            deadline = time.monotonic() + timeout_s
            try:
                try:
                    response = self.executor_endpoint.post_invoke(payload)
                except requests.exceptions.ConnectionError:
                    response = None  # the runtime died under us: the watcher answers the future...
                    with self._lock:
                        gone = self._proc is None or self._proc.poll() is not None
                    if gone and not fut.done():  # ...unless it died before this invocation was registered
                        doc = {
                            "errorType": "Runtime.ExitError",
                            "errorMessage": f"RequestId: {request_id} Error: Runtime exited before the invocation",
                        }
                        return InvocationResult(request_id, json.dumps(doc).encode(), is_error=True, logs="")
                if response is not None and not response.ok:
                    raise InvokeSendError(f"runtime of {self._fn} refused the invocation: HTTP {response.status_code}")
                try:
                    return fut.result(timeout=max(0.0, deadline - time.monotonic()))
                except FutureTimeout:
                    return self._timed_out(fut, request_id, timeout_s)
            finally:
                with self._lock:
                    self._pending = None

    def _restart(self, request_id: str) -> InvocationResult | None:
        """Start a fresh runtime after a timeout/crash/OOM; an init failure becomes this invocation's error."""
        self.executor_endpoint.startup_future = Future()
        try:
            self._spawn()
            self.executor_endpoint.startup_future.result(timeout=ls_config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT)
        except StatusErrorException as exc:
            with self._lock:
                self._kill_current()
            return InvocationResult(request_id, exc.payload, is_error=True, logs=self._partial_logs(0)[-4096:])
        except (FutureTimeout, CancelledError) as exc:
            with self._lock:
                self._kill_current()
            raise LambdaRuntimeException(f"runtime of {self._fn} did not become ready: {exc!r}") from exc
        return None

    def _timed_out(self, fut: Future, request_id: str, timeout_s: float) -> InvocationResult:
        with self._lock:
            self._pending = None
            proc = self._proc
            hwm = vm_kb(proc.pid, "VmHWM") if proc is not None else None
            offset = self._pending_offset
            self._kill_current()
        if fut.done() and not fut.cancelled():
            return fut.result()  # answered right at the deadline
        LOG.info("invocation %s of %s timed out after %.2f s: runtime killed", request_id, self._fn, timeout_s)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        logs = (
            self._partial_logs(offset)
            + f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds\n\n"
            + self._end_lines(request_id, timeout_s, None if hwm is None else hwm / 1024, "Status: timeout")
        )
        body = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
        }
        return InvocationResult(request_id, json.dumps(body).encode(), is_error=True, logs=logs)

    # ---- LocalStack's executor interface ------------------------------------------------------------------
    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return f"http://127.0.0.1:{ls_config.GATEWAY_LISTEN[0].port}{self.executor_endpoint.get_endpoint_prefix()}"

    def get_logs(self) -> str:
        if self._workdir is None:
            return ""
        try:
            size = self._log_path.stat().st_size
        except OSError:
            return ""
        return self._partial_logs(max(0, size - LOG_TAIL_BYTES))

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        config = function_version.config
        if config.package_type != PackageType.Zip:
            raise LambdaRuntimeException("The local-process executor runs Zip packages only (no container images)")
        runtime = str(getattr(config.runtime, "value", config.runtime) or "")
        try:
            check_supported(runtime)
        except RuntimeUnavailable as exc:
            raise LambdaRuntimeException(str(exc)) from exc
        sweep_stale_state()
        if config.code:
            config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # environments remove their own folders; LocalStack owns the unzipped code

    @classmethod
    def validate_environment(cls) -> bool:
        python = settings().python
        if not python.exists():
            LOG.warning("HARNESS_LAMBDA_PYTHON %s does not exist: Lambda environments cannot start", python)
            return False
        return True


def _unzipped_code(code: Any, function_name: str) -> Path:
    """The function's unzipped code, unzipped again when its folder has gone since the version was prepared (LocalStack
    removes a code's folder when no version uses it any more: a version still starting then found no folder)."""
    folder = Path(code.get_unzipped_code_location())
    if not folder.is_dir():
        LOG.warning("%s: code folder %s missing at an environment's start; unzipping it again", function_name, folder)
        try:
            code.prepare_for_execution()
        except Exception as exc:  # noqa: BLE001 - the archive itself is gone (function deleted or code replaced)
            raise LambdaRuntimeException(
                f"CODE_FOLDER_MISSING: {function_name}'s code folder {folder} is gone and could not be unzipped again "
                f"({type(exc).__name__}: {exc})"
            ) from exc
    return folder


_swept = threading.Event()


def sweep_stale_state() -> None:
    """Remove folders and records left by a LocalStack that died without stopping its environments."""
    if _swept.is_set():
        return
    _swept.set()
    s = settings()
    sweep_stale(s.runtimes_dir)
    remove_stale_cgroups(WORKDIR_PREFIX)
    remove_stale_cpu_cgroups(WORKDIR_PREFIX)
    for folder in s.tmp_root.glob(f"{WORKDIR_PREFIX}*"):
        try:
            owner = int(folder.name[len(WORKDIR_PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if owner != os.getpid() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(folder, ignore_errors=True)
