"""The lock files in requirements/ match their sources (offline): each requirement is met by its locked version and
each header's sources digest is that of today's sources. Shown to bite on copies with a changed bound."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from common.locks import (
    EMULATOR_CONSTRAINTS,
    EMULATOR_REQUIREMENTS,
    PYPROJECT,
    SPECS,
    LockError,
    LockSpec,
    lambda_pins,
    normalise,
    parse_pins,
    recorded_digest,
    requirements,
    source_digest,
)
from common.paths import LOCK_DIR, ROOT

# The environment the locks are made for (markers of the requirements are evaluated against it).
TARGET_ENV = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
}


def _file_requirements(path: Path) -> list[str]:
    found = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            found.append(line)
    return found


def drift(root: Path, lock_dir: Path) -> list[str]:
    """Every way the locks under lock_dir disagree with the sources under root (empty: they agree)."""
    problems: list[str] = []
    for lock in SPECS:
        path = lock.path(lock_dir)
        if not path.is_file():
            problems.append(f"{lock.name}: {path.name} is missing (run make lock)")
            continue
        text = path.read_text()
        if recorded_digest(text) != source_digest(lock, root):
            problems.append(f"{lock.name}: its sources changed since it was made (run make lock)")
        pins = {p.key: p for p in parse_pins(text)}
        needed = requirements(lock, root) + [r for f in lock.requirement_files for r in _file_requirements(root / f)]
        constraints = [r for f in lock.constraint_files for r in _file_requirements(root / f)]
        for text_req, must_be_locked in [(r, True) for r in needed] + [(r, False) for r in constraints]:
            req = Requirement(text_req)
            if req.marker is not None and not req.marker.evaluate(TARGET_ENV):
                continue
            pin = pins.get(normalise(req.name))
            if pin is None:
                if must_be_locked:
                    problems.append(f"{lock.name}: {req} is not locked")
            elif not req.specifier.contains(pin.version, prereleases=True):
                problems.append(f"{lock.name}: {pin} does not satisfy {req}")
    return problems


def _copy_sources(dest: Path) -> tuple[Path, Path]:
    """pyproject.toml, harness/requirements/ and requirements/ copied under dest: (root, lock dir)."""
    shutil.copy(ROOT / PYPROJECT, dest / PYPROJECT)
    for rel in (EMULATOR_REQUIREMENTS, EMULATOR_CONSTRAINTS):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, dest / rel)
    shutil.copytree(LOCK_DIR, dest / "requirements")
    return dest, dest / "requirements"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _pin(locks: Path, lock: str, key: str) -> str:
    return next(str(p) for p in parse_pins((locks / f"{lock}.txt").read_text()) if p.key == key)


def test_the_committed_locks_match_their_sources() -> None:
    assert {s.name for s in SPECS} == {"project", "emulator", "lambda-arm64", "lambda-x86_64"}
    problems = drift(ROOT, LOCK_DIR)
    assert not problems, "the locks drifted from their sources:\n" + "\n".join(problems)


def test_the_locks_pin_what_the_tree_relies_on() -> None:
    emulator = {p.key: p.version for p in parse_pins((LOCK_DIR / "emulator.txt").read_text())}
    assert emulator["localstack-core"] == "2026.3.0"
    for arch in ("arm64", "x86_64"):
        pins = {p.key: p.version for p in lambda_pins(arch)}
        # the handlers' runtime and what pyvips[binary] brings; boto3 is the Lambda runtime's, never bundled
        assert {"pillow", "pyvips", "pyvips-binary", "aws-lambda-powertools", "numpy"} <= set(pins)
        assert "boto3" not in pins and "botocore" not in pins
    project = {p.key for p in parse_pins((LOCK_DIR / "project.txt").read_text())}
    assert {"ruff", "pytest", "pillow", "boto3", "aws-cdk-lib", "matplotlib", "pip"} <= project


def test_both_lambda_zips_bundle_the_same_releases_and_the_build_reads_them() -> None:
    from infra.artifact.options import BuildOptions
    from infra.artifact.pins import required_distributions

    # the emulated arm64 run and the native x86_64 reference compare thumbnails: same releases on both sides
    arm64, x86_64 = (tuple(str(p) for p in lambda_pins(arch)) for arch in ("arm64", "x86_64"))
    assert arm64 == x86_64
    for arch, pins in (("arm64", arm64), ("x86_64", x86_64)):
        assert BuildOptions(arch=arch).requirements == pins
        assert required_distributions(arch) == {p.split("==")[0].replace("-", "_"): p.split("==")[1] for p in pins}


def test_a_changed_bound_in_pyproject_is_drift(tmp_path: Path) -> None:
    root, locks = _copy_sources(tmp_path)
    assert drift(root, locks) == []  # the copy agrees, like the tree
    _edit(root / PYPROJECT, '"Pillow>=11.0,<14"', '"Pillow>=13.1,<14"')
    problems = drift(root, locks)
    for name in ("project", "lambda-arm64", "lambda-x86_64"):
        assert f"{name}: its sources changed since it was made (run make lock)" in problems
        assert f"{name}: {_pin(locks, name, 'pillow')} does not satisfy Pillow<14,>=13.1" in problems
    assert not [p for p in problems if p.startswith("emulator:")]


def test_a_new_requirement_and_a_changed_emulator_pin_are_drift(tmp_path: Path) -> None:
    root, locks = _copy_sources(tmp_path)
    _edit(root / PYPROJECT, '"matplotlib>=3.9,<4",', '"matplotlib>=3.9,<4",\n    "left-pad-never-locked>=1",')
    _edit(root / EMULATOR_CONSTRAINTS, "cbor2==5.9.0", "cbor2==5.8.0")
    problems = drift(root, locks)
    assert "project: left-pad-never-locked>=1 is not locked" in problems
    assert "emulator: its sources changed since it was made (run make lock)" in problems
    assert f"emulator: {_pin(locks, 'emulator', 'cbor2')} does not satisfy cbor2==5.8.0" in problems


def test_a_hand_edited_lock_is_drift(tmp_path: Path) -> None:
    root, locks = _copy_sources(tmp_path)
    lock = locks / "lambda-arm64.txt"
    lock.write_text(re.sub(r"(?m)^numpy==\S+", "numpy==1.26.4", lock.read_text()))
    assert "lambda-arm64: numpy==1.26.4 does not satisfy numpy<3,>=2.0" in drift(root, locks)
    (locks / "emulator.txt").unlink()
    assert "emulator: emulator.txt is missing (run make lock)" in drift(root, locks)


def test_only_the_sources_count_not_pyproject_comments(tmp_path: Path) -> None:
    root, locks = _copy_sources(tmp_path)
    _edit(root / PYPROJECT, "[project.optional-dependencies]", "# a new comment\n[project.optional-dependencies]")
    assert drift(root, locks) == []
    pyproject = root / PYPROJECT
    pyproject.write_text(
        re.sub(r'(?m)^exclude-newer = ".*"$', 'exclude-newer = "2099-01-01T00:00:00Z"', pyproject.read_text())
    )
    assert drift(root, locks) == [f"{s.name}: its sources changed since it was made (run make lock)" for s in SPECS]


def test_pins_are_read_with_markers_and_hashes() -> None:
    text = (
        "# header\n# sources-sha256: abc\n"
        "librt==0.17.0 ; platform_python_implementation != 'PyPy' \\\n"
        "    --hash=sha256:00\n    # via mypy\n"
        "Typing_Extensions==4.16.0\n"
    )
    pins = parse_pins(text)
    assert [(p.key, p.version, p.marker) for p in pins] == [
        ("librt", "0.17.0", "platform_python_implementation != 'PyPy'"),
        ("typing-extensions", "4.16.0", None),
    ]
    assert recorded_digest(text) == "abc"
    assert recorded_digest("airspeed==1\n# sources-sha256: late\n") is None  # only the header counts
    with pytest.raises(LockError) as err:
        parse_pins("pillow>=13\n")
    assert err.value.code == "LOCK_UNREADABLE"


def test_bad_names_get_coded_errors(tmp_path: Path) -> None:
    with pytest.raises(LockError) as err:
        lambda_pins("sparc")
    assert err.value.code == "UNKNOWN_LOCK"
    with pytest.raises(LockError) as err:
        requirements(LockSpec("x", "x", extras=("nope",)), ROOT)
    assert err.value.code == "LOCK_SOURCES"
    with pytest.raises(LockError) as err:
        lambda_pins("arm64", tmp_path)
    assert err.value.code == "LOCK_MISSING"
