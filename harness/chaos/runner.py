"""Runs chaos scenarios on a deployed pipeline: proxy in the S3 path, levers, traffic, actions, accounting, verdict."""

from __future__ import annotations

import json
import secrets
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from harness.aws import client
from harness.chaos import storage
from harness.chaos.errors import ChaosError, PipelineUnavailable
from harness.chaos.faults import FaultRule
from harness.chaos.inputs import POISON_CODES, payload
from harness.chaos.proxy import Exchange, FaultProxy
from harness.chaos.runtime import live_runtimes, sigkill
from harness.chaos.scenarios import SOURCE, THUMBS, Scenario
from harness.chaos.verdict import Expectation, ProxyEvidence, Verdict, judge, proxy_evidence
from harness.load.observe import Accounting, PipelineTarget, collect, make_probe, settle
from harness.settings import HarnessSettings

# The chaos stack: short function timeout and visibility timeout (>= the timeout, as AWS requires for a mapping)
# so that redeliveries happen within seconds; scenarios move them further with levers.
CHAOS_STACK = "chaos"
CHAOS_OVERRIDES: dict[str, Any] = {"function_timeout_s": 10, "visibility_timeout_s": 10, "batching_window_s": 1,
                                   "max_receive_count": 3}
QUIET_S = 3.0


@dataclass(frozen=True)
class ScenarioResult:
    """Everything reported for one scenario run."""

    name: str
    title: str
    run_id: str
    uploads: int
    poison: int
    faults_injected: Mapping[str, int]
    client_retries: int  # botocore retries inside one S3 call (seen by the proxy)
    redeliveries: int  # handler attempts beyond the first per upload (SQS redeliveries, duplicate deliveries)
    poison_redeliveries: int
    duplicate_writes: int  # thumbnail keys written more than once
    outcomes: Mapping[str, int]  # OK / DLQ error code / MISSING -> uploads
    drain_s: float | None  # first upload -> last outcome
    settled: bool
    verdict: Verdict
    actions: tuple[str, ...] = ()
    redrive: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    wall_s: float = 0.0
    observed_uploads: int = 0  # uploads whose source the proxy saw read (0 = the proxy was not in the S3 path)
    limitation: str | None = None  # why the invariant cannot hold here (a real limitation, explained in notes)

    @property
    def held(self) -> bool:
        return self.verdict.held

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "run_id": self.run_id, "uploads": self.uploads,
            "poison": self.poison, "faults_injected": dict(self.faults_injected),
            "client_retries": self.client_retries, "redeliveries": self.redeliveries,
            "poison_redeliveries": self.poison_redeliveries, "duplicate_writes": self.duplicate_writes,
            "duplicates_identical": not self.verdict.nonidentical, "outcomes": dict(self.outcomes),
            "drain_s": None if self.drain_s is None else round(self.drain_s, 2), "settled": self.settled,
            "invariant_held": self.held, "verdict": self.verdict.to_dict(), "actions": list(self.actions),
            "redrive": dict(self.redrive) if self.redrive else None, "notes": list(self.notes),
            "wall_s": round(self.wall_s, 2), "observed_uploads": self.observed_uploads,
            "limitation": self.limitation,
        }


def new_run_id(name: str) -> str:
    return f"chaos-{name}-{time.strftime('%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def read_outputs(settings: HarnessSettings, stack: str) -> dict[str, Any] | None:
    path = settings.home / "outputs" / f"{stack}.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        return None
    return doc.get("outputs", doc) if isinstance(doc, dict) else None


