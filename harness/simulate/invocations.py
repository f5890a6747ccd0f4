"""Per-invocation data of a measured local run: batches (records sharing an invocation start), their receive,
start and end times, from the thumbnails' metadata and the handler's log lines on the emulator that ran it.

Read once after a load run (the emulator still holds the run's objects and logs) and stored, small, in the run's
extract (`invocations`); `batch_costs` turns it into the per-batch overhead as a function of batch size and the
long-poll pickup latency the local model samples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.simulate.errors import REPORT_INVALID, SimulateError

MIN_PER_SIZE = 5  # a batch size enters a cost line with at least this many batches (a median of fewer is noise)


def read_invocations(
    doc: Mapping[str, Any], stack_name: str = "load", cpu_of: Mapping[str, float] | None = None
) -> list[list[float]]:
    """[start, records, receive, end, fetch+resize sum, earliest send, resize CPU sum] per invocation (s from the
    run's start; receive = the latest ApproximateFirstReceiveTimestamp of its first-time records, end = its last
    record's log line, send = the earliest SentTimestamp of its records, CPU = the records' per-class resize CPU
    `cpu_of` by file name, s), sorted by start. Needs the emulator of the run (HARNESS_PORT/HARNESS_HOME) with
    the stack `stack_name` deployed."""
    from harness.deployment import read_stack_outputs  # the live emulator: only this reader needs it
    from harness.load.model import PipelineTarget
    from harness.load.storage import AwsProbe
    from harness.settings import HarnessSettings

    settings = HarnessSettings.from_env()
    outputs = read_stack_outputs(settings, stack_name)
    run_id = str(doc.get("run_id") or "")
    if outputs is None or not run_id:
        raise SimulateError(REPORT_INVALID, f"Expected the stack {stack_name!r} and a run id but received none")
    probe = AwsProbe.for_target(PipelineTarget.from_outputs(outputs), settings)
    t0 = float(doc.get("started_ms") or 0.0)
    thumbs = probe.thumbnails(run_id)
    logs = probe.log_records(t0 - 60_000, run_id)
    return group_invocations(t0, thumbs, logs, cpu_of)


def file_of(source_key: str) -> str:
    """The corpus file of an upload key `uploads/<run_id>/<seq>-<file>`."""
    return source_key.rsplit("/", 1)[-1].split("-", 1)[-1]


def group_invocations(
    t0: float, thumbs: Sequence[Any], logs: Sequence[Any], cpu_of: Mapping[str, float] | None = None
) -> list[list[float]]:
    """Pure part of `read_invocations`: join thumbnails and log lines by source key, group by invocation start."""
    start_of: dict[str, float] = {}
    total_of: dict[str, float] = {}
    for th in thumbs:
        if th.handler_start_ms is None:
            continue
        start_of[th.source_key] = float(th.handler_start_ms)
        total_of[th.source_key] = float(th.total_ms or 0.0)
    batches: dict[float, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "recv": 0.0, "end": 0.0, "work": 0.0, "sent": float("inf"), "cpu": 0.0}
    )
    for log in logs:
        start = start_of.get(log.source_key)
        if start is None or (log.receive_count or 1) > 1 or log.event not in (None, "ok"):
            continue
        b = batches[start]
        b["n"] += 1
        b["recv"] = max(b["recv"], float(log.first_receive_ms or 0.0))
        b["end"] = max(b["end"], float(log.logged_ms or log.timestamp_ms))
        b["work"] += total_of.get(log.source_key, 0.0)
        b["cpu"] += (cpu_of or {}).get(file_of(log.source_key), 0.0)
        if log.sent_ms:
            b["sent"] = min(b["sent"], float(log.sent_ms))
    rows = [
        [
            round((s - t0) / 1000.0, 4),
            b["n"],
            round((b["recv"] - t0) / 1000.0, 4),
            round((b["end"] - t0) / 1000.0, 4),
            round(b["work"] / 1000.0, 4),
            round((b["sent"] - t0) / 1000.0, 4) if b["sent"] < float("inf") else round((b["recv"] - t0) / 1000.0, 4),
            round(b["cpu"] / 1000.0, 5),
        ]
        for s, b in batches.items()
        if b["recv"] > 0
    ]
    return sorted(rows)


def _line(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> dict[str, float]:
    """a + b x records through the medians per batch size with at least MIN_PER_SIZE batches (weighted by their
    counts; robust to a cold start and to a size seen once or twice)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if not len(y):
        return {"a": 0.0, "b": 0.0, "n": 0}
    sizes = [k for k in np.unique(x) if (x == k).sum() >= MIN_PER_SIZE] or list(np.unique(x))
    med = np.asarray([np.median(y[x == k]) for k in sizes], float)
    w = np.asarray([(x == k).sum() for k in sizes], float)
    if len(sizes) < 2:
        return {"a": float(med[0]), "b": 0.0, "n": int(len(y))}
    b, a = np.polyfit(np.asarray(sizes, float), med, 1, w=np.sqrt(w))
    return {"a": float(a), "b": float(b), "n": int(len(y))}


