"""Chaos against a deployed stack this harness does not control (AWS, or any endpoint but its own emulator).

Only the scenarios in `harness.target.REMOTE_SAFE_CHAOS` run here: they need no fault proxy in the function's S3
path, no change to the stack (visibility, timeouts, maxReceiveCount, extra consumers) and no local process to kill.
What they inject is in the uploads themselves (poison files), so the proof comes from what the deployed pipeline did
with them: the DLQ message the handler sent (its code and the receive count it saw) and the function's logs.
Every request goes through the target's own session (the standard credential chain); the run deletes its own
prefix and its own DLQ messages afterwards, nothing else.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from harness.chaos import storage
from harness.chaos.errors import ChaosError
from harness.chaos.inputs import POISON_CODES, payload
from harness.chaos.proof import check
from harness.chaos.result import ScenarioResult
from harness.chaos.scenarios import Scenario
from harness.chaos.verdict import Expectation, judge
from harness.load.observe import Outcome, PipelineTarget, collect, settle
from harness.load.storage import AwsProbe
from harness.target import REMOTE_SAFE_CHAOS, DeployedTarget, cleanup_run

QUIET_S = 5.0


def run_remote(
    deployed: DeployedTarget,
    scenario: Scenario,
    run_id: str,
    *,
    keep_dlq: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> ScenarioResult:
    """Run one remote-safe scenario against `deployed` and judge it (CHAOS_NOT_REMOTE_SAFE for any other)."""
    if scenario.name not in REMOTE_SAFE_CHAOS or scenario.rules or scenario.action:
        raise ChaosError(
            "CHAOS_NOT_REMOTE_SAFE",
            f"Expected a scenario that runs without local control ({', '.join(REMOTE_SAFE_CHAOS)}) but received "
            f"{scenario.name}",
        )
    target = PipelineTarget.from_outputs(deployed.outputs)
    s3, sqs, logs = deployed.client("s3", pool=16), deployed.client("sqs"), deployed.client("logs")
    probe = AwsProbe(target, s3, sqs, logs)
    wall0 = time.monotonic()
    kinds = ["image"] * scenario.images + list(scenario.poison)
    log(f"[{scenario.name}] run {run_id} against {deployed.name} at {deployed.label}: {len(kinds)} uploads")
    keys: list[tuple[str, str]] = []
    started = time.time()
    for seq, kind in enumerate(kinds):
        item = payload(kind, seed=seq)
        key = target.upload_key(run_id, f"{seq:03d}-{kind}{item.suffix}")
        storage.upload(s3, target.input_bucket, key, item.body, item.content_type, run_id)
        keys.append((key, kind))
    expected = [k for k, _ in keys]
    settled = settle(run_id, target, expected, timeout=scenario.settle_timeout_s, probe=probe, quiet_s=QUIET_S)
    acc = collect(run_id, target, expected, probe=probe, since_ms=started * 1000 - 60_000, read_logs=True)
    first = _dlq_receive_counts(probe, target, run_id)
    expectations = [
        Expectation(k, kind, scenario.expect, scenario.expect_codes)
        if kind == "image"
        else Expectation(k, kind, "dlq", POISON_CODES[kind])
        for k, kind in keys
    ]
    verdict = judge(acc, expectations, None)
    counters = _counters(keys, acc, first)
    poison = [k for k, kind in keys if kind != "image"]
    notes: list[str] = list(scenario.notes)
    if not settled:
        notes.append(f"did not settle within {scenario.settle_timeout_s:.0f}s")
    if not acc.logs_read:
        notes.append("the function's logs could not be read: deliveries are known from the DLQ messages only")
    if not keep_dlq:
        consumed = _consume_dlq(sqs, target, run_id)
        if consumed:
            notes.append(f"{consumed} DLQ message(s) of this run deleted after accounting")
    removed = cleanup_run(deployed, run_id)
    notes.append(f"run prefix cleaned: {sum(removed.values())} object version(s) deleted")
    done = [o.done_ms for o in acc.outcomes if o.done_ms]
    outcomes = {o.key: o for o in acc.outcomes}
    deliveries = {k: o.deliveries for k, o in outcomes.items() if o.deliveries}
    result = ScenarioResult(
        name=scenario.name,
        title=scenario.title,
        run_id=run_id,
        uploads=len(keys),
        poison=len(poison),
        faults_injected={f"poison:{kind}": n for kind, n in sorted(Counter(scenario.poison).items())},
        client_retries=0,
        redeliveries=sum(max(0, n - 1) for n in deliveries.values()),
        poison_redeliveries=sum(max(0, deliveries.get(k, 1) - 1) for k in poison),
        duplicate_writes=0,
        outcomes=verdict.by_code,
        drain_s=max(0.0, max(done) / 1000 - started) if done else None,
        settled=settled,
        verdict=verdict,
        actions=(f"remote target {deployed.name} at {deployed.label}: uploads only, the stack unchanged",),
        notes=tuple(notes),
        wall_s=time.monotonic() - wall0,
        observed_uploads=sum(1 for o in acc.outcomes if o.outcome is not Outcome.MISSING),
        evidence=counters,
        proof=check(scenario.proof, counters, images=scenario.images, poison=len(poison)) if scenario.proof else None,
    )
    log(f"[{scenario.name}] {result.status}")
    return result


def _dlq_receive_counts(probe: AwsProbe, target: PipelineTarget, run_id: str) -> dict[str, int]:
    """Source key -> the highest receive count a handler-sent DLQ message of this run reports (1 = first receive)."""
    out: dict[str, int] = {}
    prefix = target.run_prefix(run_id)
    for m in probe.dlq_messages():
        if m.source_key and m.source_key.startswith(prefix) and m.receive_count:
            out[m.source_key] = max(out.get(m.source_key, 0), m.receive_count)
    return out


def _counters(keys: list[tuple[str, str]], acc: Any, dlq_receives: dict[str, int]) -> dict[str, int]:
    """The proof counters a remote run can observe: uploads by kind, outcomes, poison dead-lettered with its code on
    the first receive (the receive count in the handler's DLQ message, and at most one delivery in the logs)."""
    outcomes = {o.key: o for o in acc.outcomes}
    kinds = dict(keys)
    images = [k for k, kind in keys if kind == "image"]
    poison = [k for k, kind in keys if kind != "image"]
    counters: dict[str, int] = {
        "complete": sum(1 for k in images if k in outcomes and outcomes[k].outcome is Outcome.COMPLETE),
        "poison_uploads": len(poison),
    }
    counters["poison_dlq_first_receive"] = sum(
        1
        for k in poison
        if k in outcomes
        and outcomes[k].outcome is Outcome.DLQ
        and outcomes[k].dlq_code in POISON_CODES[kinds[k]]
        and dlq_receives.get(k) == 1
        and (outcomes[k].deliveries or 1) <= 1
    )
    for k in images:
        o = outcomes.get(k)
        if o is not None and o.outcome is Outcome.DLQ:
            counters[f"dlq:{o.dlq_code}"] = counters.get(f"dlq:{o.dlq_code}", 0) + 1
    return dict(sorted(counters.items()))


def _consume_dlq(sqs: Any, target: PipelineTarget, run_id: str) -> int:
    """Delete this run's DLQ messages (and release everyone else's at once)."""
    messages = storage.receive_dlq(sqs, target, visibility_s=30, deadline_s=30)
    mine = [m for m in messages if m.run_id == run_id or (m.source_key or "").startswith(target.run_prefix(run_id))]
    storage.release(sqs, target.dlq_url, [m for m in messages if m not in mine])
    return storage.delete(sqs, target.dlq_url, mine)
