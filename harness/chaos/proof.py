"""What each scenario must show it did: the fault it injected and the consequence it observed (pure values + checks).

A scenario whose fault did not fire, or whose consequence was not seen, tested nothing: it is FAILED whatever the
invariant says. Evidence is a flat mapping of counters (e.g. `injected:SlowDown`, `client_retries`,
`sandbox_timedout`) that the runner fills from the fault proxy, the function's logs, the kill and restart actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harness.chaos.proxy import Exchange
from harness.load.model import PipelineTarget

PASSED = "PASSED"
FAILED_FAULT = "FAILED (fault not exercised)"
FAILED_CONSEQUENCE = "FAILED (consequence not observed)"
FAILED_INVARIANT = "FAILED (invariant not held)"
ALL = -1  # `at_least=ALL`: as many as the scenario's uploads of that kind (valid images or poison files)


@dataclass(frozen=True)
class Need:
    """One evidence counter that must reach `at_least` (ALL: the number of uploads it concerns), with its meaning."""

    counter: str
    what: str
    at_least: int = 1
    of: str = "images"  # with ALL: 'images' or 'poison'

    def required(self, images: int, poison: int) -> int:
        if self.at_least != ALL:
            return self.at_least
        return max(1, poison if self.of == "poison" else images)


@dataclass(frozen=True)
class Proof:
    """The fault a scenario must inject and the consequences it must observe."""

    fault: Need
    consequences: tuple[Need, ...]


@dataclass(frozen=True)
class ProofCheck:
    """One need, checked: the counter's value and whether it met the requirement."""

    counter: str
    what: str
    required: int
    observed: int

    @property
    def met(self) -> bool:
        return self.observed >= self.required

    def to_dict(self) -> dict[str, object]:
        return {
            "counter": self.counter,
            "what": self.what,
            "required": self.required,
            "observed": self.observed,
            "met": self.met,
        }


@dataclass(frozen=True)
class ProofResult:
    fault: ProofCheck
    consequences: tuple[ProofCheck, ...]

    @property
    def fault_exercised(self) -> bool:
        return self.fault.met

    @property
    def consequence_observed(self) -> bool:
        return all(c.met for c in self.consequences)

    def status(self, invariant_held: bool) -> str:
        if not self.fault_exercised:
            return FAILED_FAULT
        if not self.consequence_observed:
            return FAILED_CONSEQUENCE
        return PASSED if invariant_held else FAILED_INVARIANT

    def to_dict(self) -> dict[str, object]:
        return {
            "fault": self.fault.to_dict(),
            "consequences": [c.to_dict() for c in self.consequences],
            "fault_exercised": self.fault_exercised,
            "consequence_observed": self.consequence_observed,
        }


def check(proof: Proof, evidence: Mapping[str, int], *, images: int, poison: int) -> ProofResult:
    def one(need: Need) -> ProofCheck:
        return ProofCheck(need.counter, need.what, need.required(images, poison), int(evidence.get(need.counter, 0)))

    return ProofResult(one(proof.fault), tuple(one(n) for n in proof.consequences))


def overlapping_deliveries(exchanges: Iterable[Exchange], target: PipelineTarget, run_id: str) -> int:
    """Source keys read by a second delivery (another SDK call) before the first delivery had finished with them:
    before any thumbnail of the key was written after the first read (and before that read was even answered).
    The first delivery's message was in flight then: the same message received twice while in flight."""
    source_prefix = target.run_prefix(run_id)
    reads: dict[str, dict[str, tuple[float, float]]] = {}  # key -> call id -> (first arrival, answered at)
    writes: list[tuple[float, str]] = []
    for e in exchanges:
        if e.method == "GET" and e.bucket == target.input_bucket and e.key.startswith(source_prefix):
            calls = reads.setdefault(e.key, {})
            start, end = calls.get(e.invocation_id, (e.at, e.at + e.delayed_s))
            calls[e.invocation_id] = (min(start, e.at), max(end, e.at + e.delayed_s))
        elif e.method == "PUT" and e.bucket == target.output_bucket and 200 <= e.status < 300:
            writes.append((e.at, e.key))
    overlapping = 0
    for key, calls in reads.items():
        if len(calls) < 2:
            continue
        (t1, answered), *later = sorted(calls.values())
        stems = tuple(target.output_stem(size, key) for size in target.sizes)
        first_write = min((at for at, k in writes if at > t1 and k.startswith(stems)), default=float("inf"))
        if later[0][0] < max(answered, first_write if first_write != float("inf") else answered):
            overlapping += 1
    return overlapping