def cost_samples(rows: Sequence[Sequence[float]], lanes: int) -> dict[str, np.ndarray]:
    """Per-batch samples: receive -> handler start (`pre`, by its records) and a lane's end of invocation -> its next
    receive when a message was already waiting (`post`, by the ended batch's records; the return,
    DeleteMessageBatch, the poll interval and the next ReceiveMessage). Lanes are assigned greedily: a batch goes to
    the lane that ended last before its receive."""
    arr = np.asarray([list(r[:6]) + [r[2]] * (6 - len(r[:6])) for r in rows], float).reshape(-1, 6)
    lane_end: list[tuple[float, float]] = [(-1e9, 0.0)] * max(1, lanes)  # (end, records) per lane
    post_n: list[float] = []
    post_v: list[float] = []
    for _start, records, recv, end, _work, sent in sorted(arr.tolist(), key=lambda r: r[2]):
        free = [j for j, (e, _) in enumerate(lane_end) if e <= recv + 1e-3]
        j = max(free, key=lambda k: lane_end[k][0]) if free else int(np.argmin([e for e, _ in lane_end]))
        prev_end, prev_n = lane_end[j]
        if prev_end > 0 and sent < prev_end and recv >= prev_end:  # a message was waiting when the lane freed
            post_n.append(prev_n)
            post_v.append((recv - prev_end) * 1000.0)
        lane_end[j] = (end, records)
    pre = (arr[:, 0] - arr[:, 2]) * 1000.0
    ok = pre >= 0
    return {
        "pre_n": arr[ok, 1],
        "pre_v": pre[ok],
        "post_n": np.asarray(post_n, float),
        "post_v": np.asarray(post_v, float),
        "records": arr[:, 1],
        "rest": (arr[:, 3] - arr[:, 0]) * 1000.0 - arr[:, 4] * 1000.0,
    }


def batch_costs(rows: Sequence[Sequence[float]], lanes: int) -> dict[str, Any]:
    """What a run's invocations say about the cost of a batch, from their own service times (no latency outputs):
    `pre_ms` and `post_ms` (lines a + b x records, see `cost_samples`), `rest_ms` (a record's time in the handler
    beyond its fetch + resize: thumbnail PUTs, logging)."""
    if not rows:
        return {}
    return pooled_costs([(rows, lanes)])


def pooled_costs(runs: Sequence[tuple[Sequence[Sequence[float]], int]]) -> dict[str, Any]:
    """`batch_costs` over the batches of several runs (a leave-one-out calibration fits them on the other runs)."""
    parts = [cost_samples(rows, lanes) for rows, lanes in runs if rows]
    if not parts:
        return {}

    def cat(key: str) -> np.ndarray:
        return np.concatenate([p[key] for p in parts])

    records = cat("records")
    return {
        "pre_ms": _line(cat("pre_n"), cat("pre_v")),
        "post_ms": _line(cat("post_n"), cat("post_v")),
        "rest_ms": float(max(0.0, cat("rest").sum()) / max(1.0, records.sum())),
        "records_per_batch": float(records.mean()),
        "invocations": int(len(records)),
    }


def slowdown_series(
    rows: Sequence[Sequence[float]], half_window_s: float = 5.0, step_s: float = 2.0
) -> list[list[float]]:
    """[t, factor] every `step_s`: the run's fetch + resize wall over the records' resize CPU in a window of
    +-`half_window_s` around t, relative to the whole run's (1 = the run's mean conditions). It is how the CPU left
    to us by the neighbours (and by the emulator's own ingest) moved during the run, read from service times only."""
    arr = np.asarray([r for r in rows if len(r) >= 7 and r[6] > 0], float)
    if len(arr) < 3:
        return []
    start, work, cpu = arr[:, 0], arr[:, 4], arr[:, 6]
    overall = work.sum() / cpu.sum()
    out: list[list[float]] = []
    for t in np.arange(max(0.0, start.min()), start.max() + step_s, step_s):
        near = np.abs(start - t) <= half_window_s
        if cpu[near].sum() <= 0:
            continue
        out.append([round(float(t), 2), round(float(work[near].sum() / cpu[near].sum() / overall), 4)])
    return out
