"""Which program runs an execution environment of a Lambda runtime (python3.x, nodejs20.x, nodejs22.x), and how."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON_BOOTSTRAP = HERE / "bootstrap.py"
NODE_BOOTSTRAP = HERE / "node_bootstrap.js"
NODE_RUNTIMES = ("nodejs20.x", "nodejs22.x")
_NODE_RUNTIME = re.compile(r"^nodejs(\d+)\.x$")
_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)")


class RuntimeUnavailable(ValueError):
    """The function's runtime cannot run here (unsupported, or no interpreter); `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class NodeBinary:
    path: Path
    version: str  # "22.23.3"

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])


@dataclass(frozen=True)
class Launch:
    """How to start one runtime process: argv, environment additions, and a notice for the function's log."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    notice: str = ""  # non-empty when the runtime runs on something other than what it names (said in every log)


def node_major(runtime: str) -> int | None:
    """22 for "nodejs22.x"; None for any other runtime name."""
    match = _NODE_RUNTIME.match(runtime)
    return int(match.group(1)) if match else None


def check_supported(runtime: str) -> None:
    """Raise RuntimeUnavailable unless the executor can run this runtime name."""
    if runtime.startswith("python3") or runtime in NODE_RUNTIMES:
        return
    raise RuntimeUnavailable(
        "UNSUPPORTED_RUNTIME",
        f"Expected a python3.x, {' or '.join(NODE_RUNTIMES)} runtime for the local-process executor but received "
        f"{runtime or None!r}",
    )


_versions: dict[Path, str | None] = {}
_versions_lock = threading.Lock()


def node_version(path: Path) -> str | None:
    """`node --version` of a binary ("22.23.3"), cached per path; None when it does not run."""
    with _versions_lock:
        if path in _versions:
            return _versions[path]
    version: str | None = None
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=20, check=False)
        match = _VERSION.match(out.stdout.strip())
        version = ".".join(match.groups()) if match else None
    except (OSError, subprocess.SubprocessError):
        version = None
    with _versions_lock:
        _versions[path] = version
    return version


def node_candidates(
    major: int, overrides: Mapping[int, Path], node_root: Path, path_env: str | None = None
) -> list[Path]:
    """Where a node for `major` may be, best first: HARNESS_LAMBDA_NODE<major>, the one make installed from npm
    (<node_root>/<major>/node_modules/.bin/node), then `node` on PATH."""
    out: list[Path] = []
    if major in overrides:
        out.append(overrides[major])
    out.append(node_root / str(major) / "node_modules" / ".bin" / "node")
    on_path = shutil.which("node", path=path_env if path_env is not None else os.environ.get("PATH"))
    if on_path:
        out.append(Path(on_path))
    return out


def find_node(
    major: int, overrides: Mapping[int, Path], node_root: Path, path_env: str | None = None
) -> tuple[NodeBinary, bool]:
    """The node binary for nodejs<major>.x and whether it is that major. When no node of that major exists, the
    first working one is returned with False (the caller must say so); RuntimeUnavailable when there is none."""
    working: list[NodeBinary] = []
    explicit = overrides.get(major)
    for path in node_candidates(major, overrides, node_root, path_env):
        if not path.exists():
            if path == explicit:
                raise RuntimeUnavailable(
                    "NODE_NOT_FOUND",
                    f"Expected a node binary at HARNESS_LAMBDA_NODE{major} but received {str(path)!r} (no such file)",
                )
            continue
        version = node_version(path)
        if version is None:
            continue
        binary = NodeBinary(path, version)
        if binary.major == major:
            return binary, True
        working.append(binary)
    if working:
        return working[0], False
    raise RuntimeUnavailable(
        "NODE_NOT_FOUND",
        f"Expected a node binary for nodejs{major}.x but received none (run 'make node-runtimes' or set "
        f"HARNESS_LAMBDA_NODE{major})",
    )


def node_heap_flags(memory_mb: int) -> tuple[str, ...]:
    """V8 heap limits sized from MemorySize as AWS's Node.js runtimes size them: a tenth for the young generation
    (semi-space = half of it), the rest for the old generation. The memory ceiling still bounds the whole process."""
    new_space = max(memory_mb // 10, 2)
    return (f"--max-semi-space-size={max(new_space // 2, 1)}", f"--max-old-space-size={max(memory_mb - new_space, 16)}")


def launch_for(
    runtime: str,
    memory_mb: int,
    *,
    python: Path,
    node_overrides: Mapping[int, Path],
    node_root: Path,
    node_options: str = "",
) -> Launch:
    """The command line and environment of a runtime process for this function configuration. Heap limits the
    function sets itself in NODE_OPTIONS replace the ones sized from MemorySize (command-line flags would win)."""
    check_supported(runtime)
    major = node_major(runtime)
    if major is None:
        if not python.exists():
            raise RuntimeUnavailable(
                "PYTHON_NOT_FOUND",
                f"Expected an interpreter at HARNESS_LAMBDA_PYTHON but received {str(python)!r} (no such file): run "
                "'make venv' or set HARNESS_LAMBDA_PYTHON",
            )
        return Launch(
            argv=(str(python), str(PYTHON_BOOTSTRAP)), env={"PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin"}
        )
    binary, exact = find_node(major, node_overrides, node_root)
    notice = (
        ""
        if exact
        else (
            f"{runtime} runs on node v{binary.version} ({binary.path}): no node {major} found "
            f"(run 'make node-runtimes' or set HARNESS_LAMBDA_NODE{major})"
        )
    )
    env = {
        "PATH": f"{binary.path.parent}:/usr/local/bin:/usr/bin:/bin",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "HARNESS_NODE_VERSION": binary.version,
    }
    if notice:
        env["HARNESS_RUNTIME_NOTICE"] = notice
    heap = () if "-space-size" in node_options else node_heap_flags(memory_mb)
    return Launch(argv=(str(binary.path), *heap, str(NODE_BOOTSTRAP)), env=env, notice=notice)
