"""`make bench-pipeline` end to end in quick mode (tiny counts): locally with the latency model and the CPU share, and
with --target against a stack deployed through CloudFormation, the emulator standing in for a remote account."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.pipeline.run import main
from harness.settings import HarnessSettings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

TARGET_FIELDS = {"target", "backend", "measured", "limit", "met", "margin_pct", "unit"}
QUICK = ["--quick", "--backends", "pillow", "--memory", "1024,1769", "--batch-size", "3"]


def _check_report(out: Path) -> dict[str, Any]:
    results = json.loads((out / "results.json").read_text())
    assert (out / "power-tuning.png").stat().st_size > 1000
    md = (out / "report.md").read_text()
    assert "## Targets" in md and "## Recommendation per backend" in md
    curves = results["curves"]["pillow"]
    for mode in ("sequential", "overlap"):
        mems = [p["memory_mb"] for p in curves[mode]]
        assert mems == [1024, 1769]
        for p in curves[mode]:
            assert p["billed_ms_per_image_p50"] > 0 and p["usd_per_million"]["x86_64"] > 0
            assert 0 < p["max_memory_used_mb"] <= p["memory_mb"]
    # every measured batch: a REPORT line with billed ms, 3 images, no failures
    invs = results["invocations"]
    assert len(invs) == 2 * 2 and all(i["images"] == 3 and i["billed_ms"] > 0 and i["failures"] == 0 for i in invs)
    rec = results["recommendations"]["pillow"]
    assert rec["memory_mb"] in (1024, 1769) and rec["usd_per_million"] > 0
    assert len(results["targets"]) == 4 and all(set(t) >= TARGET_FIELDS for t in results["targets"])
    assert "1769" in results["paired_ratio_overlap_vs_sequential"]["pillow"]
    return results


def test_quick_local_run_has_the_report_fields(
    emulator: Any, harness_settings: HarnessSettings, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    assert main([*QUICK, "--out", str(out)]) == 0
    results = _check_report(out)
    assert results["mode"] == "local"
    assert results["latency_model"]["get_first_byte_ms"] > 0 and results["latency_s_added"] > 0
    assert "HARNESS_CPU_SHARE=" in results["cpu_share"]
    # the run's resize ms came out of the handler's log lines
    assert any(p["resize_ms_per_image"] for p in results["curves"]["pillow"]["sequential"])
    assert sum(results["cleanup"].values()) > 0  # its own prefix deleted


STACK = "bptarget"


@pytest.fixture(scope="module")
def deployed_stack(emulator: Any, harness_settings: HarnessSettings) -> Iterator[str]:
    from infra.cdk.deploy import CdkTarget, deploy, destroy
    from infra.cdk.synth import CDK_CLI

    if shutil.which("node") is None or not CDK_CLI.exists():
        pytest.skip("needs node + the aws-cdk CLI")
    target = CdkTarget(region=harness_settings.region, endpoint=harness_settings.endpoint)
    deploy(target, stack=STACK)
    try:
        yield STACK
    finally:
        destroy(target, stack=STACK)


@pytest.mark.cdk
def test_quick_run_against_a_target_measures_it_as_it_is(
    deployed_stack: str, harness_settings: HarnessSettings, tmp_path: Path, aws: Any
) -> None:
    endpoint = harness_settings.endpoint
    base = ["--target", deployed_stack, "--endpoint-url", endpoint, "--as-remote"]
    # a remote account needs --yes after the printed estimate
    assert main([*QUICK, *base, "--out", str(tmp_path / "refused")]) == 2
    lam = aws("lambda")
    from harness.target import resolve

    fn = resolve(deployed_stack, endpoint_url=endpoint).outputs.function_name
    before = lam.get_function_configuration(FunctionName=fn)
    out = tmp_path / "bench"
    assert main([*QUICK, *base, "--yes", "--out", str(out)]) == 0
    results = _check_report(out)
    assert results["mode"] == "target" and results["latency_model"] is None
    assert "cannot set an S3 latency model or a CPU share" in results["note"]
    assert (
        "no latency model" in (out / "report.md").read_text()
        or "none (a deployed target" in (out / "report.md").read_text()
    )
    after = lam.get_function_configuration(FunctionName=fn)
    assert after["MemorySize"] == before["MemorySize"]
    assert after.get("Environment") == before.get("Environment")  # restored as it was
