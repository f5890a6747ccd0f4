"""The deploy glue only the harness needs: infra's deploy, describe and outputs bound to HarnessSettings' emulator.

Deploy outputs live at `<HARNESS_HOME>/outputs/<stack>.json` as infra.deploy.outputs.StackOutputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from harness.settings import HarnessSettings
from infra.deploy.apply import deploy
from infra.deploy.describe import describe
from infra.deploy.outputs import StackOutputs, outputs_path, read_outputs
from infra.deploy.report import DeployReport
from infra.deploy.target import Clients, Target, stack_for_target
from infra.errors import InfraError
from infra.stack import CODE_MODE_ENV, Stack


def emulator_target(settings: HarnessSettings) -> Target:
    """The emulator of `settings` as a deploy target (its endpoint and region, the test credentials)."""
    return Target.emulator(settings.endpoint, settings.region)


def emulator_clients(settings: HarnessSettings) -> Clients:
    return Clients(emulator_target(settings))


def outputs_file(settings: HarnessSettings, stack_name: str) -> Path:
    """`<HARNESS_HOME>/outputs/<stack>.json`."""
    return outputs_path(settings.home, stack_name)


def read_stack_outputs(settings: HarnessSettings, stack_name: str) -> StackOutputs | None:
    """The outputs of a stack deployed on this emulator, None if it has none; raises InfraError when the file is not
    a StackOutputs document of the current schema version (OUTPUTS_INVALID, OUTPUTS_SCHEMA_UNSUPPORTED)."""
    path = outputs_file(settings, stack_name)
    return read_outputs(path) if path.is_file() else None


def emulator_stack(
    settings: HarnessSettings, stack_name: str, profile: str = "default", overrides: Mapping[str, Any] | None = None
) -> tuple[Stack, Clients]:
    """The definition of `stack_name` for this emulator, and the clients bound to it."""
    clients = emulator_clients(settings)
    return stack_for_target(clients, stack_name, profile, dict(overrides or {})), clients


def deploy_for_harness(
    settings: HarnessSettings,
    stack_name: str = "thumbs",
    profile: str = "default",
    overrides: Mapping[str, Any] | None = None,
) -> DeployReport:
    """Deploy (or update in place) `stack_name` on the emulator of `settings`; outputs go to its outputs file."""
    stack, clients = emulator_stack(settings, stack_name, profile, overrides)
    return deploy(stack, clients, outputs_path=outputs_file(settings, stack_name))


def describe_for_harness(settings: HarnessSettings, stack_name: str = "thumbs") -> list[str]:
    """`stack <name> (profile P)` and one line per resource, with the profile/topology its outputs file records."""
    try:
        outputs = read_stack_outputs(settings, stack_name)
    except InfraError:  # an unreadable or outdated outputs file: describe the default shape anyway
        outputs = None
    profile = outputs.profile if outputs is not None else "default"
    topology = outputs.topology if outputs is not None else "direct"
    stack, clients = emulator_stack(settings, stack_name, profile, {"topology": topology})
    lines = [f"  {line}" for line in describe(stack, clients)] + [
        f"  {line}" for line in code_lines(settings, stack, clients)
    ]
    return [f"stack {stack_name} (profile {profile})"] + lines


def code_lines(settings: HarnessSettings, stack: Stack, clients: Clients) -> list[str]:
    """Per function: code mode (HARNESS_CODE_MODE, venv when unset), Architectures, and the interpreter the executor
    plugin last started it on (its record <HARNESS_HOME>/code-modes/<function>.json; none before a first start)."""
    lines = []
    names = [stack.function.name] + ([stack.notifier.name] if stack.notifier is not None else [])
    for name in names:
        try:
            cfg = clients("lambda").get_function_configuration(FunctionName=name)
        except ClientError:
            continue
        mode = (cfg.get("Environment") or {}).get("Variables", {}).get(CODE_MODE_ENV) or "venv"
        arch = ",".join(cfg.get("Architectures") or ["x86_64"])
        record = settings.home / "code-modes" / f"{name}.json"
        try:
            interpreter = json.loads(record.read_text())["interpreter"]
        except (OSError, ValueError, KeyError):
            interpreter = "not started yet"
        lines.append(f"code     {name}: {mode}, {arch}, interpreter {interpreter}")
    return lines