def deploy(settings: HarnessSettings, stack: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Deploy (or update) the chaos stack through the load harness's deployer (infra.deploy underneath)."""
    from harness.load.runner import deploy_stack

    return dict(deploy_stack(settings, stack, dict(CHAOS_OVERRIDES if overrides is None else overrides)))


def localize(rule: FaultRule, target: PipelineTarget, run_id: str) -> FaultRule:
    """Scenario rules name the generic prefixes; bind them to this run's source keys and the stack's outputs."""
    if rule.key_prefix.startswith(SOURCE):
        return replace(rule, key_prefix=target.run_prefix(run_id), bucket=target.input_bucket)
    if rule.key_prefix.startswith(THUMBS):
        return replace(rule, key_prefix=target.output_prefix, bucket=target.output_bucket)
    return rule


@dataclass
class ChaosSession:
    """A fault proxy in the function's S3 path for the whole session, plus clients and the observation probe."""

    settings: HarnessSettings
    target: PipelineTarget
    stack: str = CHAOS_STACK
    log: Callable[[str], None] = lambda line: None
    proxy: FaultProxy | None = None
    _stack: ExitStack = field(default_factory=ExitStack)

    def __post_init__(self) -> None:
        storage.require(self.target)
        self.s3 = client("s3", self.settings)
        self.sqs = client("sqs", self.settings)
        self.lam = client("lambda", self.settings)
        self.probe = make_probe(self.target, self.settings)

    @property
    def runtimes_dir(self) -> Path:
        return self.settings.home / "runtimes"

    def __enter__(self) -> "ChaosSession":
        self.proxy = self._stack.enter_context(FaultProxy(self.settings.endpoint))
        # boto3 in the function reads AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL: only S3 goes through the proxy.
        self._stack.enter_context(storage.function_env(
            self.lam, self.target.function_name, {"AWS_ENDPOINT_URL_S3": self.proxy.endpoint}))
        self.log(f"fault proxy {self.proxy.endpoint} -> {self.settings.endpoint} in {self.target.function_name}'s "
                 f"S3 path")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._stack.close()
        except Exception as error:  # noqa: BLE001 - the emulator may be gone (restart scenario): report, go on
            self.log(f"warning: could not restore the function environment: {error}")

    def refresh(self, outputs: Mapping[str, Any]) -> None:
        """After a redeploy: new target, probe and the proxy re-inserted into the new function's S3 path."""
        self.target = PipelineTarget.from_outputs(outputs)
        self.probe = make_probe(self.target, self.settings)
        assert self.proxy is not None
        env = storage.function_environment(self.lam, self.target.function_name)
        env["AWS_ENDPOINT_URL_S3"] = self.proxy.endpoint
        self.lam.update_function_configuration(FunctionName=self.target.function_name, Environment={"Variables": env})
        storage.wait_function_updated(self.lam, self.target.function_name)


@contextmanager
def on_exchange(proxy: FaultProxy, callback: Callable[[Exchange], None]) -> Iterator[None]:
    proxy.on_exchange.append(callback)
    try:
        yield
    finally:
        proxy.on_exchange.remove(callback)


class MidBatchTrigger:
    """Fires `action` once, on the first source read that follows a complete upload of this run and passes `gate`
    (given the number of complete uploads; used to require that a complete record is still in the in-flight batch,
    so the kill provably returns finished work)."""

    def __init__(self, target: PipelineTarget, run_id: str, action: Callable[[], str],
                 gate: Callable[[int], bool] = lambda completed: True) -> None:
        self._sources = target.run_prefix(run_id)
        self._outputs = tuple(f"{target.output_prefix}{s}/{self._sources[len(target.input_prefix):]}"
                              for s in target.sizes)
        self._sizes = len(target.sizes)
        self._written: dict[str, int] = {}
        self._action = action
        self._gate = gate
        self._lock = threading.Lock()
        self.fired = threading.Event()
        self.result = ""

    def __call__(self, e: Exchange) -> None:
        with self._lock:
            if self.fired.is_set():
                return
            if e.method == "PUT" and 200 <= e.status < 300 and e.key.startswith(self._outputs):
                stem = e.key.split("/", 2)[-1]
                self._written[stem] = self._written.get(stem, 0) + 1
                return
            completed = sum(1 for n in self._written.values() if n >= self._sizes)
            if completed and e.method == "GET" and e.key.startswith(self._sources) and self._gate(completed):
                self.fired.set()
                self.result = self._action()


def _kill_action(session: ChaosSession) -> Callable[[], str]:
    def kill() -> str:
        victims = live_runtimes(session.runtimes_dir, session.target.function_name)
        killed = [r.pid for r in victims if sigkill(r)]
        return (f"SIGKILL {len(killed)} runtime(s) of {session.target.function_name} (pids {killed}) mid-batch"
                if killed else f"no live runtime of {session.target.function_name} found in {session.runtimes_dir}")
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
    mine = [m for m in messages if m.run_id == run_id or (m.source_key or "").startswith(
        session.target.run_prefix(run_id))]
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
            levers.enter_context(storage.function_timeout(session.lam, target.function_name,
                                                          scenario.function_timeout_s))
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
        log(f"[{scenario.name}] run {run_id}: {len(kinds)} uploads ({len(scenario.poison)} poison), "
            f"faults {[r.label for r in scenario.rules] or 'none'}")
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
            peer = levers.enter_context(storage.peer_consumer(
                session.lam, target.function_name, storage.queue_arn(session.sqs, target.queue_url)))
            actions.append(f"second consumer {peer} attached to the queue while the first was still processing")
        expected = [k for k, _ in keys]
        settled = settle(run_id, target, expected, timeout=scenario.settle_timeout_s, probe=session.probe,
                         quiet_s=QUIET_S)
        if trigger is not None:
            actions.append(trigger.result or "mid-batch trigger never fired (no complete upload before the end)")
        if scenario.fix_then_redrive:
            proxy.clear_faults()
            actions.append("fault removed (permission fixed)")
            redriven = storage.redrive(session.sqs, target, run_id=run_id)
            redrive_result = redriven.to_dict()
            actions.append(f"redrive moved {redriven.moved} DLQ message(s) back to the queue "
                           f"{dict(redriven.by_code)}")
            settled = settle(run_id, target, expected, timeout=scenario.settle_timeout_s, probe=session.probe,
                             quiet_s=QUIET_S) and settled
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
        name=scenario.name, title=scenario.title, run_id=run_id, uploads=len(keys), poison=len(poison_keys),
        faults_injected=evidence.injected, client_retries=evidence.client_retries,
        redeliveries=evidence.redeliveries,
        poison_redeliveries=sum(n - 1 for k, n in evidence.deliveries.items() if k in poison_keys and n > 1),
        duplicate_writes=evidence.duplicate_writes, outcomes=verdict.by_code, drain_s=_drain_s(acc, started),
        settled=settled, verdict=verdict, actions=tuple(actions), redrive=redrive_result, notes=tuple(notes),
        wall_s=time.monotonic() - wall0, observed_uploads=len(evidence.deliveries),
    )
    if result.observed_uploads == 0:
        notes.append("the fault proxy saw no source read: is the function's S3 endpoint pointed at it?")
        result = replace(result, notes=tuple(notes))
    log(f"[{scenario.name}] outcomes {dict(result.outcomes)}; invariant {'held' if result.held else 'NOT held'}")
    return result


