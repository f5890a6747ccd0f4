"""One load scenario end to end: deploy per backend, sample, generate, settle, collect, baseline, report."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.paths import RESULTS_DIR, ROOT
from harness.load import report as report_mod
from harness.load.baseline import measure
from harness.load.corpus import load_corpus
from harness.load.cpu import CpuSampler, cpu_reader
from harness.load.errors import STACK_UNAVAILABLE, LoadError
from harness.load.faults import start_faults
from harness.load.generator import GenerationResult, Progress, generate
from harness.load.model import PipelineTarget
from harness.load.observe import collect, settle
from harness.load.sampler import Sampler, environment_counter
from harness.load.scenario import Scenario
from harness.load.storage import AwsProbe, S3Uploader, require_loopback
from harness.settings import HarnessSettings
from harness.target import DeployedTarget, cleanup_run
from infra.deploy.outputs import StackOutputs

__all__ = ["RESULTS_DIR", "Deployer", "LoadRun", "RunResult", "cores", "deploy_stack", "new_run_id"]


def new_run_id(prefix: str = "load") -> str:
    """Short, sortable, unique: load-<yyyymmddThhmmss>-<4 hex>."""
    return f"{prefix}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _mean(values: list[Any]) -> float | None:
    nums = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(nums) / len(nums) if nums else None


Deployer = Callable[[HarnessSettings, str, Mapping[str, Any]], StackOutputs]


def deploy_stack(
    settings: HarnessSettings, stack_name: str, overrides: Mapping[str, Any], *, profile: str = "default"
) -> StackOutputs:
    """Deploy (or update in place) the pipeline stack of `profile` (infra.stack.PROFILES: default, seed) with the
    scenario's knobs (harness.deployment); its outputs."""
    try:
        from harness.deployment import deploy_for_harness
    except ImportError as exc:
        raise LoadError(
            STACK_UNAVAILABLE, f"Expected infra.deploy to deploy the stack but received ImportError: {exc}"
        ) from exc
    result = deploy_for_harness(settings, stack_name, profile, overrides)
    assert result.outputs is not None  # a deploy always reports its outputs
    return result.outputs


@dataclass
class RunResult:
    backend: str
    summary: dict[str, Any]
    out_dir: Path
    files: list[Path] = field(default_factory=list)


