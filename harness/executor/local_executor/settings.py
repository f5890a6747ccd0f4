"""Executor settings read from LocalStack's environment, once (the only module of the plugin that reads os.environ)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .artifact import ArtifactSettings
from .cpushare import MODES as CPU_SHARE_MODES
from .memlimit import MODES

# harness/executor/local_executor/settings.py -> the repository root is three folders up
REPO_ROOT = Path(__file__).resolve().parents[3]
NODE_ROOT = Path(__file__).resolve().parents[1] / "node"  # make node-runtimes: node/<major>/node_modules/.bin/node
NODE_MAJORS = (20, 22)


class ExecutorSettingsError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class ExecutorSettings:
    """HARNESS_LAMBDA_PYTHON   interpreter of the execution environments (default <repo>/.venv/bin/python)
    HARNESS_HOME              state folder; live environments are recorded in <HARNESS_HOME>/runtimes/<id>.json
    HARNESS_LAMBDA_MEMORY     memory ceiling mode: auto (cgroup v2, else v1, else RSS watchdog) | cgroup2 | cgroup1
                              | rss | off  (default auto)
    HARNESS_CPU_SHARE         CPU of each environment: auto (its MemorySize's share of a vCPU, 1 at 1769 MB, as a cgroup
                              quota where writable) | off  (default off; a function's own HARNESS_CPU_SHARE in its
                              environment wins, as `make bench-pipeline` sets it; local_executor/cpushare.py)
    HARNESS_ESM_DEFAULT_CONCURRENCY  SQS mapping lanes when ScalingConfig.MaximumConcurrency is unset (default: cores)
    HARNESS_ESM_MAX_LANES     hard cap on lanes per mapping on this machine (default 16)
    HARNESS_ESM_LONG_POLL_SEC SQS long-poll wait of mappings without a batching window (default 3; 0 = short polls)
    HARNESS_LAMBDA_NODE20 / HARNESS_LAMBDA_NODE22  node binary of nodejs20.x / nodejs22.x (default: the one
                              `make node-runtimes` installed under harness/executor/node/<major>/, else `node` on PATH)
    HARNESS_ARTIFACT_PYTHON / HARNESS_ARM64_ROOT / HARNESS_QEMU_AARCH64  artifact mode (see artifact.ArtifactSettings)
    """

    python: Path
    home: Path | None
    memory_mode: str
    esm_default_concurrency: int
    esm_max_lanes: int
    esm_long_poll_s: int
    tmp_root: Path
    node_overrides: tuple[tuple[int, Path], ...] = ()  # (major, binary) from HARNESS_LAMBDA_NODE<major>
    node_root: Path = NODE_ROOT
    artifact: ArtifactSettings | None = None  # artifact mode (local_executor/artifact.py documents its variables)
    cpu_share: str = "off"  # HARNESS_CPU_SHARE (a function's own environment wins)

    @property
    def runtimes_dir(self) -> Path | None:
        return None if self.home is None else self.home / "runtimes"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExecutorSettings:
        env = os.environ if env is None else env
        python = Path(env.get("HARNESS_LAMBDA_PYTHON") or REPO_ROOT / ".venv" / "bin" / "python")
        mode = env.get("HARNESS_LAMBDA_MEMORY") or "auto"
        if mode not in MODES:
            raise ExecutorSettingsError(
                "INVALID_MEMORY_MODE",
                f"Expected one of {', '.join(MODES)} for HARNESS_LAMBDA_MEMORY but received {mode!r}",
            )
        cpu_share = (env.get("HARNESS_CPU_SHARE") or "off").strip()
        if cpu_share not in CPU_SHARE_MODES:
            raise ExecutorSettingsError(
                "INVALID_CPU_SHARE",
                f"Expected one of {', '.join(CPU_SHARE_MODES)} for HARNESS_CPU_SHARE but received {cpu_share!r}",
            )
        home = Path(env["HARNESS_HOME"]) if env.get("HARNESS_HOME") else None
        artifact = ArtifactSettings.from_env(
            env,
            repo_root=REPO_ROOT,
            venv_python=python,
            state_dir=home if home is not None else Path(tempfile.gettempdir()) / "harness-local-executor",
        )
        return cls(
            python=python,
            home=home,
            memory_mode=mode,
            esm_default_concurrency=_positive_int(env, "HARNESS_ESM_DEFAULT_CONCURRENCY", os.cpu_count() or 2),
            esm_max_lanes=_positive_int(env, "HARNESS_ESM_MAX_LANES", 16),
            esm_long_poll_s=_positive_int(env, "HARNESS_ESM_LONG_POLL_SEC", 3, allow_zero=True),
            tmp_root=Path(tempfile.gettempdir()),
            node_overrides=tuple(
                (major, Path(env[f"HARNESS_LAMBDA_NODE{major}"]))
                for major in NODE_MAJORS
                if env.get(f"HARNESS_LAMBDA_NODE{major}")
            ),
            artifact=artifact,
            cpu_share=cpu_share,
        )


def _positive_int(env: Mapping[str, str], name: str, default: int, allow_zero: bool = False) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or (value == 0 and not allow_zero):
        kind = "a non-negative integer" if allow_zero else "a positive integer"
        raise ExecutorSettingsError("INVALID_SETTING", f"Expected {kind} for {name} but received {text!r}")
    return value
