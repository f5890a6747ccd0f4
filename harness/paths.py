"""Where the harness's venvs and plugin live (no environment reads: see settings; repo paths: common.paths)."""

from __future__ import annotations

from pathlib import Path

from common.paths import ROOT

PROJECT_VENV = ROOT / ".venv"
EMULATOR_VENV = ROOT / ".venv-emulator"
EXECUTOR_PLUGIN_DIR = ROOT / "harness" / "executor"
REQUIREMENTS_DIR = ROOT / "harness" / "requirements"


def project_python() -> Path:
    """The interpreter of the project venv (also the Lambda 'layer' interpreter by default)."""
    return PROJECT_VENV / "bin" / "python"


def emulator_python() -> Path:
    return EMULATOR_VENV / "bin" / "python"
