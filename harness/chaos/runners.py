"""Runs chaos scenarios in a session: levers, faults, traffic, mid-batch actions, accounting and the verdict."""

from __future__ import annotations

import json
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
from harness.chaos.faults import FaultRule, stall_bound_s
from harness.chaos.inputs import POISON_CODES, payload
from harness.chaos.proof import check, overlapping_deliveries
from harness.chaos.proxy import FaultProxy
from harness.chaos.result import ScenarioResult
from harness.chaos.runtime import live_runtimes, sigkill
from harness.chaos.scenarios import SOURCE, THUMBS, Scenario
from harness.chaos.session import ChaosSession, deploy
from harness.chaos.triggers import MidBatchTrigger, on_exchange
from harness.chaos.verdict import Expectation, ProxyEvidence, judge, proxy_evidence
from harness.load.observe import Accounting, Outcome, PipelineTarget, UploadOutcome, collect, settle
from harness.load.storage import AwsProbe

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


def _kill_action(session: ChaosSession, killed: list[int]) -> Callable[[], str]:
    """SIGKILL the function's live runtimes; `killed` receives the pids the signal was delivered to (alive then)."""

    def kill() -> str:
        victims = live_runtimes(session.runtimes_dir, session.target.function_name)
        killed.extend(r.pid for r in victims if sigkill(r))
        return (
            f"SIGKILL {len(killed)} runtime(s) of {session.target.function_name} (pids {killed}) mid-batch"
            if killed
            else f"no live runtime of {session.target.function_name} found in {session.runtimes_dir}"
        )

    return kill


PEER_START_TIMEOUT_S = 60.0


def _warm_peer(session: ChaosSession, peer: str) -> str:
    """Start the peer's runtime with one S3 test event (acknowledged and dropped by the handler); the UUID of its
    (disabled) mapping on the stack's queue."""
    record = {
        "messageId": "chaos-peer-warm-up",
        "receiptHandle": "warm-up",
        "body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": session.target.input_bucket}),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": storage.queue_arn(session.sqs, session.target.queue_url),
        "awsRegion": session.lam.meta.region_name,
    }
    session.lam.invoke(FunctionName=peer, Payload=json.dumps({"Records": [record]}).encode())
    mappings = session.lam.list_event_source_mappings(FunctionName=peer)["EventSourceMappings"]
    return str(mappings[0]["UUID"])


def _enable_peer(session: ChaosSession, peer: str, uuid: str) -> str:
    """Enable the peer's mapping once the first consumer has received messages (some in flight); what was done."""
    wait_until(
        lambda: session.probe.depths().in_flight > 0,
        PEER_START_TIMEOUT_S,
        interval=0.1,
        what="the first consumer to receive the uploads (messages in flight)",
    )
    t0 = time.monotonic()
    session.lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    wait_until(
        lambda: session.lam.get_event_source_mapping(UUID=uuid).get("State") == "Enabled",
        PEER_START_TIMEOUT_S,
        interval=0.1,
        what=f"the peer mapping {uuid} to be Enabled",
    )
    return (
        f"second consumer {peer} (warm) enabled on the queue {time.monotonic() - t0:.1f} s after the first consumer "
        "received the uploads, while it was still processing them"
    )


def _expectations(scenario: Scenario, keys: list[tuple[str, str]]) -> list[Expectation]:
    out = []
    for key, kind in keys:
        if kind == "image":
            out.append(Expectation(key, kind, scenario.expect, scenario.expect_codes))
        else:
            out.append(Expectation(key, kind, "dlq", POISON_CODES[kind]))
    return out


