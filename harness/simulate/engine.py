"""The discrete-event simulation: an event heap over batches (not messages) of an SQS queue, its mapping and Lambda.

Events: POLL (a poller asks for a batch), COLLECT (a batching window ends or the batch fills), DONE (an invocation
ends), WAKE (a message becomes visible while pollers wait), TICK (the mapping scales, the queue expires old messages,
a sample is taken); locally LPOLL (a lane's long poll, or its end) and LEMPTY (an empty long poll ended: lane 0
sleeps LocalStack's back-off, the others park). Messages live in numpy arrays in the order they become visible; a
fresh message is taken by advancing one index, a message coming back (failed, throttled, visibility expired) goes
through a small heap.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from harness.simulate import rules
from harness.simulate.knobs import Knobs

PENDING, COMPLETE, DLQ_HANDLER, REDRIVEN, EXPIRED = 0, 1, 2, 3, 4
POLL, COLLECT, DONE, WAKE, TICK, LPOLL, LEMPTY = 0, 1, 2, 3, 4, 5, 6
THROTTLE_BACKOFF_S = 1.0  # a poller whose invocation was throttled tries again after this
SCALE_DOWN_AFTER_S = 60.0  # the mapping drops back to its initial pollers after this long without backlog
SCALE_PAUSE_AFTER_THROTTLE_S = 60.0
# LocalStack's ESM worker after an empty poll (localstack.utils.backoff.ExponentialBackoff(initial_interval=1,
# max_interval=LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC=0.5 as harness/emulator.py sets it),
# randomisation 0.5): the first sleep is uniform in [0.5, 1.5] s, every further one in [0.25, 0.75] s
LOCAL_EMPTY_FIRST_S = (0.5, 1.5)
LOCAL_EMPTY_NEXT_S = (0.25, 0.75)


class Service(Protocol):
    """Port: how long records take and how they end (harness.simulate.service has the AWS and the local one).
    Message ids are list indexes in enqueue order (after `bind`); the hot path uses plain lists, not numpy, because
    a batch holds ~10 records and numpy's per-call cost would dominate."""

    def enqueue_delay_s(self, n: int) -> np.ndarray: ...

    def bind(self, order: np.ndarray, upload_t: np.ndarray) -> None: ...

    def record_ms(self, ids: list[int], t: float, busy: int) -> list[float]: ...

    def batch_overhead_ms(self, t: float, busy: int, n: int = 1) -> float: ...

    def after_batch_ms(self, n: int) -> float: ...

    def permanent(self, i: int) -> bool: ...

    def retry(self) -> bool: ...


@dataclass
class Counters:
    """Totals over the run."""

    invocations: int = 0
    throttled_invocations: int = 0
    throttled_messages: int = 0
    cold_starts: int = 0
    timeouts: int = 0
    redeliveries: int = 0  # receives beyond the first
    duplicates: int = 0  # records processed again after they were complete
    visibility_expired: int = 0  # messages that became visible again while their batch still ran
    s3_throttles: int = 0
    billed_ms: float = 0.0  # sum over invocations of ceil(duration ms)
    records_processed: int = 0


@dataclass
class SimOutput:
    """Everything a report needs: per-message times and outcomes (numpy, enqueue order), samples, totals."""

    knobs: Knobs
    upload_t: np.ndarray
    enqueue_t: np.ndarray
    start_t: np.ndarray  # handler start of the first attempt (s), nan when never started
    done_t: np.ndarray  # first completion or dead-lettering by the handler (s), nan otherwise
    state: np.ndarray
    receives: np.ndarray
    samples: dict[str, list[float]]
    counters: Counters
    events: int
    end_t: float
    finished: bool  # every message resolved before max_sim_s


