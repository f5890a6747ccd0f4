"""The chaos invariant of one run (complete or dead-lettered with a reason, none lost, identical duplicates)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from harness.chaos.proxy import Exchange
from harness.load.observe import UNPARSEABLE, Accounting, Outcome, PipelineTarget

OK = "OK"


@dataclass(frozen=True)
class Expectation:
    """What a scenario expects of one upload: 'complete', 'dlq' (optionally with one of `codes`), or 'either'."""

    key: str
    kind: str = "image"
    expect: str = "complete"
    codes: frozenset[str] = frozenset()

    def met_by(self, outcome: str, code: str | None) -> bool:
        if self.expect == "either":
            return outcome in (Outcome.COMPLETE.value, Outcome.DLQ.value)
        if self.expect == "dlq":
            return outcome == Outcome.DLQ.value and (not self.codes or code in self.codes)
        return outcome == self.expect


@dataclass(frozen=True)
class ProxyEvidence:
    """What the S3 fault proxy saw for one run (only requests for this run's keys)."""

    requests: int = 0
    injected: Mapping[str, int] = field(default_factory=dict)  # S3 error code (or 'delay') -> count
    client_retries: int = 0  # botocore attempts > 1 (retries inside one SDK call)
    deliveries: Mapping[str, int] = field(default_factory=dict)  # source key -> distinct GetObject calls
    writes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # thumbnail key -> sha256 of each 2xx PUT
    upstream_errors: int = 0

    @property
    def redeliveries(self) -> int:
        """Handler attempts beyond the first per upload (SQS redeliveries and duplicate deliveries)."""
        return sum(n - 1 for n in self.deliveries.values() if n > 1)

    @property
    def duplicate_writes(self) -> int:
        return sum(1 for shas in self.writes.values() if len(shas) > 1)

    @property
    def nonidentical(self) -> tuple[str, ...]:
        return tuple(sorted(k for k, shas in self.writes.items() if len(set(shas)) > 1))


def proxy_evidence(exchanges: Iterable[Exchange], target: PipelineTarget, run_id: str) -> ProxyEvidence:
    """Reduce the proxy's exchange log to the evidence of one run."""
    source_prefix = target.run_prefix(run_id)
    out_prefixes = target.run_output_prefixes(run_id)
    requests = retries = errors = 0
    injected: Counter[str] = Counter()
    calls: dict[str, set[str]] = {}
    writes: dict[str, list[str]] = {}
    for e in exchanges:
        source = e.bucket == target.input_bucket and e.key.startswith(source_prefix)
        output = e.bucket == target.output_bucket and e.key.startswith(out_prefixes)
        if not (source or output):
            continue
        requests += 1
        if e.attempt > 1:
            retries += 1
        if e.injected:
            injected[e.injected] += 1
        elif e.delayed_s > 0:
            injected["delay"] += 1
        if e.status == 0:
            errors += 1
        if source and e.method == "GET":
            calls.setdefault(e.key, set()).add(e.invocation_id)
        if output and e.method == "PUT" and 200 <= e.status < 300 and e.body_sha256:
            writes.setdefault(e.key, []).append(e.body_sha256)
    return ProxyEvidence(
        requests,
        dict(sorted(injected.items())),
        retries,
        {k: len(v) for k, v in calls.items()},
        {k: tuple(v) for k, v in writes.items()},
        errors,
    )


@dataclass(frozen=True)
class Verdict:
    """Whether the invariant held for one run, and why not."""

    expected: int
    by_code: Mapping[str, int]  # OK / DLQ error code / MISSING -> uploads
    lost: tuple[str, ...]  # MISSING: neither complete nor dead-lettered
    no_reason: tuple[str, ...]  # dead-lettered without a parseable reason
    nonidentical: tuple[str, ...]  # thumbnail keys written more than once with different bytes
    unexpected: tuple[str, ...]  # outcome differs from the scenario's expectation (reported, not an invariant)
    conflicts: tuple[str, ...]  # complete and also in the DLQ
    notes: tuple[str, ...] = ()
    # per cause, from the accounting (harness.load.accounting): lost deleted without output, overwritten, wrong
    # content type, DLQ causes; the same names as the load report's, so a seed run and ours compare row by row
    causes: Mapping[str, int] = field(default_factory=dict)

    @property
    def held(self) -> bool:
        return not self.lost and not self.no_reason and not self.nonidentical

    def to_dict(self) -> dict[str, object]:
        return {
            "held": self.held,
            "expected": self.expected,
            "by_code": dict(self.by_code),
            "lost": list(self.lost[:50]),
            "lost_count": len(self.lost),
            "no_reason": list(self.no_reason[:50]),
            "nonidentical": list(self.nonidentical[:50]),
            "unexpected": list(self.unexpected[:50]),
            "unexpected_count": len(self.unexpected),
            "conflicts": list(self.conflicts[:50]),
            "notes": list(self.notes),
            "causes": dict(self.causes),
        }


def judge(accounting: Accounting, expectations: Iterable[Expectation], evidence: ProxyEvidence | None) -> Verdict:
    """Combine the observation accounting with the scenario's expectations and the proxy's write log."""
    wanted = {e.key: e for e in expectations}
    by_code: Counter[str] = Counter()
    lost, no_reason, unexpected = [], [], []
    for item in accounting.outcomes:
        if item.outcome is Outcome.COMPLETE:
            code = OK
        elif item.outcome is Outcome.DLQ:
            code = item.dlq_code or UNPARSEABLE
            if code == UNPARSEABLE:
                no_reason.append(item.key)
        else:
            code = "MISSING"
            lost.append(item.key)
        by_code[code] += 1
        expectation = wanted.get(item.key)
        if expectation is not None and not expectation.met_by(item.outcome.value, item.dlq_code):
            unexpected.append(item.key)
    missing_keys = set(wanted) - {o.key for o in accounting.outcomes}
    notes = list(accounting.notes)
    if not accounting.invariant_holds:
        notes.append("accounting incomplete: not every expected upload has exactly one outcome")
        lost.extend(sorted(missing_keys))
    return Verdict(
        expected=len(wanted) or len(accounting.expected),
        by_code=dict(sorted(by_code.items())),
        lost=tuple(lost),
        no_reason=tuple(no_reason),
        nonidentical=evidence.nonidentical if evidence else (),
        unexpected=tuple(unexpected),
        conflicts=tuple(accounting.conflicts),
        notes=tuple(notes),
        causes=dict(accounting.causes),
    )
