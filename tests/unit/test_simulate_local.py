"""The local model's parts: the executor's lanes and LocalStack's empty-poll back-off, per-batch costs and the
slowdown series read from a run's invocations, the load generator's concurrency bound."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness.simulate.engine import COMPLETE, LOCAL_EMPTY_FIRST_S, LOCAL_EMPTY_NEXT_S, Engine
from harness.simulate.invocations import batch_costs, file_of, group_invocations, slowdown_series
from harness.simulate.knobs import Knobs
from harness.simulate.simulation import generator_starts


class FixedService:
    """Every record `record_ms`, `pre_ms` before a batch, `post_ms` after it, messages visible at upload."""

    def __init__(self, record_ms: float = 100.0, pre_ms: float = 50.0, post_ms: float = 100.0) -> None:
        self.r, self.pre, self.post = record_ms, pre_ms, post_ms

    def enqueue_delay_s(self, n: int) -> np.ndarray:
        return np.zeros(n)

    def bind(self, order: np.ndarray, upload_t: np.ndarray) -> None:
        pass

    def record_ms(self, ids: list[int], t: float, busy: int) -> list[float]:
        return [self.r] * len(ids)

    def batch_overhead_ms(self, t: float, busy: int, n: int = 1) -> float:
        return self.pre

    def after_batch_ms(self, n: int) -> float:
        return self.post

    def permanent(self, i: int) -> bool:
        return False

    def retry(self) -> bool:
        return False


def local_run(upload_t: list[float], lanes: int = 2, svc: FixedService | None = None) -> object:
    knobs = Knobs(mode="local", maximum_concurrency=lanes, batch_size=10, batching_window_s=1, seed=3)
    return Engine(knobs, svc or FixedService(), np.asarray(upload_t, float), np.random.default_rng(3)).run()


def test_an_idle_lane_picks_up_after_its_back_off() -> None:
    """Sparse messages (one every 7.3 s): lane 0's long poll of 1 s ends empty, then it sleeps LocalStack's back-off,
    so a message waits 0 s (during a long poll) up to the longest back-off, never more."""
    out = local_run([7.3 * i + 3.0 for i in range(60)])
    wait = out.start_t - out.enqueue_t - 0.05  # minus the receive -> start cost
    assert (out.state == COMPLETE).all()
    assert wait.min() == pytest.approx(0.0, abs=1e-6)
    assert 0.05 < wait.mean() < max(LOCAL_EMPTY_FIRST_S[1], LOCAL_EMPTY_NEXT_S[1])
    assert wait.max() <= LOCAL_EMPTY_FIRST_S[1] + 1e-6


def test_a_backlog_is_served_by_every_lane_in_full_batches_with_the_per_batch_costs() -> None:
    """200 messages at once, 2 lanes, batches of 10: each lane's cycle is pre + 10 x record + post."""
    out = local_run([0.0] * 200)
    cycle = 0.05 + 10 * 0.1 + 0.1
    assert out.counters.invocations == 20
    assert np.nanmax(out.done_t) == pytest.approx(10 * cycle - 0.1, abs=0.05)  # 10 batches per lane, no post last
    assert max(out.samples["concurrency"]) == 2


def test_one_lane_serves_alone_until_it_receives() -> None:
    """The executor's other lanes start parked: one message at a time never needs a second environment."""
    out = local_run([5.0 * i for i in range(10)])
    assert max(out.samples["environments"]) == 1
    assert out.counters.invocations == 10


def test_generator_starts_respect_its_concurrency() -> None:
    due = np.zeros(6)
    starts = generator_starts(due, np.full(6, 2.0), concurrency=2)
    assert starts.tolist() == [0.0, 0.0, 2.0, 2.0, 4.0, 4.0]
    assert generator_starts(np.arange(4.0), np.full(4, 0.5), 1).tolist() == [0.0, 1.0, 2.0, 3.0]


def _thumb(key: str, start: float, total: float) -> SimpleNamespace:
    return SimpleNamespace(source_key=key, handler_start_ms=start, total_ms=total)


def _log(key: str, done: float, recv: float, sent: float) -> SimpleNamespace:
    return SimpleNamespace(
        source_key=key,
        receive_count=1,
        event="ok",
        first_receive_ms=recv,
        logged_ms=done,
        timestamp_ms=done,
        sent_ms=sent,
    )


def test_invocations_group_records_by_invocation_start_and_measure_the_batch_costs() -> None:
    t0 = 1_000_000.0
    keys = [f"uploads/r/{i:06d}-a.jpg" for i in range(3)]
    thumbs = [
        _thumb(k, t0 + s, 100.0) for k, s in zip(keys, (1100.0, 1100.0, 1500.0), strict=True) for _ in ("large", "s")
    ]
    logs = [
        _log(keys[0], t0 + 1200.0, t0 + 1000.0, t0 + 900.0),
        _log(keys[1], t0 + 1300.0, t0 + 1000.0, t0 + 950.0),
        _log(keys[2], t0 + 1600.0, t0 + 1450.0, t0 + 1250.0),  # sent before the first batch ended: it waited
    ]
    rows = group_invocations(t0, thumbs, logs, {"a.jpg": 50.0})
    assert [r[1] for r in rows] == [2, 1]
    assert rows[0][:5] == [1.1, 2, 1.0, 1.3, 0.2] and rows[0][5] == 0.9 and rows[0][6] == pytest.approx(0.1)
    costs = batch_costs(rows, lanes=1)
    # receive -> start: 100 ms for the batch of 2, 50 ms for the batch of 1: the line 0 + 50 x records
    assert costs["pre_ms"]["a"] == pytest.approx(0.0, abs=1e-6) and costs["pre_ms"]["b"] == pytest.approx(50.0)
    assert costs["post_ms"] == {"a": pytest.approx(150.0), "b": 0.0, "n": 1}  # 1.3 s end -> 1.45 s receive
    assert costs["rest_ms"] == pytest.approx((200 - 200 + 100 - 100) / 3)
    assert file_of(keys[0]) == "a.jpg"


def test_slowdown_series_is_relative_to_the_run_mean() -> None:
    rows = [[float(t), 1, t, t + 0.5, 0.2 if t < 10 else 0.1, t, 0.1] for t in range(20)]
    series = slowdown_series(rows, half_window_s=2.0, step_s=2.0)
    factors = dict((t, f) for t, f in series)
    assert factors[0.0] == pytest.approx(2.0 / 1.5, abs=1e-3) and factors[18.0] == pytest.approx(1.0 / 1.5, abs=1e-3)


def test_the_slowdown_knob_parses_as_a_flag() -> None:
    from common.errors import CodedError

    assert Knobs().with_sets(["local_slowdown=false"]).local_slowdown is False
    assert Knobs().with_sets(["local_slowdown=1"]).local_slowdown is True
    with pytest.raises(CodedError, match="KNOB_INVALID"):
        Knobs().with_sets(["local_slowdown=maybe"])