def _evidence(
    session: ChaosSession,
    scenario: Scenario,
    run_id: str,
    keys: list[tuple[str, str]],
    acc: Accounting,
    proxy_seen: ProxyEvidence,
    *,
    since_ms: int,
    extra: dict[str, int] | None = None,
) -> dict[str, int]:
    """The counters a scenario's proof is checked against (harness.chaos.proof), from what was observed."""
    counters: dict[str, int] = {f"injected:{code}": n for code, n in proxy_seen.injected.items()}
    counters.update(
        client_retries=proxy_seen.client_retries,
        redeliveries=proxy_seen.redeliveries,
        duplicate_writes=proxy_seen.duplicate_writes,
    )
    kinds = dict(keys)
    outcomes = {o.key: o for o in acc.outcomes}
    images = [k for k, kind in keys if kind == "image"]
    counters["complete"] = sum(1 for k in images if k in outcomes and outcomes[k].outcome is Outcome.COMPLETE)
    for k in images:
        o = outcomes.get(k)
        if o is not None and o.outcome is Outcome.DLQ:
            counters[f"dlq:{o.dlq_code}"] = counters.get(f"dlq:{o.dlq_code}", 0) + 1
    poison = [k for k, kind in keys if kind != "image"]
    counters["poison_uploads"] = len(poison)
    counters["poison_dlq_first_receive"] = sum(
        1
        for k in poison
        if k in outcomes
        and outcomes[k].outcome is Outcome.DLQ
        and outcomes[k].dlq_code in POISON_CODES[kinds[k]]
        and proxy_seen.deliveries.get(k, 1) <= 1
    )
    assert session.proxy is not None
    counters["overlapping_deliveries"] = overlapping_deliveries(session.proxy.snapshot(), session.target, run_id)
    needed = {n.counter for n in scenario.proof.consequences} if scenario.proof else set()
    if "sandbox_timedout" in needed:
        found = [0]

        def timed_out() -> bool:
            found[0] = storage.count_log_lines(session.logs, session.target.log_group, since_ms)
            return found[0] > 0

        try:  # the executor ships an invocation's logs right after it; give them a moment
            wait_until(timed_out, 15.0, interval=0.5, what="a 'Task timed out' line in the function's logs")
        except WaitTimeout:
            pass
        counters["sandbox_timedout"] = found[0]
    counters.update(extra or {})
    return dict(sorted(counters.items()))


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


def _test_events_since(session: ChaosSession, since_ms: float) -> None:
    """The stack's s3:TestEvent, dead-lettered by the seed at deploy, belongs to no scenario run after it."""
    if isinstance(session.probe, AwsProbe):
        session.probe.test_events_since_ms = since_ms


def _stall_bound_s(scenario: Scenario) -> float:
    return stall_bound_s(scenario.rules)


def _quiet_evidence(proxy: FaultProxy, target: PipelineTarget, run_id: str, bound_s: float) -> ProxyEvidence:
    """The proxy's evidence once what it still holds is answered: a stalled exchange is recorded when its stall ends."""
    proxy.wait_quiet(QUIET_S, bound_s)
    return proxy_evidence(proxy.snapshot(), target, run_id)


def run_scenario(session: ChaosSession, scenario: Scenario, *, keep_dlq: bool = False) -> ScenarioResult:
    """Run one scenario end to end and judge it; every lever and fault is undone before returning."""
    if scenario.action == "restart-emulator":
        return run_restart(session, scenario, keep_dlq=keep_dlq)
    assert session.proxy is not None
    proxy, target, log = session.proxy, session.target, session.log
    run_id = new_run_id(scenario.name)
    bound_s = _stall_bound_s(scenario)
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
        killed: list[int] = []
        if scenario.action == "kill-runtime":
            total = len(kinds)

            def completed_record_in_flight(completed: int) -> bool:
                # a message is deleted only when its whole batch returns: more undeleted messages than unfinished
                # uploads means a finished record sits in the batch being processed now
                depths = session.probe.depths()
                return depths.visible + depths.in_flight > total - completed

            kill = _kill_action(session, killed)
            if target.flat:
                # the seed replica reads only Records[0] of a batch and deletes the rest without output: a whole
                # burst may be one batch and one read, so the kill comes at the run's first source read
                trigger = MidBatchTrigger(target, run_id, kill, after_completed=False)
            else:
                trigger = MidBatchTrigger(target, run_id, kill, gate=completed_record_in_flight)
            levers.enter_context(on_exchange(proxy, trigger))
        log(
            f"[{scenario.name}] run {run_id}: {len(kinds)} uploads ({len(scenario.poison)} poison), "
            f"faults {[r.label for r in scenario.rules] or 'none'}"
        )
        peer_uuid = ""
        if scenario.peer_consumer:
            # created (and its runtime warmed) before the uploads, its mapping disabled: the slow part is done before
            # the first consumer takes the batch, and enabling the mapping is quick (see _enable_peer)
            peer = levers.enter_context(
                storage.peer_consumer(
                    session.lam, target.function_name, storage.queue_arn(session.sqs, target.queue_url), enabled=False
                )
            )
            peer_uuid = _warm_peer(session, peer)
        started = time.time()
        since_ms = int(started * 1000) - 1000
        _test_events_since(session, since_ms)
        with ExitStack() as burst:
            if scenario.burst_delay_s:
                burst.enter_context(storage.queue_delay(session.sqs, target.queue_url, scenario.burst_delay_s))
                actions.append(f"uploads queued with a {scenario.burst_delay_s} s delay (one burst, full batches)")
            for seq, kind in enumerate(kinds):
                item = payload(kind, seed=seq)
                key = target.upload_key(run_id, f"{seq:03d}-{kind}{item.suffix}")
                storage.upload(session.s3, target.input_bucket, key, item.body, item.content_type, run_id)
                keys.append((key, kind))
        if scenario.peer_consumer:
            # enabled once the first consumer holds messages in flight: it finds them when their visibility expires,
            # while the first consumer's (delayed) source reads are still unanswered
            actions.append(_enable_peer(session, peer, peer_uuid))
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
        # a late delivery (a second consumer, a redelivery after a stall) may still be reading or writing although
        # every upload is accounted: let it finish with its levers (faults, peer consumer) still in place
        if not proxy.wait_quiet(QUIET_S, bound_s):
            notes.append(f"the fault proxy still had requests in flight {bound_s:.0f} s after the run")
    evidence = _quiet_evidence(proxy, target, run_id, bound_s)  # and what the levers' undoing cut short
    verdict = judge(acc, _expectations(scenario, keys), evidence)
    counters = _evidence(
        session,
        scenario,
        run_id,
        keys,
        acc,
        evidence,
        since_ms=since_ms,
        extra={"runtime_killed": len(killed), "redriven": redrive_result["moved"] if redrive_result else 0},
    )
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
        evidence=counters,
        proof=check(scenario.proof, counters, images=scenario.images, poison=len(scenario.poison))
        if scenario.proof
        else None,
    )
    if result.observed_uploads == 0:
        notes.append("the fault proxy saw no source read: is the function's S3 endpoint pointed at it?")
        result = replace(result, notes=tuple(notes))
    _log_status(log, result)
    return result