@dataclass
class LoadRun:
    """Runs one scenario on each of its backends against the emulator of `settings`."""

    scenario: Scenario
    settings: HarnessSettings
    out_root: Path
    stack_name: str = "load"
    deployer: Deployer = deploy_stack
    on_progress: Callable[[str, Progress], None] | None = None
    on_phase: Callable[[str], None] | None = None
    baseline: bool = True
    cancel: threading.Event = field(default_factory=threading.Event)
    # --target: an already-deployed stack (never deployed or changed here; its run prefix is deleted afterwards)
    deployed: DeployedTarget | None = None
    cleanup: bool = True  # with `deployed`: delete the run's uploads and thumbnails at the end
    stack_profile: str = "default"  # the stack profile deployed (seed: the seed replica, flat output layout)

    def _phase(self, text: str) -> None:
        if self.on_phase is not None:
            self.on_phase(text)

    def run(self) -> list[RunResult]:
        if self.deployed is None:
            require_loopback(self.settings.endpoint)
        # a deployed stack runs the backend it was deployed with
        backends = (self.deployed.backend,) if self.deployed is not None else self.scenario.backends
        results = [self.run_backend(b) for b in backends]
        if len(results) > 1:
            (self.out_root / "compare.md").write_text(
                report_mod.comparison_markdown([r.summary for r in results]), encoding="utf-8"
            )
        return results

    def overrides(self, backend: str) -> dict[str, Any]:
        sc = self.scenario
        out: dict[str, Any] = {"backend": backend, "maximum_concurrency": sc.max_concurrency or max(2, cores())}
        if sc.batch_size is not None:
            out["batch_size"] = sc.batch_size
        return out

    def run_backend(self, backend: str) -> RunResult:
        sc = self.scenario
        overrides = self.overrides(backend)
        if self.deployed is not None:
            self._phase(f"target {self.deployed.name!r} at {self.deployed.label}: as deployed (no overrides applied)")
            outputs = self.deployed.outputs
            overrides = {}
        else:
            self._phase(f"deploying stack {self.stack_name!r} with {overrides}")
            if self.deployer is deploy_stack:
                outputs = deploy_stack(self.settings, self.stack_name, overrides, profile=self.stack_profile)
            else:
                outputs = self.deployer(self.settings, self.stack_name, overrides)
        target = PipelineTarget.from_outputs(outputs)
        corpus_root = Path(sc.corpus_dir) if Path(sc.corpus_dir).is_absolute() else ROOT / sc.corpus_dir
        corpus = load_corpus(corpus_root, sc.mix)
        offsets = sc.arrival_offsets()
        items = corpus.draw(len(offsets), sc.seed)
        run_id = new_run_id(f"{sc.name[:12]}-{backend}")
        out_dir = self.out_root / backend
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.deployed is not None:
            d = self.deployed
            probe = AwsProbe(target, d.client("s3", pool=24), d.client("sqs"), d.client("logs"))
            uploader = S3Uploader(d.client("s3", pool=sc.concurrency + 4, retries=1), target.input_bucket)
        else:
            probe = AwsProbe.for_target(target, self.settings)
            uploader = S3Uploader.for_target(target, self.settings, sc.concurrency)
        sampler = Sampler(
            probe,
            interval_s=sc.sample_interval_s,
            environments=environment_counter(self.settings) if self.deployed is None else None,
            max_duration_s=sc.duration_s + sc.drain_timeout_s + 600,
        )
        cpu_sampler = CpuSampler(
            cpu_reader(Path(self.settings.home)),
            interval_s=0.25,
            max_duration_s=sc.duration_s + sc.drain_timeout_s + 600,
        )
        self._phase(
            f"run {run_id}: {len(offsets)} uploads planned over {offsets[-1] if offsets else 0:.1f} s "
            f"({sc.profile.kind}, base rate {sc.profile.rate}/s)"
        )
        processes = cores()  # raw resize on the same cores, one single-threaded process per core
        distinct = list({i.name: i.body for i in items}.values())[:200]
        sizes = outputs.sizes
        baselines: list[dict[str, Any]] = []
        baseline_errors: list[str] = []

        def run_baseline(when: str) -> None:
            if self.baseline and sc.baseline_seconds > 0:
                self._phase(
                    f"raw resize baseline ({when}): {backend}, {processes} processes, {sc.baseline_seconds:.0f} s"
                )
                try:
                    b = measure(backend, distinct, processes=processes, seconds=sc.baseline_seconds, sizes=sizes)
                except LoadError as exc:  # a failed baseline must not cost the run's observations
                    baseline_errors.append(f"{when}: {exc}")
                    self._phase(f"baseline ({when}) failed: {exc}")
                    return
                baselines.append({**b.to_dict(), "when": when, "loadavg_1m": os.getloadavg()[0]})

        run_baseline("before")
        loadavg_start = os.getloadavg()[0]
        since_ms = time.time() * 1000 - 5000
        # flat layout: outputs older than the run are earlier runs' (S3 LastModified has one-second granularity)
        probe.not_before_ms = time.time() * 1000 - 1000
        dlq_baseline = probe.depths().dlq_visible
        progress = self.on_progress
        on_progress = (lambda p: progress(backend, p)) if progress is not None else None
        injection = start_faults(sc.faults, self.settings, target, self._phase)  # [faults]: proxy + runtime killer
        sampler.start()
        cpu_sampler.start()
        try:
            generation: GenerationResult = generate(
                run_id,
                offsets,
                items,
                uploader,
                input_prefix=target.input_prefix,
                concurrency=sc.concurrency,
                max_duration_s=sc.duration_s + 5.0,
                cancel=self.cancel,
                on_progress=on_progress,
            )
            t_settle = time.monotonic()
            self._phase(
                f"uploads done ({len(generation.accepted)} accepted); waiting for the pipeline to settle "
                f"(at most {sc.drain_timeout_s:.0f} s)"
            )
            # settle polls at the sampling period: each SQS depth read costs the emulator CPU (see report "cpu")
            settled = settle(
                run_id,
                target,
                generation.expected_keys,
                timeout=sc.drain_timeout_s,
                probe=probe,
                dlq_baseline=dlq_baseline,
                interval=max(0.5, sc.sample_interval_s),
            )
            settle_s = time.monotonic() - t_settle
        finally:
            samples = sampler.stop()
            cpu_readings = cpu_sampler.stop()
            faults = injection.stop() if injection is not None else None
        self._phase("collecting outcomes (S3 metadata, DLQ, logs)")
        t_collect = time.monotonic()
        accounting = collect(
            run_id, target, generation.expected_keys, probe=probe, since_ms=since_ms, read_logs=sc.read_logs
        )
        collect_s = time.monotonic() - t_collect
        cleanup: dict[str, int] | None = None
        if self.deployed is not None and self.cleanup:
            self._phase(f"deleting this run's prefix ({run_id}) from {self.deployed.name}'s buckets")
            cleanup = cleanup_run(self.deployed, run_id)
        loadavg_end = os.getloadavg()[0]
        run_baseline("after")
        base = None
        if baselines:
            # the same resize work measured just before and just after the run; the mean damps neighbours' noise
            base = {
                **baselines[-1],
                "when": "mean of before/after",
                "images_per_s": sum(b["images_per_s"] for b in baselines) / len(baselines),
                "cpu_ms_per_image": _mean([b.get("cpu_ms_per_image") for b in baselines]),
                "runs": baselines,
            }
        summary = report_mod.summarize(
            scenario={**asdict(sc), "profile": asdict(sc.profile)},
            backend=backend,
            generation=generation,
            accounting=accounting,
            samples=samples,
            baseline=base,
            settled=settled,
            sizes=target.sizes,
            cpu_readings=cpu_readings,
            cores=processes,
            extra={
                "target": asdict(target),
                "stack": self.deployed.describe()
                if self.deployed is not None
                else {
                    "name": self.stack_name,
                    "endpoint": self.settings.endpoint,
                    "local": True,
                    "profile": self.stack_profile,
                    "outputs": outputs.to_dict(),
                },
                "cleanup": cleanup,
                "overrides": overrides,
                "cores": cores(),
                "settle_s": settle_s,
                "collect_s": collect_s,
                "sampler_errors": sampler.errors,
                "cpu_sampler_errors": cpu_sampler.errors,
                "corpus": corpus.describe(),
                "loadavg_1m": {"start": loadavg_start, "end": loadavg_end},
                "baseline_errors": baseline_errors,
                "faults": faults,
            },
        )
        files = report_mod.write(summary, out_dir)
        (out_dir / "uploads.jsonl").write_text(
            "\n".join(json.dumps(asdict(r)) for r in generation.records) + "\n", encoding="utf-8"
        )
        return RunResult(backend, summary, out_dir, files)
