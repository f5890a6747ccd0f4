"""Artifact mode in the real pipeline: the fixture corpus through stacks whose function runs the packaged zip (arm64
under qemu, x86_64 natively) gives the same outcomes, DLQ codes and thumbnail sizes as the venv-mode stack.

The times printed (handler wall time per image, from the thumbnails' `total-ms`) show how much slower emulation is;
they measure nothing about arm64 speed: emulation checks correctness only.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from common.paths import ROOT
from common.waiting import wait_until
from harness import arm64
from harness.settings import HarnessSettings
from infra.artifact.build import default_output
from infra.deploy.outputs import StackOutputs
from thumbnailer.config import Settings
from thumbnailer.contract import ATTR_ERROR_CODE, ATTR_RUN_ID, META_HEIGHT, META_TOTAL_MS, META_WIDTH

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

# generous: under qemu one 24 MP JPEG takes tens of seconds of a shared core; outcomes, not speed, are compared
FUNCTION_TIMEOUT_S = 180
VISIBILITY_S = 6 * FUNCTION_TIMEOUT_S + 10
SETTLE_S = {"venv": 180.0, "x86_64": 300.0, "arm64": 1500.0}


@dataclass
class CorpusRun:
    """What one stack made of the corpus: per file its outcome, DLQ code and thumbnail dimensions per size."""

    stack: str
    outcomes: dict[str, str] = field(default_factory=dict)  # name -> "thumbnails" | "dlq"
    codes: dict[str, str] = field(default_factory=dict)  # name -> DLQ error_code
    dimensions: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # name -> size -> (w, h)
    handler_ms: dict[str, float] = field(default_factory=dict)  # name -> total-ms of its first thumbnail
    wall_s: float = 0.0

    def comparable(self) -> dict[str, Any]:
        return {"outcomes": self.outcomes, "codes": self.codes, "dimensions": self.dimensions}


def _deploy(settings: HarnessSettings, name: str, overrides: dict[str, str]) -> StackOutputs:
    from harness.deployment import emulator_stack, outputs_file
    from infra.deploy.apply import deploy

    stack, clients = emulator_stack(settings, name, "default", overrides)
    report = deploy(stack, clients, outputs_path=outputs_file(settings, name))
    assert report.outputs is not None
    return report.outputs


def _destroy(settings: HarnessSettings, name: str, overrides: dict[str, str]) -> None:
    from harness.deployment import emulator_stack, outputs_file
    from infra.deploy.destroy import destroy

    stack, clients = emulator_stack(settings, name, "default", overrides)
    destroy(stack, clients)
    outputs_file(settings, name).unlink(missing_ok=True)


def run_corpus(
    aws: Callable[..., Any], outputs: StackOutputs, corpus: Path, timeout_s: float, *, only: set[str] | None = None
) -> CorpusRun:
    """Upload every manifest file to the stack's input, wait until each has all thumbnails or a DLQ message."""
    s3, sqs = aws("s3"), aws("sqs")
    cfg = aws("lambda").get_function_configuration(FunctionName=outputs.function_name)
    settings = Settings.from_env(cfg.get("Environment", {}).get("Variables", {}))
    out_bucket = settings.output_bucket or outputs.input_bucket
    sizes = [s.name for s in settings.size_specs]
    manifest = [
        f for f in json.loads((corpus / "manifest.json").read_text())["fixtures"] if not only or f["name"] in only
    ]
    run_id = f"artifact-{uuid.uuid4().hex[:10]}"
    run = CorpusRun(outputs.stack_name)
    started = time.monotonic()
    for fx in manifest:
        s3.put_object(
            Bucket=outputs.input_bucket,
            Key=f"{settings.input_prefix}{run_id}/{fx['name']}",
            Body=(corpus / fx["name"]).read_bytes(),
            ContentType=fx["content_type"],
            Metadata={"run-id": run_id},
        )
    thumbs: dict[str, dict[str, str]] = {}  # "<size>/<name>" -> output key

    def poll() -> bool:
        for size in sizes:
            prefix = f"{settings.output_prefix}{size}/{run_id}/"
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=out_bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix) :].rsplit(".", 1)[0]
                    thumbs.setdefault(name, {})[size] = obj["Key"]
        resp = sqs.receive_message(
            QueueUrl=outputs.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=2, MessageAttributeNames=["All"]
        )
        for msg in resp.get("Messages", []):
            attrs = {k: v.get("StringValue", "") for k, v in msg.get("MessageAttributes", {}).items()}
            source = (json.loads(msg["Body"]).get("source") or {}).get("key", "")
            if attrs.get(ATTR_RUN_ID) == run_id or f"/{run_id}/" in source:
                run.codes[source.split(f"/{run_id}/", 1)[-1]] = attrs.get(ATTR_ERROR_CODE, "")
                sqs.delete_message(QueueUrl=outputs.dlq_url, ReceiptHandle=msg["ReceiptHandle"])
        done = {n for n, got in thumbs.items() if set(got) == set(sizes)} | set(run.codes)
        return all(fx["name"] in done for fx in manifest)

    wait_until(poll, timeout_s, interval=1.0, max_interval=5.0, what=f"{len(manifest)} uploads on {run.stack}")
    run.wall_s = time.monotonic() - started
    for fx in manifest:
        name = fx["name"]
        run.outcomes[name] = "dlq" if name in run.codes else "thumbnails"
        if name in run.codes:
            continue
        for size, key in sorted(thumbs[name].items()):
            meta = s3.head_object(Bucket=out_bucket, Key=key)["Metadata"]
            run.dimensions.setdefault(name, {})[size] = (int(meta[META_WIDTH]), int(meta[META_HEIGHT]))
            run.handler_ms.setdefault(name, float(meta[META_TOTAL_MS]))
    return run


