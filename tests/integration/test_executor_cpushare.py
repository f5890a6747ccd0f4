"""The executor's CPU share through the emulator: off by default, on for a function whose own environment asks for it
(HARNESS_CPU_SHARE=auto, as `make bench-pipeline` does), with the quota of its MemorySize's share of a vCPU."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness import emulator as emu
from harness.executor.local_executor.cpushare import PERIOD_US, quota_us
from harness.settings import HarnessSettings
from tests.lambdas import create_function, unique_name

pytestmark = [pytest.mark.emulator]

# the function reads the CPU limit of its own cgroup (v2 cpu.max, else v1 cfs quota/period) from /proc and /sys
CGROUP_CPU = """
import os


def _mounts():
    for line in open("/proc/self/mountinfo"):
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) >= 5 and len(rfields) >= 3:
            yield fields[3], fields[4], rfields[0], rfields[2].split(",")


def handler(event, context):
    for line in open("/proc/self/cgroup"):
        hier, controllers, path = line.strip().split(":", 2)
        for root, mount, fstype, options in _mounts():
            if hier == "0" and fstype == "cgroup2":
                rel = path[len(root):] if root != "/" and path.startswith(root) else path
                f = mount + rel
                try:
                    quota, period = open(os.path.join(f, "cpu.max")).read().split()
                except OSError:
                    continue
                return {"mechanism": "cgroup2", "quota": None if quota == "max" else int(quota), "period": int(period)}
            if fstype == "cgroup" and "cpu" in controllers.split(",") and "cpu" in options:
                f = os.path.join(mount, path.lstrip("/"))
                try:
                    quota = int(open(os.path.join(f, "cpu.cfs_quota_us")).read())
                    period = int(open(os.path.join(f, "cpu.cfs_period_us")).read())
                except OSError:
                    continue
                return {"mechanism": "cgroup1", "quota": None if quota < 0 else quota, "period": period}
    return {"mechanism": "none", "quota": None, "period": None}
"""


@pytest.fixture
def functions(aws: Callable[..., Any]) -> Iterator[dict[str, str]]:
    lam = aws("lambda")
    names = {"default": unique_name("cpu-default"), "auto": unique_name("cpu-auto")}
    try:
        create_function(lam, names["default"], CGROUP_CPU, memory=128)
        create_function(lam, names["auto"], CGROUP_CPU, memory=128, env={"HARNESS_CPU_SHARE": "auto"})
        yield names
    finally:
        for name in names.values():
            try:
                lam.delete_function(FunctionName=name)
            except lam.exceptions.ResourceNotFoundException:
                pass


def _invoke(lam: Any, name: str) -> dict[str, Any]:
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    payload = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp, payload
    return payload


def test_the_share_is_off_by_default_and_a_function_can_ask_for_its_memory_share(
    aws: Callable[..., Any], functions: dict[str, str], harness_settings: HarnessSettings
) -> None:
    lam = aws("lambda")
    # GIVEN two 128 MB functions, one with HARNESS_CPU_SHARE=auto in its environment
    # WHEN each reads its own cgroup's CPU limit
    default, auto = _invoke(lam, functions["default"]), _invoke(lam, functions["auto"])

    # THEN the one that asked runs under 128/1769 of a vCPU, the other is not limited
    if auto["quota"] is None:
        said = [ln for ln in emu.log_text(harness_settings).splitlines() if "cpu share: unavailable" in ln]
        if said:
            pytest.skip(f"no writable cpu controller for the executor here: {said[-1].strip()[-200:]}")
        pytest.fail(f"the function that asked for its CPU share is not limited: {auto}")
    assert auto["period"] == PERIOD_US
    assert auto["quota"] == quota_us(128), auto
    assert default["quota"] is None, default  # the emulator's default (off): the whole host