class Engine:
    """One run. Build with the knobs, a Service and the upload times (s); `run()` -> SimOutput."""

    def __init__(self, knobs: Knobs, service: Service, upload_t: np.ndarray, rng: np.random.Generator) -> None:
        self.k = knobs
        self.svc = service
        n = len(upload_t)
        enq = np.asarray(upload_t, float) + service.enqueue_delay_s(n)
        order = np.argsort(enq, kind="stable")
        self.upload_np = np.asarray(upload_t, float)[order]
        self.enq_np = enq[order]
        self.enq: list[float] = self.enq_np.tolist()
        self.upload_sorted: list[float] = np.sort(self.upload_np).tolist()
        self.n = n
        nan = math.nan
        self.state = [PENDING] * n
        self.recv = [0] * n
        self.done_t = [nan] * n
        self.start_t = [nan] * n
        self.fp = 0  # fresh messages [fp, n) were never received
        self.redo: list[tuple[float, int]] = []  # (visible again at, id)
        self.ready: deque[int] = deque()  # returned messages visible now
        self.resolved = 0
        self.invisible = 0
        self.heap: list[tuple[float, int, int, Any]] = []
        self.seq = 0
        self.events = 0
        self.c = Counters()
        aws = knobs.mode == "aws"
        self.aws = aws
        self.cap = knobs.mapping_cap
        self.initial = min(knobs.esm_initial_batches, self.cap) if aws else self.cap
        self.target = float(self.initial)
        # LocalStack's poller long-polls with WaitTimeSeconds = window, which returns as soon as a message is there
        # (measured: queue wait p50 42 ms with a 1 s window on a quiet machine): locally the window collects nothing
        self.window = knobs.batching_window_s if aws else 0.0
        self.lanes = 0
        self.idle = 0
        self.parked_lanes: list[int] = []  # local lanes waiting for another lane's receive
        self.empties = 0  # consecutive empty polls of local lane 0 (its back-off)
        self.local_rng = np.random.default_rng(knobs.seed + 7919)
        self.collecting = 0
        self.busy = 0
        self.envs = 0
        self.idle_envs = 0
        self.tokens = float(knobs.function_scale_per_10s)
        self.token_t = 0.0
        self.limit = knobs.function_limit if aws else 1 << 30
        self.wake_at = math.inf
        self.last_throttle = -math.inf
        self.last_backlog = 0.0
        self.prev_visible = 0
        self.s3_second = -1
        self.s3_get = 0.0
        self.s3_put = 0.0
        self.samples: dict[str, list[float]] = {
            name: []
            for name in (
                "t",
                "visible",
                "in_flight",
                "oldest_age_s",
                "concurrency",
                "environments",
                "pollers",
                "completed",
                "dlq",
                "throttles",
                "arrived",
                "expired",
            )
        }
        self.completed = 0
        self.dlq = 0
        self.expired = 0
        service.bind(order, self.upload_np)

    # ---- the queue ------------------------------------------------------------------------------------------
    def _push(self, t: float, kind: int, payload: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, payload))

    def _resolve(self, i: int, state: int) -> None:
        self.state[i] = state
        self.resolved += 1
        if state == COMPLETE:
            self.completed += 1
        elif state == EXPIRED:
            self.expired += 1
        else:
            self.dlq += 1

    def _release(self, t: float) -> None:
        """Returned messages whose visibility expired: redriven to the DLQ past maxReceiveCount, else visible."""
        redo = self.redo
        state = self.state
        while redo and redo[0][0] <= t:
            _, i = heapq.heappop(redo)
            self.invisible -= 1
            st = state[i]
            if st != PENDING and st != COMPLETE:
                continue
            if self.recv[i] >= self.k.max_receive_count:
                if st == PENDING:
                    self._resolve(i, REDRIVEN)
                continue
            self.ready.append(i)

    def _expire(self, t: float) -> None:
        limit = t - self.k.queue_retention_s
        if self.fp < self.n and self.enq[self.fp] < limit:
            hi = bisect.bisect_left(self.enq, limit, self.fp)
            for i in range(self.fp, hi):
                self._resolve(i, EXPIRED)
            self.fp = hi
        while self.ready and self.enq[self.ready[0]] < limit:
            i = self.ready.popleft()
            if self.state[i] == PENDING:
                self._resolve(i, EXPIRED)

    def _visible(self, t: float) -> int:
        self._release(t)
        return len(self.ready) + max(0, bisect.bisect_right(self.enq, t, self.fp) - self.fp)

    def _take(self, t: float, want: int) -> list[int]:
        self._release(t)
        got: list[int] = []
        ready = self.ready
        while ready and len(got) < want:
            got.append(ready.popleft())
        if len(got) < want and self.fp < self.n and self.enq[self.fp] <= t:
            hi = min(bisect.bisect_right(self.enq, t, self.fp), self.fp + want - len(got))
            got.extend(range(self.fp, hi))
            self.fp = hi
        recv = self.recv
        for i in got:
            recv[i] += 1
            if recv[i] > 1:
                self.c.redeliveries += 1
        self.invisible += len(got)
        return got

    def _next_visible(self) -> float:
        nxt = self.enq[self.fp] if self.fp < self.n else math.inf
        if self.redo:
            nxt = min(nxt, self.redo[0][0])
        return nxt

    def _schedule_wake(self, t: float) -> None:
        nxt = max(t, self._next_visible())
        if nxt < self.wake_at and nxt < math.inf:
            self.wake_at = nxt
            self._push(nxt, WAKE)

    def _return(self, ids: list[int], at: float) -> None:
        for i in ids:
            heapq.heappush(self.redo, (at, i))

    # ---- pollers and invocations ----------------------------------------------------------------------------
    def _poll(self, t: float, lane: int = 0) -> None:
        """An AWS poller: an empty poll waits for the next visible message; a partial batch collects for the
        batching window (locally the lanes are `_lpoll`)."""
        ids = self._take(t, self.k.batch_size)
        if not ids:
            self.idle += 1
            self._schedule_wake(t)
            return
        if len(ids) < self.k.batch_size and self.window > 0:
            self.collecting += 1
            need = self.k.batch_size - len(ids)
            fill = self.enq[self.fp + need - 1] if self.fp + need - 1 < self.n else math.inf
            self._push(min(t + self.window, max(t, fill)), COLLECT, (ids, t, lane))
            return
        self._invoke(t, ids, t, lane)

    def _lpoll(self, t: float, lane: int, deadline: float | None) -> None:
        """A local lane's ReceiveMessage: a long poll of `batching_window_s` (LocalStack's SQS answers as soon as one
        message is visible, with what is visible then, up to the batch size). A lane that receives wakes the parked
        lanes (harness/executor/local_executor/esm_concurrency.py); at the end of an empty long poll lane 0 sleeps
        its back-off (LocalStack's worker loop) and the other lanes park."""
        if deadline is None:
            deadline = t + self.k.batching_window_s
        ids = self._take(t, self.k.batch_size)
        if ids:
            self.empties = 0
            woken, self.parked_lanes = self.parked_lanes, []
            for other in woken:
                self._push(t, LPOLL, (other, None))
            self._invoke(t, ids, t, lane)
            return
        nxt = self._next_visible()
        if nxt <= deadline:
            self._push(max(t, nxt), LPOLL, (lane, deadline))
        else:
            self._push(deadline, LEMPTY, lane)

    def _lempty(self, t: float, lane: int) -> None:
        if lane != 0:
            self.parked_lanes.append(lane)
            return
        lo, hi = LOCAL_EMPTY_FIRST_S if self.empties == 0 else LOCAL_EMPTY_NEXT_S
        self.empties += 1
        self._push(t + float(self.local_rng.uniform(lo, hi)), LPOLL, (0, None))

    def _collect_end(self, t: float, ids: list[int], t_recv: float, lane: int) -> None:
        self.collecting -= 1
        more = self._take(t, self.k.batch_size - len(ids))
        self._invoke(t, ids + more, t_recv, lane)
        self._wake_idle(t)

    def _refill(self, t: float) -> None:
        rate = self.k.function_scale_per_10s / 10.0
        self.tokens = min(float(self.k.function_scale_per_10s), self.tokens + rate * (t - self.token_t))
        self.token_t = t

    def _throttle(self, t: float, ids: list[int], t_recv: float) -> None:
        self.c.throttled_invocations += 1
        self.c.throttled_messages += len(ids)
        self.last_throttle = t
        self._return(ids, t_recv + self.k.visibility_timeout_s)
        self._push(t + THROTTLE_BACKOFF_S, POLL)

    def _s3_over(self, t: float, n: int) -> int:
        """Records of this batch over the second's S3 GET/PUT budget (per partitioned prefix x prefixes)."""
        sec = int(t)
        if sec != self.s3_second:
            self.s3_second, self.s3_get, self.s3_put = sec, 0.0, 0.0
        get_cap = self.k.s3_get_per_prefix_s * self.k.s3_prefixes
        put_cap = self.k.s3_put_per_prefix_s * self.k.s3_prefixes  # one PUT per thumbnail size, each its own prefix
        over = min(n, int(max(0.0, self.s3_get + n - get_cap, self.s3_put + n - put_cap)))
        self.s3_get += n
        self.s3_put += n - over
        return over

    def _invoke(self, t: float, ids: list[int], t_recv: float, lane: int = 0) -> None:
        k = self.k
        cold = False
        if self.aws:
            if self.busy >= self.limit:
                self._throttle(t, ids, t_recv)
                return
            if self.idle_envs == 0:
                self._refill(t)
                if self.tokens < 1.0:
                    self._throttle(t, ids, t_recv)
                    return
                self.tokens -= 1.0
                self.envs += 1
                self.idle_envs += 1
                cold = True
                self.c.cold_starts += 1
        elif self.idle_envs == 0:
            self.envs += 1
            self.idle_envs += 1
        self.idle_envs -= 1
        self.busy += 1
        c = self.c
        c.invocations += 1
        c.records_processed += len(ids)
        state, start_t = self.state, self.start_t
        overhead = self.svc.batch_overhead_ms(t, self.busy, len(ids)) + (k.cold_start_ms if cold else 0.0)
        start = t + overhead / 1000.0
        for i in ids:
            if state[i] == COMPLETE:
                c.duplicates += 1
            elif start_t[i] != start_t[i]:  # nan: first start
                start_t[i] = start
        done: list[float] = []
        acc = start
        for d in self.svc.record_ms(ids, t, self.busy):
            acc += d / 1000.0
            done.append(acc)
        end = acc
        failed_batch = False
        if end - t > k.function_timeout_s:  # the invocation is killed: every record comes back
            c.timeouts += 1
            end = t + k.function_timeout_s
            failed_batch = True
        over = self._s3_over(start, len(ids)) if self.aws else 0
        if over:
            c.s3_throttles += over
        c.billed_ms += math.ceil(max(0.0, end - start) * 1000.0 - 1e-9)  # init and invoke path not billed
        self._push(end, DONE, (ids, done, failed_batch, t_recv + k.visibility_timeout_s, len(ids) - over, lane))

    def _done(self, t: float, payload: Any) -> None:
        ids, done, failed_batch, vis_end, s3_ok, lane = payload
        self.busy -= 1
        self.idle_envs += 1
        state, done_t, recv = self.state, self.done_t, self.recv
        svc = self.svc
        max_recv = self.k.max_receive_count
        outlived = t > vis_end  # the batch outlived its visibility: every message was already visible again
        back: list[int] = []
        for j, i in enumerate(ids):
            pending = state[i] == PENDING
            permanent = svc.permanent(i)
            retry = (not permanent) and (j >= s3_ok or svc.retry())
            if failed_batch:
                if pending and not permanent and not retry and done[j] <= t + 1e-9:
                    done_t[i] = done[j]  # thumbnails written before the kill stay written
                    self._resolve(i, COMPLETE)
                back.append(i)
                continue
            if retry and recv[i] < max_recv:
                back.append(i)
            elif pending:
                done_t[i] = done[j]
                self._resolve(i, DLQ_HANDLER if permanent or retry else COMPLETE)
        if outlived:
            self.c.visibility_expired += len(ids)
            self._return(ids, vis_end)
        else:
            self.invisible -= len(ids) - len(back)
            self._return(back, vis_end)
        # the poller goes on, unless the mapping shrank
        if not self.aws:  # the return, DeleteMessageBatch and the poll interval before the lane polls again
            self._push(t + self.svc.after_batch_ms(len(ids)) / 1000.0, LPOLL, (lane, None))
        elif self.lanes > int(self.target):
            self.lanes -= 1
        else:
            self._poll(t, lane)

    def _wake_idle(self, t: float) -> None:
        """Idle pollers take visible messages; while one poller collects a batch the others wait for its end."""
        if self.collecting > 0:
            return
        while self.idle > 0 and self.collecting == 0 and self._visible(t) > 0:
            self.idle -= 1
            self._poll(t)
        if self.idle > 0 and self.collecting == 0:
            self._schedule_wake(t)

    # ---- scaling and sampling -------------------------------------------------------------------------------
    def _tick(self, t: float, dt: float) -> None:
        self._expire(t)
        visible = self._visible(t)
        if self.aws:
            if visible > 0:
                self.last_backlog = t
                if self.prev_visible > 0 and t - self.last_throttle > SCALE_PAUSE_AFTER_THROTTLE_S:
                    self.target = min(float(self.cap), self.target + self.k.esm_scale_up_per_min / 60.0 * dt)
            elif t - self.last_backlog >= SCALE_DOWN_AFTER_S and self.busy == 0:
                self.target = float(self.initial)
        self.prev_visible = visible
        want = int(self.target) if self.aws else self.lanes
        while self.lanes < want:
            self.lanes += 1
            self._poll(t)
        while self.lanes > want and self.idle > 0:
            self.lanes -= 1
            self.idle -= 1
        s = self.samples
        oldest = math.inf
        if self.ready:
            oldest = min(oldest, self.enq[self.ready[0]])
        if self.fp < self.n and self.enq[self.fp] <= t:
            oldest = min(oldest, self.enq[self.fp])
        s["t"].append(t)
        s["visible"].append(self._visible(t))
        s["in_flight"].append(self.invisible)
        s["oldest_age_s"].append(0.0 if oldest == math.inf else t - oldest)
        s["concurrency"].append(self.busy)
        s["environments"].append(self.envs)
        s["pollers"].append(self.lanes)
        s["completed"].append(self.completed)
        s["dlq"].append(self.dlq)
        s["throttles"].append(self.c.throttled_invocations)
        s["arrived"].append(bisect.bisect_right(self.upload_sorted, t))
        s["expired"].append(self.expired)

    def run(self) -> SimOutput:
        k = self.k
        dt = k.sample_interval_s
        last_upload = self.upload_sorted[-1] if self.n else 0.0
        self._push(0.0, TICK)
        if self.aws:
            for _ in range(int(self.initial)):
                self.lanes += 1
                self._push(0.0, POLL)
        else:  # the executor's lanes: lane 0 long-polls, the others start parked
            self.lanes = int(self.initial)
            self.parked_lanes = list(range(1, self.lanes))
            self._push(0.0, LPOLL, (0, None))
        t = 0.0
        finished = False
        while self.heap:
            t, _, kind, payload = heapq.heappop(self.heap)
            self.events += 1
            if t > k.max_sim_s:
                break
            if kind == DONE:
                self._done(t, payload)
                if self.aws:
                    self._wake_idle(t)
            elif kind == LPOLL:
                self._lpoll(t, payload[0], payload[1])
            elif kind == LEMPTY:
                self._lempty(t, payload)
            elif kind == POLL:
                self._poll(t)
            elif kind == COLLECT:
                self._collect_end(t, payload[0], payload[1], payload[2])
            elif kind == WAKE:
                self.wake_at = math.inf
                self._wake_idle(t)
            else:
                self._tick(t, dt)
                if self.resolved >= self.n and t >= last_upload:
                    finished = True
                    break
                self._push(t + dt, TICK)
        return SimOutput(
            k,
            self.upload_np,
            self.enq_np,
            np.asarray(self.start_t),
            np.asarray(self.done_t),
            np.asarray(self.state, np.int8),
            np.asarray(self.recv, np.int32),
            self.samples,
            self.c,
            self.events,
            t,
            finished,
        )


def cpu_share(memory_mb: int) -> float:
    """Fraction of one vCPU a single-threaded handler gets at `memory_mb` (Lambda: proportional, 1 at 1,769 MB)."""
    return min(1.0, memory_mb / rules.FULL_VCPU_MB)