def _log_status(log: Callable[[str], None], result: ScenarioResult) -> None:
    missing = []
    if result.proof is not None:
        missing = [c.what for c in (result.proof.fault, *result.proof.consequences) if not c.met]
    log(
        f"[{result.name}] outcomes {dict(result.outcomes)}; invariant {'held' if result.held else 'NOT held'}; "
        f"{result.status}" + (f" (missing: {'; '.join(missing)})" if missing else "")
    )


def _put_until_accepted(session: ChaosSession, key: str, kind: str, seq: int, run_id: str, deadline_s: float) -> bool:
    """Upload, retrying while the emulator is away (a restart in progress); False when the deadline passed."""
    item = payload(kind, seed=seq)

    def put() -> bool:
        try:
            storage.upload(session.s3, session.target.input_bucket, key, item.body, item.content_type, run_id)
            return True
        except Exception:  # noqa: BLE001 - connection refused / 5xx while the emulator restarts: try again
            return False

    try:
        wait_until(put, deadline_s, interval=0.5, max_interval=2.0, what=f"upload of {key}")
        return True
    except WaitTimeout:
        return False


def run_restart(session: ChaosSession, scenario: Scenario, *, keep_dlq: bool = False) -> ScenarioResult:
    """Restart the emulator mid-batch while uploads continue; with the plugin's persistence every upload made
    before, during and after the restart must end as thumbnails or in the DLQ."""
    assert session.proxy is not None
    proxy, target, log = session.proxy, session.target, session.log
    run_id = new_run_id(scenario.name)
    wall0 = time.monotonic()
    keys: list[tuple[str, str]] = []
    actions: list[str] = []
    notes: list[str] = []
    limitation: str | None = None
    restarted = threading.Event()
    before_n = max(1, scenario.images // 2)
    during_n = max(1, scenario.images // 4)
    after_n = max(1, scenario.images - before_n - during_n)

    def restart() -> str:
        restarted.set()
        return "restart requested"

    def key_of(seq: int) -> str:
        return target.upload_key(run_id, f"{seq:03d}-image.png")

    old = emulator.find_running(session.settings)
    old_pid = old.pid if old else None
    trigger = MidBatchTrigger(target, run_id, restart)
    proxy.set_rules([localize(r, target, run_id) for r in scenario.rules])
    started = time.time()
    _test_events_since(session, int(started * 1000) - 1000)
    with on_exchange(proxy, trigger):
        for seq in range(before_n):
            item = payload("image", seed=seq)
            storage.upload(session.s3, target.input_bucket, key_of(seq), item.body, item.content_type, run_id)
            keys.append((key_of(seq), "image"))
        try:
            wait_until(restarted.is_set, 60.0, interval=0.1, what="a complete upload before the restart")
        except WaitTimeout:
            notes.append("no upload completed within 60 s; restarting anyway")
    # uploads during the restart: a client that keeps sending (retrying while the emulator is away)
    during_keys = [key_of(before_n + i) for i in range(during_n)]
    accepted_during: list[str] = []

    def upload_during() -> None:
        for i, key in enumerate(during_keys):
            if _put_until_accepted(session, key, "image", before_n + i, run_id, 120.0):
                accepted_during.append(key)

    uploader = threading.Thread(target=upload_during, name="chaos-restart-uploads", daemon=True)
    t_stop = time.monotonic()
    uploader.start()
    stopped = emulator.stop(session.settings)
    handle = emulator.ensure_running(session.settings)
    restore_s = time.monotonic() - t_stop
    actions.append(
        f"emulator stopped ({'; '.join(stopped)}) and started again in {restore_s:.1f}s "
        f"(pid {old_pid} -> {handle.pid}); {during_n} upload(s) sent meanwhile, retried until accepted"
    )
    uploader.join(timeout=150.0)
    keys += [(k, "image") for k in accepted_during]
    lost_uploads = sorted(set(during_keys) - set(accepted_during))
    if lost_uploads:
        notes.append(f"{len(lost_uploads)} upload(s) during the restart were never accepted: {lost_uploads[:3]}")
    presence = storage.stack_presence(session.s3, session.sqs, session.lam, target)
    after_keys: list[str] = []
    if presence.intact:
        actions.append("stack and its data present after the restart (state restored by the executor plugin)")
        for i in range(after_n):
            seq = before_n + during_n + i
            if _put_until_accepted(session, key_of(seq), "image", seq, run_id, 60.0):
                after_keys.append(key_of(seq))
        keys += [(k, "image") for k in after_keys]
        actions.append(f"{len(after_keys)} upload(s) after the restart")
        settled = settle(
            run_id,
            target,
            [k for k, _ in keys],
            timeout=scenario.settle_timeout_s,
            probe=session.probe,
            quiet_s=QUIET_S,
        )
        acc = collect(run_id, target, [k for k, _ in keys], probe=session.probe, read_logs=False)
        seen = _quiet_evidence(proxy, target, run_id, _stall_bound_s(scenario))
        proxy.clear_faults()
        verdict = judge(acc, _expectations(scenario, keys), seen)
    else:
        proxy.clear_faults()
        settled = False
        limitation = "emulator state lost in the restart (persistence off: HARNESS_PERSIST=0, or the restore failed)"
        actions.append(f"detected: stack resources gone after the restart: {', '.join(presence.missing)}")
        notes.append(
            f"the saved state was not restored (see {session.settings.home / 'persist' / 'last-load.json'} and the "
            "emulator log); every upload is reported MISSING"
        )
        acc = Accounting(run_id, tuple(k for k, _ in keys), tuple(UploadOutcome(k, Outcome.MISSING) for k, _ in keys))
        seen = _quiet_evidence(proxy, target, run_id, _stall_bound_s(scenario))
        verdict = judge(acc, _expectations(scenario, keys), None)
        try:
            outputs = deploy(session.settings, session.stack, profile=session.profile)
            session.refresh(outputs)
            actions.append(f"stack '{session.stack}' redeployed so that later runs find it")
        except Exception as exc:  # noqa: BLE001 - reported; the user can `make up`
            actions.append(f"redeploy failed ({type(exc).__name__}: {exc}); run `make up` to recreate the stack")
    counters = _evidence(
        session,
        scenario,
        run_id,
        keys,
        acc,
        seen,
        since_ms=int(started * 1000) - 1000,
        extra={
            "emulator_restarted": int(old_pid is not None and handle.pid is not None and handle.pid != old_pid),
            "stack_restored": int(presence.intact),
            "uploads_after_restart": len(accepted_during) + len(after_keys),
            "restart_s_x10": round(restore_s * 10),
        },
    )
    if not keep_dlq and presence.intact:
        consumed = _consume_dlq(session, run_id)
        if consumed:
            notes.append(f"{consumed} DLQ message(s) of this run deleted after accounting")
    result = ScenarioResult(
        name=scenario.name,
        title=scenario.title,
        run_id=run_id,
        uploads=len(keys),
        poison=0,
        faults_injected={**seen.injected, "restart": 1},
        client_retries=seen.client_retries,
        redeliveries=seen.redeliveries,
        poison_redeliveries=0,
        duplicate_writes=seen.duplicate_writes,
        outcomes=verdict.by_code,
        drain_s=_drain_s(acc, started) if presence.intact else None,
        settled=settled,
        verdict=verdict,
        actions=tuple(actions),
        notes=tuple(notes),
        wall_s=time.monotonic() - wall0,
        observed_uploads=len(seen.deliveries),
        limitation=limitation,
        evidence=counters,
        proof=check(scenario.proof, counters, images=scenario.images, poison=0) if scenario.proof else None,
    )
    _log_status(log, result)
    return result
