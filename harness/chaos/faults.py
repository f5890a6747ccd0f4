"""Fault rules for the S3 fault proxy: which S3 requests fail or stall, how, and how often (pure values + decisions)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.chaos.errors import InvalidFaultSpec

# S3 error codes the proxy can answer with: HTTP status and the message real S3 sends.
S3_ERRORS: dict[str, tuple[int, str]] = {
    "SlowDown": (503, "Please reduce your request rate."),
    "ServiceUnavailable": (503, "Service is unable to handle request."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "AccessDenied": (403, "Access Denied"),
}
METHODS = frozenset({"GET", "PUT", "HEAD", "POST", "DELETE"})


@dataclass(frozen=True)
class S3Request:
    """What a rule can match on: the HTTP method and the path-style bucket/key (key '' for bucket operations)."""

    method: str
    bucket: str
    key: str
    call_id: str = ""  # botocore's amz-sdk-invocation-id: the same for every retry of one SDK call


@dataclass(frozen=True)
class FaultRule:
    """One fault: matching object requests get `error` (an S3 error code) and/or `delay_s` seconds of delay.

    rate      probability per matching request (deterministic with the injector's seed)
    count     at most this many faults in total (None = no limit)
    per_key   at most this many faults per object key (with rate 1: its first `per_key` requests fail)
    calls_per_key  fault every attempt of the first `calls_per_key` SDK calls per key, whatever the client's
              retry policy (so a handler delivery fails for sure, and a later delivery succeeds)
    """

    method: str
    error: str | None = None
    delay_s: float = 0.0
    rate: float = 1.0
    count: int | None = None
    per_key: int | None = None
    calls_per_key: int | None = None
    key_prefix: str = ""
    bucket: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidFaultSpec(
                "INVALID_FAULT_SPEC", f"Expected one of {sorted(METHODS)} for method but received {self.method!r}"
            )
        if self.error is not None and self.error not in S3_ERRORS:
            raise InvalidFaultSpec(
                "INVALID_FAULT_SPEC", f"Expected one of {sorted(S3_ERRORS)} for error but received {self.error!r}"
            )
        if self.error is None and self.delay_s <= 0:
            raise InvalidFaultSpec(
                "INVALID_FAULT_SPEC", f"Expected an error or a positive delay_s for a fault but received {self!r}"
            )
        if not 0.0 < self.rate <= 1.0:
            raise InvalidFaultSpec(
                "INVALID_FAULT_SPEC", f"Expected a rate in (0, 1] for rate but received {self.rate!r}"
            )
        if self.delay_s < 0:
            raise InvalidFaultSpec(
                "INVALID_FAULT_SPEC", f"Expected a non-negative number for delay_s but received {self.delay_s!r}"
            )
        for name in ("count", "per_key", "calls_per_key"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidFaultSpec(
                    "INVALID_FAULT_SPEC", f"Expected a positive integer for {name} but received {value!r}"
                )

    @property
    def label(self) -> str:
        what = self.error or f"delay{self.delay_s:g}s"
        if self.error and self.delay_s:
            what += f"+delay{self.delay_s:g}s"
        return f"{self.method}:{what}"

    def matches(self, request: S3Request) -> bool:
        return (
            request.method == self.method
            and bool(request.key)
            and request.key.startswith(self.key_prefix)
            and (self.bucket is None or request.bucket == self.bucket)
        )

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """Parse 'METHOD:ERROR[:name=value,...]', e.g. 'GET:SlowDown:rate=0.3', 'PUT:AccessDenied', 'GET:delay=2'."""
        parts = spec.split(":")
        if len(parts) < 2 or not parts[0]:
            raise InvalidFaultSpec(
                "INVALID_FAULT_SPEC", f"Expected 'METHOD:ERROR[:k=v,...]' for a fault spec but received {spec!r}"
            )
        method, *rest = parts
        error: str | None = None
        options: dict[str, str] = {}
        for part in rest:
            for item in filter(None, part.split(",")):
                if "=" in item:
                    name, _, value = item.partition("=")
                    options[name.strip()] = value.strip()
                elif error is None:
                    error = item.strip()
                else:
                    raise InvalidFaultSpec(
                        "INVALID_FAULT_SPEC", f"Expected one error code in fault spec but received {spec!r}"
                    )
        kwargs: dict[str, object] = {}
        try:
            for name, value in options.items():
                if name in ("rate", "delay", "delay_s"):
                    kwargs["delay_s" if name.startswith("delay") else "rate"] = float(value)
                elif name in ("count", "per_key", "calls_per_key"):
                    kwargs[name] = int(value)
                elif name in ("prefix", "key_prefix"):
                    kwargs["key_prefix"] = value
                elif name == "bucket":
                    kwargs["bucket"] = value
                else:
                    raise InvalidFaultSpec(
                        "INVALID_FAULT_SPEC",
                        "Expected rate, delay, count, per_key, calls_per_key, prefix or bucket in fault spec "
                        f"but received {name!r}",
                    )
        except ValueError:
            raise InvalidFaultSpec(
                "INVALID_FAULT_SPEC", f"Expected numbers for rate/delay/count/per_key but received {spec!r}"
            ) from None
        return cls(method=method.upper(), error=error, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Decision:
    """What the proxy does with one request: forward it (maybe after a delay) or answer with an S3 error."""

    rule: FaultRule | None = None
    error: str | None = None
    delay_s: float = 0.0

    @property
    def status(self) -> int:
        return S3_ERRORS[self.error][0] if self.error else 0


PASS = Decision()


@dataclass
class FaultInjector:
    """Thread-safe rule evaluation with counters; rules can be swapped at run time (that is how faults are 'fixed')."""

    rules: tuple[FaultRule, ...] = ()
    seed: int = 7
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rng: random.Random = field(init=False, repr=False)
    _fired: Counter[FaultRule] = field(default_factory=Counter, repr=False)
    _per_key: Counter[tuple[FaultRule, str]] = field(default_factory=Counter, repr=False)
    _calls: dict[tuple[FaultRule, str], set[str]] = field(default_factory=dict, repr=False)
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def set_rules(self, rules: tuple[FaultRule, ...] | list[FaultRule]) -> None:
        with self._lock:
            self.rules = tuple(rules)
            self._fired.clear()
            self._per_key.clear()
            self._calls.clear()

    def clear(self) -> None:
        self.set_rules(())

    def decide(self, request: S3Request) -> Decision:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(request):
                    continue
                if rule.count is not None and self._fired[rule] >= rule.count:
                    continue
                slot = (rule, f"{request.bucket}/{request.key}")
                if rule.per_key is not None and self._per_key[slot] >= rule.per_key:
                    continue
                if rule.calls_per_key is not None:
                    calls = self._calls.setdefault(slot, set())
                    if request.call_id not in calls:
                        if len(calls) >= rule.calls_per_key:
                            continue
                        calls.add(request.call_id)
                if rule.rate < 1.0 and self._rng.random() >= rule.rate:
                    continue
                self._fired[rule] += 1
                self._per_key[slot] += 1
                self.injected[rule.label] += 1
                return Decision(rule=rule, error=rule.error, delay_s=rule.delay_s)
            return PASS


def s3_error_body(code: str, resource: str, request_id: str) -> bytes:
    """The XML error document S3 answers with."""
    message = S3_ERRORS[code][1]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>{resource}</Resource>"
        f"<RequestId>{request_id}</RequestId></Error>"
    ).encode()


STALL_MARGIN_S = 30.0


def stall_bound_s(rules: Iterable[FaultRule]) -> float:
    """How long a fault proxy may take to answer what it holds once a run is over: its longest injected stall and a
    margin (a stalled exchange is recorded only when its stall ends)."""
    return max((r.delay_s for r in rules), default=0.0) + STALL_MARGIN_S
