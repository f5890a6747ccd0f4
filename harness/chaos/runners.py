"""Runs chaos scenarios in a session: levers, faults, traffic, mid-batch actions, accounting and the verdict."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

from common.waiting import WaitTimeout, wait_until
from harness import emulator
from harness.chaos import storage
from harness.chaos.faults import FaultRule
from harness.chaos.inputs import POISON_CODES, payload
from harness.chaos.result import ScenarioResult
from harness.chaos.runtime import live_runtimes, sigkill
from harness.chaos.scenarios import SOURCE, THUMBS, Scenario
from harness.chaos.session import ChaosSession, deploy
from harness.chaos.triggers import MidBatchTrigger, on_exchange
from harness.chaos.verdict import Expectation, judge, proxy_evidence
from harness.load.observe import Accounting, Outcome, PipelineTarget, UploadOutcome, collect, settle

QUIET_S = 3.0


def new_run_id(name: str) -> str:
    return f"chaos-{name}-{time.strftime('%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def localize(rule: FaultRule, target: PipelineTarget, run_id: str) -> FaultRule:
    """Scenario rules name the generic prefixes; bind them to this run's source keys and the stack's outputs."""
    if rule.key_prefix.startswith(SOURCE):
        return replace(rule, key_prefix=target.run_prefix(run_id), bucket=target.input_bucket)
    if rule.key_prefix.startswith(THUMBS):
        return replace(rule, key_prefix=target.output_prefix, bucket=target.output_bucket)
    return rule


def _kill_action(session: ChaosSession) -> Callable[[], str]:
    def kill() -> str:
        victims = live_runtimes(session.runtimes_dir, session.target.function_name)
        killed = [r.pid for r in victims if sigkill(r)]
        return (
            f"SIGKILL {len(killed)} runtime(s) of {session.target.function_name} (pids {killed}) mid-batch"
            if killed
            else f"no live runtime of {session.target.function_name} found in {session.runtimes_dir}"
        )

    return kill


def _expectations(scenario: Scenario, keys: list[tuple[str, str]]) -> list[Expectation]:
    out = []
    for key, kind in keys:
        if kind == "image":
            out.append(Expectation(key, kind, scenario.expect, scenario.expect_codes))
        else:
            out.append(Expectation(key, kind, "dlq", POISON_CODES[kind]))
    return out


def _drain_s(acc: Accounting, started: float) -> float | None:
    done = [o.done_ms for o in acc.outcomes if o.done_ms]
    return max(0.0, max(done) / 1000 - started) if done else None


def _consume_dlq(session: ChaosSession, run_id: str) -> int:
    """Delete this run's DLQ messages after they were accounted (keeps later runs' DLQ reads small)."""
    messages = storage.receive_dlq(session.sqs, session.target, visibility_s=30, deadline_s=30)
    mine = [
        m for m in messages if m.run_id == run_id or (m.source_key or "").startswith(session.target.run_prefix(run_id))
    ]
    storage.release(session.sqs, session.target.dlq_url, [m for m in messages if m not in mine])
    return storage.delete(session.sqs, session.target.dlq_url, mine)


def run_scenario(session: ChaosSession, scenario: Scenario, *, keep_dlq: bool = False) -> ScenarioResult:
    """Run one scenario end to end and judge it; every lever and fault is undone before returning."""
    if scenario.action == "restart-emulator":
        return run_restart(session, scenario)
    assert session.proxy is not None
    proxy, target, log = session.proxy, session.target, session.log
    run_id = new_run_id(scenario.name)
    wall0 = time.monotonic()
    kinds = ["image"] * scenario.images + list(scenario.poison)
    keys: list[tuple[str, str]] = []
    actions: list[str] = []
    notes: list[str] = list(scenario.notes)
    redrive_result: dict[str, Any] | None = None
    with ExitStack() as levers:
        levers.enter_context(storage.queue_visibility(session.sqs, target.queue_url, scenario.visibility_s))
        if scenario.max_receive_count:
            levers.enter_context(storage.queue_max_receives(session.sqs, target.queue_url, scenario.max_receive_count))
        if scenario.function_timeout_s:
            levers.enter_context(
                storage.function_timeout(session.lam, target.function_name, scenario.function_timeout_s)
            )
        levers.callback(proxy.clear_faults)
        proxy.set_rules([localize(r, target, run_id) for r in scenario.rules])
        trigger = None
        if scenario.action == "kill-runtime":
            total = len(kinds)

            def completed_record_in_flight(completed: int) -> bool:
                # a message is deleted only when its whole batch returns: more undeleted messages than unfinished
                # uploads means a finished record sits in the batch being processed now
                depths = session.probe.depths()
                return depths.visible + depths.in_flight > total - completed

            trigger = MidBatchTrigger(target, run_id, _kill_action(session), gate=completed_record_in_flight)
            levers.enter_context(on_exchange(proxy, trigger))
        log(
            f"[{scenario.name}] run {run_id}: {len(kinds)} uploads ({len(scenario.poison)} poison), "
            f"faults {[r.label for r in scenario.rules] or 'none'}"
        )
        started = time.time()
        with ExitStack() as burst:
            if scenario.burst_delay_s:
                burst.enter_context(storage.queue_delay(session.sqs, target.queue_url, scenario.burst_delay_s))
                actions.append(f"uploads queued with a {scenario.burst_delay_s} s delay (one burst, full batches)")
            for seq, kind in enumerate(kinds):
                item = payload(kind, seed=seq)
                key = f"{target.run_prefix(run_id)}{seq:03d}-{kind}{item.suffix}"
                storage.upload(session.s3, target.input_bucket, key, item.body, item.content_type, run_id)
                keys.append((key, kind))
        if scenario.peer_consumer:
            # attached after the first consumer took the batch: it finds the messages whose visibility expired
            peer = levers.enter_context(
                storage.peer_consumer(
                    session.lam, target.function_name, storage.queue_arn(session.sqs, target.queue_url)
                )
            )
            actions.append(f"second consumer {peer} attached to the queue while the first was still processing")
        expected = [k for k, _ in keys]
        settled = settle(
            run_id, target, expected, timeout=scenario.settle_timeout_s, probe=session.probe, quiet_s=QUIET_S
        )
        if trigger is not None:
            actions.append(trigger.result or "mid-batch trigger never fired (no complete upload before the end)")
        if scenario.fix_then_redrive:
            proxy.clear_faults()
            actions.append("fault removed (permission fixed)")
            redriven = storage.redrive(session.sqs, target, run_id=run_id)
            redrive_result = redriven.to_dict()
            actions.append(f"redrive moved {redriven.moved} DLQ message(s) back to the queue {dict(redriven.by_code)}")
            settled = (
                settle(
                    run_id, target, expected, timeout=scenario.settle_timeout_s, probe=session.probe, quiet_s=QUIET_S
                )
                and settled
            )
        acc = collect(run_id, target, expected, probe=session.probe, read_logs=False)
    evidence = proxy_evidence(proxy.snapshot(), target, run_id)
    verdict = judge(acc, _expectations(scenario, keys), evidence)
    if not settled:
        notes.append(f"did not settle within {scenario.settle_timeout_s:.0f}s")
    poison_keys = {k for k, kind in keys if kind != "image"}
    if not keep_dlq:
        consumed = _consume_dlq(session, run_id)
        if consumed:
            notes.append(f"{consumed} DLQ message(s) of this run deleted after accounting")
    result = ScenarioResult(
        name=scenario.name,
        title=scenario.title,
        run_id=run_id,
        uploads=len(keys),
        poison=len(poison_keys),
        faults_injected=evidence.injected,
        client_retries=evidence.client_retries,
        redeliveries=evidence.redeliveries,
        poison_redeliveries=sum(n - 1 for k, n in evidence.deliveries.items() if k in poison_keys and n > 1),
        duplicate_writes=evidence.duplicate_writes,
        outcomes=verdict.by_code,
        drain_s=_drain_s(acc, started),
        settled=settled,
        verdict=verdict,
        actions=tuple(actions),
        redrive=redrive_result,
        notes=tuple(notes),
        wall_s=time.monotonic() - wall0,
        observed_uploads=len(evidence.deliveries),
    )
    if result.observed_uploads == 0:
        notes.append("the fault proxy saw no source read: is the function's S3 endpoint pointed at it?")
        result = replace(result, notes=tuple(notes))
    log(f"[{scenario.name}] outcomes {dict(result.outcomes)}; invariant {'held' if result.held else 'NOT held'}")
    return result


def run_restart(session: ChaosSession, scenario: Scenario) -> ScenarioResult:
    """Restart the emulator mid-run and report, honestly, what survives: without persistence, nothing."""
    assert session.proxy is not None
    proxy, target, log = session.proxy, session.target, session.log
    run_id = new_run_id(scenario.name)
    wall0 = time.monotonic()
    keys: list[tuple[str, str]] = []
    actions: list[str] = []
    notes: list[str] = []
    limitation: str | None = None
    restarted = threading.Event()

    def restart() -> str:
        restarted.set()
        return "restart requested"

    trigger = MidBatchTrigger(target, run_id, restart)
    proxy.set_rules([localize(r, target, run_id) for r in scenario.rules])
    with on_exchange(proxy, trigger):
        for seq in range(scenario.images):
            item = payload("image", seed=seq)
            key = f"{target.run_prefix(run_id)}{seq:03d}-image{item.suffix}"
            storage.upload(session.s3, target.input_bucket, key, item.body, item.content_type, run_id)
            keys.append((key, "image"))
        try:
            wait_until(restarted.is_set, 60.0, interval=0.1, what="a complete upload before the restart")
        except WaitTimeout:
            notes.append("no upload completed within 60 s; restarting anyway")
    before = proxy_evidence(proxy.snapshot(), target, run_id)
    completed_before = sum(
        1
        for k, _ in keys
        if all(target.output_stem(s, k) in {w.rsplit(".", 1)[0] for w in before.writes} for s in target.sizes)
    )
    t_stop = time.monotonic()
    stopped = emulator.stop(session.settings)
    handle = emulator.ensure_running(session.settings)
    actions.append(
        f"emulator stopped ({'; '.join(stopped)}) and started again in {time.monotonic() - t_stop:.1f}s "
        f"(pid {handle.pid})"
    )
    proxy.clear_faults()
    presence = storage.stack_presence(session.s3, session.sqs, session.lam, target)
    if presence.intact:
        actions.append("stack still present after the restart")
        settled = settle(
            run_id,
            target,
            [k for k, _ in keys],
            timeout=scenario.settle_timeout_s,
            probe=session.probe,
            quiet_s=QUIET_S,
        )
        acc = collect(run_id, target, [k for k, _ in keys], probe=session.probe, read_logs=False)
        verdict = judge(acc, _expectations(scenario, keys), proxy_evidence(proxy.snapshot(), target, run_id))
    else:
        settled = False
        limitation = "emulator state is in memory only (no persistence in LocalStack core)"
        actions.append(f"detected: stack resources gone after the restart: {', '.join(presence.missing)}")
        notes.append(
            "LocalStack core keeps state in memory: PERSISTENCE=1 needs the snapshot plugin of the Pro edition, so a "
            "restart loses buckets, objects, queues (with in-flight messages), the DLQ and functions. "
            f"{completed_before} of {len(keys)} uploads had complete thumbnails before the restart (seen by the "
            "proxy); none can be verified afterwards: every upload is reported MISSING."
        )
        lost = Accounting(run_id, tuple(k for k, _ in keys), tuple(UploadOutcome(k, Outcome.MISSING) for k, _ in keys))
        verdict = judge(lost, _expectations(scenario, keys), None)
        try:
            outputs = deploy(session.settings, session.stack)
            session.refresh(outputs)
            actions.append(f"stack '{session.stack}' redeployed; uploads made during the outage must be re-sent")
            outputs_dir = session.settings.home / "outputs"
            others = sorted(p.stem for p in outputs_dir.glob("*.json") if p.stem != session.stack)
            if others:
                actions.append(
                    f"other stacks on this emulator were wiped too and not redeployed: {', '.join(others)} "
                    f"(`make up` redeploys thumbs)"
                )
        except Exception as exc:  # noqa: BLE001 - reported; the user can `make up`
            actions.append(f"redeploy failed ({type(exc).__name__}: {exc}); run `make up` to recreate the stack")
    result = ScenarioResult(
        name=scenario.name,
        title=scenario.title,
        run_id=run_id,
        uploads=len(keys),
        poison=0,
        faults_injected={**before.injected, "restart": 1},
        client_retries=before.client_retries,
        redeliveries=before.redeliveries,
        poison_redeliveries=0,
        duplicate_writes=before.duplicate_writes,
        outcomes=verdict.by_code,
        drain_s=None,
        settled=settled,
        verdict=verdict,
        actions=tuple(actions),
        notes=tuple(notes),
        wall_s=time.monotonic() - wall0,
        limitation=limitation,
    )
    log(f"[{scenario.name}] outcomes {dict(result.outcomes)}; invariant {'held' if result.held else 'NOT held'}")
    return result
