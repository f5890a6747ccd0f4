"""The dependency lock files: which sources each one is compiled from, and what a lock file records (stdlib only)."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from common.errors import CodedError, expected
from common.paths import LOCK_DIR, ROOT

PYPROJECT = "pyproject.toml"
EMULATOR_REQUIREMENTS = "harness/requirements/emulator.txt"
EMULATOR_CONSTRAINTS = "harness/requirements/emulator-constraints.txt"
# The header line of every lock that names the digest of the sources it was compiled from.
DIGEST_PREFIX = "# sources-sha256: "


class LockError(CodedError):
    """A lock file is missing, unreadable, or its sources are."""


@dataclass(frozen=True)
class LockSpec:
    """One lock file: the requirement lists it is compiled from and the `uv pip compile` options that fix its target."""

    name: str  # the file is <lock dir>/<name>.txt
    about: str  # what the lock is for, written into its header
    dependencies: bool = False  # pyproject.toml [project] dependencies
    extras: tuple[str, ...] = ()  # pyproject.toml [project.optional-dependencies] lists
    requirement_files: tuple[str, ...] = ()  # repository-relative requirements files ...
    constraint_files: tuple[str, ...] = ()  # ... and constraints files
    options: tuple[str, ...] = ()  # target interpreter/platform and build policy, passed to uv pip compile

    def path(self, lock_dir: Path = LOCK_DIR) -> Path:
        return lock_dir / f"{self.name}.txt"

    def sources(self, root: Path = ROOT) -> str:
        """What the lock is compiled from, as text ("-" for a requirements list taken from pyproject.toml)."""
        parts = []
        if self.dependencies or self.extras:
            lists = (["[project] dependencies"] if self.dependencies else []) + [f"extra {x}" for x in self.extras]
            parts.append(f"{PYPROJECT} " + ", ".join(lists))
        parts += [f"-r {f}" for f in self.requirement_files] + [f"-c {f}" for f in self.constraint_files]
        return "; ".join(parts)


# The Lambda python3.13 runtime runs on Amazon Linux 2023 (glibc 2.34). pyvips is published as an sdist only (a
# pure-Python package): every other distribution of the zip must be a manylinux wheel.
_LAMBDA_OPTIONS = ("--python-version", "3.13", "--only-binary", ":all:", "--no-binary", "pyvips")
SPECS: tuple[LockSpec, ...] = (
    LockSpec(
        "project",
        "the project venv (.venv): harness, handlers run locally, tests, CDK, benchmarks",
        dependencies=True,
        extras=("lambda", "dev", "cdk", "bench"),
        options=("--universal", "--python-version", "3.12", "--generate-hashes"),
    ),
    LockSpec(
        "emulator",
        "the emulator venv (.venv-emulator): localstack-core 2026.3.0 on CPython 3.13",
        requirement_files=(EMULATOR_REQUIREMENTS,),
        constraint_files=(EMULATOR_CONSTRAINTS,),
        options=("--python-version", "3.13", "--python-platform", "x86_64-manylinux_2_28", "--generate-hashes"),
    ),
    LockSpec(
        "lambda-arm64",
        "the Lambda zip for arm64 (make package ARCH=arm64)",
        extras=("lambda",),
        options=(*_LAMBDA_OPTIONS, "--python-platform", "aarch64-manylinux_2_34"),
    ),
    LockSpec(
        "lambda-x86_64",
        "the Lambda zip for x86_64 (make package ARCH=x86_64)",
        extras=("lambda",),
        options=(*_LAMBDA_OPTIONS, "--python-platform", "x86_64-manylinux_2_34"),
    ),
)
LAMBDA_LOCKS: dict[str, LockSpec] = {"arm64": SPECS[2], "x86_64": SPECS[3]}


def spec(name: str) -> LockSpec:
    for s in SPECS:
        if s.name == name:
            return s
    raise LockError("UNKNOWN_LOCK", expected(f"one of {'|'.join(s.name for s in SPECS)}", "lock name", name))


def _pyproject(root: Path) -> dict:
    try:
        return tomllib.loads((root / PYPROJECT).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LockError("PYPROJECT_UNREADABLE", f"cannot read {root / PYPROJECT}: {exc}") from exc


def exclude_newer(root: Path = ROOT) -> str:
    """The upload-date cut-off every lock is resolved at ([tool.harness.lock] exclude-newer): it makes `make lock`
    reproduce the same files later; move it forward to take newer releases."""
    value = _pyproject(root).get("tool", {}).get("harness", {}).get("lock", {}).get("exclude-newer")
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value):
        raise LockError("LOCK_SETTINGS", expected("an RFC 3339 UTC time", "[tool.harness.lock] exclude-newer", value))
    return value


def requirements(lock: LockSpec, root: Path = ROOT) -> list[str]:
    """The requirement strings a lock takes from pyproject.toml, in order (dependencies first, then each extra)."""
    project = _pyproject(root).get("project", {})
    found = list(project.get("dependencies", [])) if lock.dependencies else []
    extras = project.get("optional-dependencies", {})
    for extra in lock.extras:
        if extra not in extras:
            raise LockError("LOCK_SOURCES", expected(f"an extra {extra!r} in {PYPROJECT}", lock.name, sorted(extras)))
        found += extras[extra]
    return found


def source_digest(lock: LockSpec, root: Path = ROOT) -> str:
    """sha256 of everything the lock is compiled from: its pyproject lists, its files, its options and the cut-off.

    Comments and formatting of pyproject.toml do not count; every byte of a requirements/constraints file does.
    """
    files = {}
    for rel in lock.requirement_files + lock.constraint_files:
        try:
            files[rel] = (root / rel).read_text()
        except OSError as exc:
            raise LockError("LOCK_SOURCES", f"cannot read {rel} for the {lock.name} lock: {exc}") from exc
    doc = {
        "name": lock.name,
        "requirements": requirements(lock, root),
        "files": files,
        "options": list(lock.options),
        "exclude_newer": exclude_newer(root),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def recorded_digest(text: str) -> str | None:
    """The sources digest a lock file's header records, or None when it has none."""
    for line in text.splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line[len(DIGEST_PREFIX) :].strip()
        if line and not line.startswith("#"):
            break
    return None


