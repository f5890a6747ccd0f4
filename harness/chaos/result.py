"""The value one chaos scenario run reports: counts, outcomes, verdict, actions and notes (ScenarioResult)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.chaos.proof import FAILED_FAULT, ProofResult
from harness.chaos.verdict import Verdict


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
    evidence: Mapping[str, int] | None = None  # counters the proof is checked against (harness.chaos.proof)
    proof: ProofResult | None = None  # the fault injected and the consequence observed, checked

    @property
    def held(self) -> bool:
        return self.verdict.held

    @property
    def status(self) -> str:
        """PASSED only when the fault fired, its consequence was seen and the invariant held; a limitation fails."""
        if self.proof is None:
            return FAILED_FAULT
        return self.proof.status(self.held and self.limitation is None)

    @property
    def passed(self) -> bool:
        return self.status == "PASSED"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "run_id": self.run_id,
            "uploads": self.uploads,
            "poison": self.poison,
            "faults_injected": dict(self.faults_injected),
            "client_retries": self.client_retries,
            "redeliveries": self.redeliveries,
            "poison_redeliveries": self.poison_redeliveries,
            "duplicate_writes": self.duplicate_writes,
            "duplicates_identical": not self.verdict.nonidentical,
            "outcomes": dict(self.outcomes),
            "drain_s": None if self.drain_s is None else round(self.drain_s, 2),
            "settled": self.settled,
            "invariant_held": self.held,
            "verdict": self.verdict.to_dict(),
            "actions": list(self.actions),
            "redrive": dict(self.redrive) if self.redrive else None,
            "notes": list(self.notes),
            "wall_s": round(self.wall_s, 2),
            "observed_uploads": self.observed_uploads,
            "limitation": self.limitation,
            "evidence": dict(self.evidence or {}),
            "proof": self.proof.to_dict() if self.proof else None,
            "status": self.status,
            "passed": self.passed,
        }