def run_restart(session: ChaosSession, scenario: Scenario) -> ScenarioResult:
    """Restart the emulator mid-run and report, honestly, what survives: without persistence, nothing."""
    from harness import emulator

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
    started = time.time()
    with on_exchange(proxy, trigger):
        for seq in range(scenario.images):
            item = payload("image", seed=seq)
            key = f"{target.run_prefix(run_id)}{seq:03d}-image{item.suffix}"
            storage.upload(session.s3, target.input_bucket, key, item.body, item.content_type, run_id)
            keys.append((key, "image"))
        try:
            from common.waiting import wait_until

            wait_until(restarted.is_set, 60.0, interval=0.1, what="a complete upload before the restart")
        except TimeoutError:
            notes.append("no upload completed within 60 s; restarting anyway")
    before = proxy_evidence(proxy.snapshot(), target, run_id)
    completed_before = sum(1 for k, _ in keys if all(
        f"{target.output_prefix}{s}/{k[len(target.input_prefix):]}" in {w.rsplit('.', 1)[0] for w in before.writes}
        for s in target.sizes))
    t_stop = time.monotonic()
    stopped = emulator.stop(session.settings)
    handle = emulator.ensure_running(session.settings)
    actions.append(f"emulator stopped ({'; '.join(stopped)}) and started again in {time.monotonic() - t_stop:.1f}s "
                   f"(pid {handle.pid})")
    proxy.clear_faults()
    presence = storage.stack_presence(session.s3, session.sqs, session.lam, target)
    if presence.intact:
        actions.append("stack still present after the restart")
        settled = settle(run_id, target, [k for k, _ in keys], timeout=scenario.settle_timeout_s,
                         probe=session.probe, quiet_s=QUIET_S)
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
            "proxy); none can be verified afterwards: every upload is reported MISSING.")
        from harness.load.observe import Outcome, UploadOutcome

        lost = Accounting(run_id, tuple(k for k, _ in keys),
                          tuple(UploadOutcome(k, Outcome.MISSING) for k, _ in keys))
        verdict = judge(lost, _expectations(scenario, keys), None)
        try:
            outputs = deploy(session.settings, session.stack)
            session.refresh(outputs)
            actions.append(f"stack '{session.stack}' redeployed; uploads made during the outage must be re-sent")
            outputs_dir = session.settings.home / "outputs"
            others = sorted(p.stem for p in outputs_dir.glob("*.json") if p.stem != session.stack)
            if others:
                actions.append(f"other stacks on this emulator were wiped too and not redeployed: {', '.join(others)} "
                               f"(`make up` redeploys thumbs)")
        except Exception as exc:  # noqa: BLE001 - reported; the user can `make up`
            actions.append(f"redeploy failed ({type(exc).__name__}: {exc}); run `make up` to recreate the stack")
    result = ScenarioResult(
        name=scenario.name, title=scenario.title, run_id=run_id, uploads=len(keys), poison=0,
        faults_injected={**before.injected, "restart": 1}, client_retries=before.client_retries,
        redeliveries=before.redeliveries, poison_redeliveries=0, duplicate_writes=before.duplicate_writes,
        outcomes=verdict.by_code, drain_s=None, settled=settled, verdict=verdict, actions=tuple(actions),
        notes=tuple(notes), wall_s=time.monotonic() - wall0, limitation=limitation,
    )
    log(f"[{scenario.name}] outcomes {dict(result.outcomes)}; invariant {'held' if result.held else 'NOT held'}")
    return result


def open_session(settings: HarnessSettings, *, stack: str = CHAOS_STACK, deploy_stack: bool = True,
                 log: Callable[[str], None] = lambda line: None) -> ChaosSession:
    """Resolve (deploying if asked or needed) the chaos stack and return a session (use it as a context manager)."""
    outputs = None if deploy_stack else read_outputs(settings, stack)
    if outputs is None:
        try:
            outputs = deploy(settings, stack)
        except Exception as exc:  # noqa: BLE001 - any deploy failure means no pipeline to break
            raise PipelineUnavailable(f"Expected a deployed stack '{stack}' but deploying it failed: {exc}") from exc
    try:
        target = PipelineTarget.from_outputs(outputs)
    except Exception as exc:  # noqa: BLE001
        raise ChaosError(f"Expected usable deploy outputs for stack '{stack}' but received {sorted(outputs)}: {exc}",
                         code="outputs_invalid") from exc
    return ChaosSession(settings, target, stack=stack, log=log)