@dataclass(frozen=True)
class Pin:
    """One locked distribution: its name as the lock spells it, exact version, and environment marker if any."""

    name: str
    version: str
    marker: str | None = None

    @property
    def key(self) -> str:
        """The normalised project name (PEP 503), e.g. typing-extensions for Typing_Extensions."""
        return normalise(self.name)

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*(.*?))?\s*\\?\s*$")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(text: str) -> tuple[Pin, ...]:
    """The `name==version [; marker]` lines of a lock (hash and comment lines skipped)."""
    pins = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith((" ", "\t", "#", "-")):
            continue
        m = _PIN.match(line)
        if not m:
            raise LockError("LOCK_UNREADABLE", expected("a 'name==version' line", f"lock line {number}", line))
        pins.append(Pin(m.group(1), m.group(2), m.group(3) or None))
    return tuple(pins)


def read_lock(lock: LockSpec, lock_dir: Path = LOCK_DIR) -> tuple[Pin, ...]:
    path = lock.path(lock_dir)
    try:
        text = path.read_text()
    except OSError as exc:
        raise LockError("LOCK_MISSING", f"cannot read {path} (run `make lock`): {exc}") from exc
    return parse_pins(text)


def lambda_pins(arch: str, lock_dir: Path = LOCK_DIR) -> tuple[Pin, ...]:
    """Every distribution the Lambda zip for `arch` carries, exactly as requirements/lambda-<arch>.txt pins it."""
    if arch not in LAMBDA_LOCKS:
        raise LockError("UNKNOWN_LOCK", expected(f"one of {'|'.join(LAMBDA_LOCKS)}", "Lambda architecture", arch))
    return read_lock(LAMBDA_LOCKS[arch], lock_dir)