@pytest.fixture(scope="module")
def corpus_stacks(
    emulator: Any, harness_settings: HarnessSettings
) -> Iterator[Callable[[str, dict[str, str]], StackOutputs]]:
    """Deploys stacks by name for this module and destroys them at the end."""
    made: list[tuple[str, dict[str, str]]] = []

    def make(name: str, overrides: dict[str, str]) -> StackOutputs:
        full = {"function_timeout_s": str(FUNCTION_TIMEOUT_S), "visibility_timeout_s": str(VISIBILITY_S), **overrides}
        made.append((name, full))
        return _deploy(harness_settings, name, full)

    yield make
    for name, overrides in made:
        _destroy(harness_settings, name, overrides)


@pytest.fixture(scope="module")
def venv_run(
    corpus_stacks: Callable[..., StackOutputs], aws: Callable[..., Any], generated_fixtures: Path
) -> CorpusRun:
    """The reference: the same corpus through a code=venv stack (handler code + the project venv)."""
    outputs = corpus_stacks("artvenv", {"code": "venv"})
    return run_corpus(aws, outputs, generated_fixtures, SETTLE_S["venv"])


def _require_artifact(arch: str) -> None:
    """The zip `make package ARCH=arch` builds; built here (from the lock, checked) when a clean clone has none."""
    if default_output(arch).is_file():
        return
    built = subprocess.run(
        [sys.executable, "-m", "infra.artifact", "--arch", arch],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0 and default_output(arch).is_file(), built.stdout[-2000:] + built.stderr[-2000:]


def _skip_in_docker_mode(settings: HarnessSettings) -> None:
    if settings.emulator == "docker":
        pytest.skip("docker mode: the image has no qemu-user and no arm64 root (arm64 zips run in embedded mode)")


def _report(reference: CorpusRun, run: CorpusRun, label: str, note: str) -> str:
    common = sorted(set(reference.handler_ms) & set(run.handler_ms))
    ref = statistics.median(reference.handler_ms[n] for n in common)
    got = statistics.median(run.handler_ms[n] for n in common)
    return (
        f"{label}: {len(run.outcomes)} files in {run.wall_s:.0f} s (venv {reference.wall_s:.0f} s); "
        f"handler wall time per image median {got:.0f} ms vs venv {ref:.0f} ms = {got / ref:.1f}x "
        f"({note})"
    )


def _assert_same(reference: CorpusRun, run: CorpusRun) -> None:
    assert set(reference.codes.values()) - {""}, "the corpus must produce DLQ codes to compare"
    assert run.codes == reference.codes
    assert run.outcomes == reference.outcomes
    assert run.dimensions == reference.dimensions
    assert any(v == "thumbnails" for v in run.outcomes.values())


def test_x86_64_artifact_gives_the_venv_outcomes(
    corpus_stacks: Callable[..., StackOutputs],
    aws: Callable[..., Any],
    generated_fixtures: Path,
    venv_run: CorpusRun,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _require_artifact("x86_64")
    # GIVEN a stack whose function runs the x86_64 zip on a native CPython 3.13 (nothing of the project venv)
    outputs = corpus_stacks("artx86", {"code": "artifact", "arch": "x86_64"})
    cfg = aws("lambda").get_function_configuration(FunctionName=outputs.function_name)
    assert cfg["Architectures"] == ["x86_64"] and cfg["Environment"]["Variables"]["HARNESS_CODE_MODE"] == "artifact"
    assert cfg["CodeSize"] > 10 * 1024 * 1024  # the real artifact (the code-only zip is a few hundred kB)
    # WHEN the corpus goes through it
    run = run_corpus(aws, outputs, generated_fixtures, SETTLE_S["x86_64"])
    # THEN every file ends as it did in venv mode
    _assert_same(venv_run, run)
    with capsys.disabled():
        print("\n" + _report(venv_run, run, "x86_64 artifact (native)", "same machine: the zip's wheels vs the venv's"))


@pytest.mark.arm64
def test_arm64_artifact_under_qemu_gives_the_venv_outcomes(
    corpus_stacks: Callable[..., StackOutputs],
    aws: Callable[..., Any],
    generated_fixtures: Path,
    venv_run: CorpusRun,
    harness_settings: HarnessSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _skip_in_docker_mode(harness_settings)
    _require_artifact("arm64")
    arm64.require_tool(arm64.QEMU)
    arm64.ensure_root()  # reuses .arm64/root when `make test-arm64` built it
    # GIVEN a stack whose function runs the arm64 zip on the root's aarch64 CPython 3.13 under qemu
    outputs = corpus_stacks("artarm", {"code": "artifact", "arch": "arm64"})
    cfg = aws("lambda").get_function_configuration(FunctionName=outputs.function_name)
    assert cfg["Architectures"] == ["arm64"] and cfg["Environment"]["Variables"]["HARNESS_CODE_MODE"] == "artifact"
    # WHEN the corpus goes through it
    run = run_corpus(aws, outputs, generated_fixtures, SETTLE_S["arm64"])
    # THEN every file ends as it did in venv mode, and the executor says it ran emulated
    _assert_same(venv_run, run)
    record = json.loads((harness_settings.home / "code-modes" / f"{outputs.function_name}.json").read_text())
    assert record["code_mode"] == "artifact" and record["arch"] == "arm64" and record["emulated"] is True
    assert "CPython 3.13" in record["interpreter"] and "qemu-aarch64" in record["interpreter"]
    with capsys.disabled():
        print(
            "\n"
            + _report(venv_run, run, "arm64 artifact (qemu)", "emulation: checks correctness only, not arm64 speed")
        )


def _load_smoke(settings: HarnessSettings, tmp: Path, stack: str, overrides: dict[str, str]) -> dict[str, Any]:
    """The `smoke` load scenario (100 uploads, 10 % invalid) through a stack deployed with `overrides`."""
    from harness.load.runner import LoadRun, deploy_stack
    from harness.load.scenario import load_scenario

    scenario = load_scenario("smoke")
    scenario = dataclasses.replace(scenario, drain_timeout_s=SETTLE_S["arm64"])

    def deployer(s: HarnessSettings, name: str, knobs: Mapping[str, Any]) -> StackOutputs:
        full = {"function_timeout_s": FUNCTION_TIMEOUT_S, "visibility_timeout_s": VISIBILITY_S, **knobs, **overrides}
        return deploy_stack(s, name, full)

    started = time.monotonic()
    (result,) = LoadRun(scenario, settings, tmp / stack, stack_name=stack, deployer=deployer, baseline=False).run()
    summary = dict(result.summary["accounting"], wall_s=time.monotonic() - started)
    return summary


@pytest.mark.arm64
def test_load_smoke_through_the_arm64_artifact_accounts_like_the_venv_run(
    corpus_stacks: Callable[..., StackOutputs],
    harness_settings: HarnessSettings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _skip_in_docker_mode(harness_settings)
    _require_artifact("arm64")
    arm64.ensure_root()
    # GIVEN the smoke scenario's uploads, once through a venv stack and once through the arm64 artifact under qemu
    corpus_stacks("artvenv", {"code": "venv"})  # registered for teardown; the load runner deploys it with its knobs
    corpus_stacks("artarm", {"code": "artifact", "arch": "arm64"})
    venv = _load_smoke(harness_settings, tmp_path, "artvenv", {"code": "venv"})
    arm = _load_smoke(harness_settings, tmp_path, "artarm", {"code": "artifact", "arch": "arm64"})
    # THEN every upload is accounted for in both, with the same outcome counts and DLQ codes
    for acc in (venv, arm):
        assert acc["invariant_holds"] and acc["lost"] == 0, acc
    assert arm["dlq_codes"] and arm["dlq_codes"] == venv["dlq_codes"]
    assert arm["counts"] == venv["counts"]
    with capsys.disabled():
        print(
            f"\nload smoke: venv {venv['counts']} in {venv['wall_s']:.0f} s; arm64 artifact {arm['counts']} in "
            f"{arm['wall_s']:.0f} s ({arm['wall_s'] / venv['wall_s']:.1f}x; emulation: correctness only)"
        )
