"""Run the aws-cdk CLI (infra/cdk/node_modules) offline: `cdk synth` of the app into a cloud assembly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.paths import ROOT
from infra.errors import InfraError, InfraErrorCode

CDK_DIR = ROOT / "infra" / "cdk"
CDK_CLI = CDK_DIR / "node_modules" / ".bin" / "cdk"
DEFAULT_OUT = ROOT / "infra" / "cdk.out"
SYNTH_TIMEOUT_S = 300


@dataclass(frozen=True)
class SynthResult:
    out_dir: Path
    stack_id: str  # the main stack; an emulator twin is f"{stack_id}-emulator"
    warnings: tuple[str, ...] = ()  # CDK warnings, e.g. the stack lint's (WARNING STK002 ...)

    @property
    def template_path(self) -> Path:
        return self.template_path_of(self.stack_id)

    def template_path_of(self, stack_id: str) -> Path:
        return self.out_dir / f"{stack_id}.template.json"

    def template(self, stack_id: str | None = None) -> dict[str, Any]:
        return dict(json.loads(self.template_path_of(stack_id or self.stack_id).read_text()))


def cli_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The CLI's environment: no telemetry, no version check, no node end-of-life banner (offline, quiet)."""
    env = dict(base)
    env.update(
        {
            "CDK_DISABLE_VERSION_CHECK": "true",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "18,20",
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
            "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
            "JSII_DEPRECATED": "quiet",
        }
    )
    return env


def cdk_command(*args: str) -> list[str]:
    """argv for the pinned CLI; raises CDK_UNAVAILABLE when node or the CLI is not installed (`make cdk-cli`)."""
    if shutil.which("node") is None:
        raise InfraError(
            InfraErrorCode.CDK_UNAVAILABLE,
            "Expected node on PATH for the aws-cdk CLI but received none (install Node.js 20+)",
        )
    if not CDK_CLI.exists():
        raise InfraError(
            InfraErrorCode.CDK_UNAVAILABLE,
            f"Expected the aws-cdk CLI at {CDK_CLI} but received no file (run `make cdk-cli`)",
        )
    return [str(CDK_CLI), *args]


def context_args(context: Mapping[str, str | None]) -> list[str]:
    out: list[str] = []
    for key, value in context.items():
        if value is not None:
            out += ["-c", f"{key}={value}"]
    return out


def synth(
    *,
    stack_name: str = "thumbs",
    profile: str = "default",
    overrides: Mapping[str, str] | None = None,
    out_dir: Path | None = None,
    artifact: Path | None = None,
    qualifier: str | None = None,
    emulator_names: bool = False,
    emulator_twin: bool = False,
    env: Mapping[str, str] | None = None,
) -> SynthResult:
    """`cdk synth` (offline: no lookups, no notices) of the app; returns where the template is."""
    out = (out_dir or DEFAULT_OUT).resolve()
    context: dict[str, str | None] = {
        "stack": stack_name,
        "profile": profile,
        "set": ",".join(f"{k}={v}" for k, v in (overrides or {}).items()) or None,
        "artifact": str(artifact.resolve()) if artifact else None,
        "qualifier": qualifier,
        "target": "emulator" if emulator_names else None,
        "emulator_twin": "true" if emulator_twin else None,
    }
    argv = cdk_command(
        "synth",
        "--app",
        f"{sys.executable} -m infra.cdk.app",
        "--output",
        str(out),
        "--quiet",
        "--no-notices",
        "--no-version-reporting",
        "--no-path-metadata",
        "--no-asset-metadata",
        "--lookups=false",
        *context_args(context),
    )
    base = os.environ if env is None else env  # handed to the child unchanged (plus the quiet flags above)
    try:
        proc = subprocess.run(
            argv,
            cwd=ROOT,
            env=cli_environment(base),
            capture_output=True,
            text=True,
            timeout=SYNTH_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(InfraErrorCode.CDK_FAILED, f"cdk synth did not finish within {SYNTH_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        raise InfraError(
            InfraErrorCode.CDK_FAILED, f"cdk synth exited {proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}"
        )
    warnings = tuple(line.strip() for line in (proc.stderr or "").splitlines() if line.startswith("WARNING "))
    result = SynthResult(out, f"{stack_name}-pipeline", warnings)
    if not result.template_path.is_file():
        raise InfraError(InfraErrorCode.CDK_FAILED, f"Expected a template at {result.template_path} but received none")
    return result
