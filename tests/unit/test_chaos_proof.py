"""Unit tests of scenario proofs: a scenario whose fault did not fire, or whose consequence was not seen, is FAILED."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from harness.chaos import runners, scenarios
from harness.chaos.proof import (
    ALL,
    FAILED_CONSEQUENCE,
    FAILED_FAULT,
    FAILED_INVARIANT,
    PASSED,
    Need,
    Proof,
    check,
    overlapping_deliveries,
)
from harness.chaos.proxy import Exchange
from harness.load.observe import Accounting, Outcome, PipelineTarget, UploadOutcome

TARGET = PipelineTarget(
    input_bucket="in",
    output_bucket="out",
    queue_url="http://q/main",
    dlq_url="http://q/dlq",
    function_name="fn",
    sizes=("large", "small"),
)


def ex(key: str, *, at: float, delay: float = 0.0, call: str = "c") -> Exchange:
    return Exchange(at, "GET", "in", key, 200, None, delay, call, 1, None, 0)


# ---- the check itself -------------------------------------------------------------------------------------------
def test_every_scenario_states_its_fault_and_at_least_one_consequence() -> None:
    for name in scenarios.ORDER:
        proof = scenarios.get(name).proof
        assert proof is not None and proof.fault.counter and proof.consequences, name
    with pytest.raises(Exception, match="Expected a proof"):
        scenarios.Scenario("x", "x")


def test_status_distinguishes_missing_fault_missing_consequence_and_a_broken_invariant() -> None:
    proof = Proof(Need("injected:SlowDown", "throttled"), (Need("client_retries", "retried"),))
    assert check(proof, {}, images=4, poison=0).status(True) == FAILED_FAULT
    assert check(proof, {"injected:SlowDown": 2}, images=4, poison=0).status(True) == FAILED_CONSEQUENCE
    fired = check(proof, {"injected:SlowDown": 2, "client_retries": 1}, images=4, poison=0)
    assert fired.status(True) == PASSED and fired.status(False) == FAILED_INVARIANT
    every = Proof(Need("poison_uploads", "p", ALL, "poison"), (Need("redeliveries", "each image", ALL),))
    partial = check(every, {"poison_uploads": 3, "redeliveries": 3}, images=4, poison=3)
    assert partial.fault_exercised and not partial.consequence_observed
    assert partial.consequences[0].required == 4 and partial.consequences[0].observed == 3


def test_overlapping_deliveries_need_a_second_read_before_the_first_delivery_finished_the_key() -> None:
    key = "uploads/run/000-image.png"
    thumb = TARGET.output_stem("small", key) + ".png"

    def put(at: float) -> Exchange:
        return Exchange(at, "PUT", "out", thumb, 200, None, 0.0, f"put-{at}", 1, "sha", 1)

    # the second read arrives while the first one is still being answered (2.5 s stall)
    assert (
        overlapping_deliveries([ex(key, at=10.0, delay=2.5, call="a"), ex(key, at=11.0, call="b")], TARGET, "run") == 1
    )
    # ... or after it was answered but before the first delivery wrote the key's thumbnails
    in_flight = [ex(key, at=10.0, delay=2.5, call="a"), ex(key, at=12.8, call="b"), put(13.0)]
    assert overlapping_deliveries(in_flight, TARGET, "run") == 1
    # a read after the first delivery's thumbnails were written is a plain redelivery, not an overlap
    after = [ex(key, at=10.0, delay=2.5, call="a"), put(12.7), ex(key, at=13.0, call="b")]
    assert overlapping_deliveries(after, TARGET, "run") == 0
    # client retries of one call are one delivery
    retries = [ex(key, at=10.0, delay=2.5, call="a"), ex(key, at=10.5, delay=2.5, call="a")]
    assert overlapping_deliveries(retries, TARGET, "run") == 0


# ---- a whole scenario run against a stubbed session --------------------------------------------------------------
class FakeS3:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def put_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self.keys.append(Key)
        return {}


class FakeSqs:
    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {"Attributes": {"VisibilityTimeout": "10", "QueueArn": "arn:q"}}

    def set_queue_attributes(self, QueueUrl: str, Attributes: dict[str, str]) -> dict[str, Any]:
        return {}

    def receive_message(self, **_: Any) -> dict[str, Any]:
        return {"Messages": []}


@dataclass
class FakeProxy:
    """Plays the pipeline as the proxy would see it: each upload read once and its thumbnails written. With
    `inject`, the first read of each upload is throttled (503) and retried by the client."""

    s3: FakeS3
    inject: bool
    on_exchange: list[Any] = field(default_factory=list)
    rules: list[Any] = field(default_factory=list)

    def set_rules(self, rules: Any) -> None:
        self.rules = list(rules)

    def clear_faults(self) -> None:
        self.rules = []

    def wait_quiet(self, quiet_s: float, timeout_s: float) -> bool:
        return True  # every exchange of this fake is recorded when the run settles

    def snapshot(self) -> list[Exchange]:
        out = []
        for n, key in enumerate(self.s3.keys):
            call = f"call-{n}"
            if self.inject:
                out.append(Exchange(1.0, "GET", "in", key, 503, "SlowDown", 0.0, call, 1, None, 0))
            out.append(Exchange(1.1, "GET", "in", key, 200, None, 0.0, call, 2 if self.inject else 1, None, 0))
            for size in TARGET.sizes:
                thumb = TARGET.output_stem(size, key) + ".png"
                out.append(Exchange(1.2, "PUT", "out", thumb, 200, None, 0.0, f"put-{n}", 1, f"sha-{n}", 10))
        return out


@dataclass
class FakeSession:
    proxy: FakeProxy
    s3: FakeS3
    target: PipelineTarget = TARGET
    sqs: FakeSqs = field(default_factory=FakeSqs)
    lam: Any = None
    logs: Any = None
    probe: Any = None
    log: Any = print


def run_stubbed(monkeypatch: pytest.MonkeyPatch, scenario: scenarios.Scenario, *, inject: bool) -> Any:
    s3 = FakeS3()
    session = FakeSession(FakeProxy(s3, inject), s3)

    def all_complete(run_id: str, target: Any, expected: list[str], **_: Any) -> Accounting:
        return Accounting(run_id, tuple(expected), tuple(UploadOutcome(k, Outcome.COMPLETE) for k in expected))

    monkeypatch.setattr(runners, "settle", lambda *a, **k: True)
    monkeypatch.setattr(runners, "collect", all_complete)
    return runners.run_scenario(session, scenario)  # type: ignore[arg-type]


def test_a_scenario_whose_proxy_injects_nothing_reports_failed_although_every_upload_completed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario = replace(scenarios.get("s3-throttle"), images=3)
    result = run_stubbed(monkeypatch, scenario, inject=False)
    assert result.held and result.outcomes == {"OK": 3}  # the invariant alone would call this a success
    assert result.status == FAILED_FAULT and not result.passed
    assert result.proof is not None and result.proof.fault.observed == 0
    assert result.to_dict()["status"] == FAILED_FAULT


def test_the_same_stub_passes_once_the_fault_fires_and_the_client_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = replace(scenarios.get("s3-throttle"), images=3)
    result = run_stubbed(monkeypatch, scenario, inject=True)
    assert result.evidence["injected:SlowDown"] == 3 and result.evidence["client_retries"] == 3
    assert result.status == PASSED and result.passed


def test_a_fault_that_fired_without_its_consequence_is_failed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # retryable needs a redelivery of every upload: one read per upload (no redelivery) is not enough
    scenario = replace(
        scenarios.get("retryable"),
        images=2,
        proof=Proof(Need("injected:SlowDown", "throttled"), (Need("redeliveries", "redelivered", ALL),)),
    )
    result = run_stubbed(monkeypatch, scenario, inject=True)
    assert result.proof is not None and result.proof.fault_exercised
    assert result.status == FAILED_CONSEQUENCE
