"""Faults during a load run (a scenario's [faults] table): the chaos fault proxy in the function's S3 path and a
runtime killer, started before the uploads and undone after the drain; reports what fired and whether every
duplicate thumbnail write was byte-identical."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.aws import client
from harness.chaos import storage as chaos_storage
from harness.chaos.faults import FaultInjector, stall_bound_s
from harness.chaos.proxy import FaultProxy
from harness.chaos.runtime import live_runtimes, sigkill
from harness.load.model import PipelineTarget
from harness.load.scenario import FaultPlan
from harness.runtimes import runtimes_dir
from harness.settings import HarnessSettings

QUIET_S = 1.0  # nothing handled by the fault proxy for this long: its records are complete


@dataclass
class FaultInjection:
    """A running fault plan; `stop()` undoes it and returns its figures."""

    plan: FaultPlan
    settings: HarnessSettings
    target: PipelineTarget
    log: Callable[[str], None] = lambda line: None
    kills: list[dict[str, Any]] = field(default_factory=list)
    _proxy: FaultProxy | None = None
    _env: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _killer: threading.Thread | None = None
    _started: float = 0.0

    def start(self) -> FaultInjection:
        self._started = time.time()
        if self.plan.s3:
            self._proxy = FaultProxy(
                self.settings.endpoint, injector=FaultInjector(self.plan.rules, seed=self.plan.seed)
            )
            self._proxy.start()
            lam = client("lambda", self.settings)
            self._env = chaos_storage.function_env(
                lam, self.target.function_name, {"AWS_ENDPOINT_URL_S3": self._proxy.endpoint}
            )
            self._env.__enter__()
            self.log(
                f"fault proxy {self._proxy.endpoint} in {self.target.function_name}'s S3 path: {list(self.plan.s3)}"
            )
        if self.plan.kill_runtime_every_s:
            self._killer = threading.Thread(target=self._kill_loop, name="load-runtime-killer", daemon=True)
            self._killer.start()
            self.log(f"killing {self.target.function_name}'s runtimes every {self.plan.kill_runtime_every_s:g} s")
        return self

    def _kill_loop(self) -> None:
        assert self.plan.kill_runtime_every_s
        folder = runtimes_dir(self.settings.home)
        while not self._stop.wait(self.plan.kill_runtime_every_s):
            victims = live_runtimes(folder, self.target.function_name)
            killed = [r.pid for r in victims if sigkill(r)]
            self.kills.append({"at_s": round(time.time() - self._started, 1), "pids": killed})

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._killer is not None:
            self._killer.join(timeout=10)
        exchanges: list[Any] = []
        if self._proxy is not None:
            # a stalled exchange is recorded when its stall ends: let what the proxy still holds be answered first
            bound_s = stall_bound_s(self.plan.rules)
            if not self._proxy.wait_quiet(QUIET_S, bound_s):
                self.log(f"warning: the fault proxy still had requests in flight {bound_s:.0f} s after the drain")
            exchanges = self._proxy.snapshot()
        if self._env is not None:
            try:
                self._env.__exit__(None, None, None)
            except Exception as exc:  # noqa: BLE001 - reported; `make up` redeploys the function's environment
                self.log(f"warning: could not restore {self.target.function_name}'s environment: {exc}")
        if self._proxy is not None:
            self._proxy.stop()
        return summarize(self.plan, exchanges, self.target, self.kills)


def summarize(
    plan: FaultPlan, exchanges: list[Any], target: PipelineTarget, kills: list[dict[str, Any]]
) -> dict[str, Any]:
    """Figures of a fault plan: requests, faults injected by code, client retries, kills, duplicate writes."""
    injected: Counter[str] = Counter(e.injected for e in exchanges if e.injected)
    writes: dict[str, set[str]] = {}
    write_counts: Counter[str] = Counter()
    for e in exchanges:
        if (
            e.method == "PUT"
            and e.bucket == target.output_bucket
            and 200 <= e.status < 300
            and e.body_sha256
            and e.key.startswith(target.output_prefix)
        ):
            writes.setdefault(e.key, set()).add(e.body_sha256)
            write_counts[e.key] += 1
    nonidentical = sorted(k for k, shas in writes.items() if len(shas) > 1)
    requests = len(exchanges)
    return {
        "plan": {"s3": list(plan.s3), "kill_runtime_every_s": plan.kill_runtime_every_s},
        "proxy_requests": requests,
        "injected": dict(sorted(injected.items())),
        "injected_rate": round(sum(injected.values()) / requests, 4) if requests else 0.0,
        "client_retries": sum(1 for e in exchanges if e.attempt > 1),
        "kills": len([k for k in kills if k["pids"]]),
        "runtimes_killed": sum(len(k["pids"]) for k in kills),
        "kill_log": kills,
        "thumbnail_keys_written": len(writes),
        "duplicate_writes": sum(1 for n in write_counts.values() if n > 1),
        "duplicates_identical": not nonidentical,
        "nonidentical": nonidentical[:50],
    }


def start_faults(
    plan: FaultPlan | None, settings: HarnessSettings, target: PipelineTarget, log: Callable[[str], None]
) -> FaultInjection | None:
    """Start `plan` against the deployed function (None when the scenario has no [faults])."""
    if plan is None or not plan.active:
        return None
    return FaultInjection(plan, settings, target, log).start()
