"""Architecture rules as tests: every module imports in a fresh interpreter; handlers stay pure and deployable."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from common.paths import ROOT

HANDLERS = ROOT / "handlers"


def _modules(base: Path, package_root: Path) -> list[str]:
    names = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(package_root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        skip = {"executor", "cdk", "micro"}
        if parts and parts[-1] != "__main__" and not skip & set(parts) and "node_modules" not in path.parts:
            names.append(".".join(parts))
    return names


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


HANDLER_FILES = sorted(HANDLERS.rglob("*.py"))


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    modules = _modules(HANDLERS, HANDLERS) + [
        name for package in ("common", "infra", "harness", "benchmarks") for name in _modules(ROOT / package, ROOT)
    ]
    assert {"common.errors", "infra.stack", "harness.cli", "benchmarks.run"} <= set(modules)
    script = (
        "import importlib, sys, traceback\n"
        "bad = []\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        bad.append(name + ': ' + traceback.format_exc(limit=1).strip().splitlines()[-1])\n"
        "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *modules],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{HANDLERS}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"modules that fail to import:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("path", HANDLER_FILES, ids=lambda p: str(p.relative_to(HANDLERS)))
def test_handlers_import_nothing_from_harness_or_infra(path: Path) -> None:
    assert not _imports(path) & {"harness", "infra", "tests", "fixtures", "benchmarks"}


@pytest.mark.parametrize("path", HANDLER_FILES, ids=lambda p: str(p.relative_to(HANDLERS)))
def test_only_storage_uses_boto3_and_only_resizers_use_image_libraries(path: Path) -> None:
    imports = _imports(path)
    rel = path.relative_to(HANDLERS).as_posix()
    if imports & {"boto3", "botocore"}:
        assert path.stem == "storage" or rel.startswith("notifier/"), f"{rel} imports boto3"
    if imports & {"PIL", "pyvips", "simplejpeg", "webp"}:
        assert "/resizers/" in f"/{rel}", f"{rel} imports an image library"
