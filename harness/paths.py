"""Where the project, its venvs and its state folder live (no environment reads: see settings)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS_DIR = ROOT / "handlers"
FIXTURES_DIR = ROOT / "fixtures"
PROJECT_VENV = ROOT / ".venv"
EMULATOR_VENV = ROOT / ".venv-emulator"
EXECUTOR_PLUGIN_DIR = ROOT / "harness" / "executor"
REQUIREMENTS_DIR = ROOT / "harness" / "requirements"
SHARED_CORPORA = ROOT.parent / "shared" / "corpora"


def project_python() -> Path:
    """The interpreter of the project venv (also the Lambda 'layer' interpreter by default)."""
    return PROJECT_VENV / "bin" / "python"


def emulator_python() -> Path:
    return EMULATOR_VENV / "bin" / "python"
