"""What the simulator knows about the pipeline, from measurements: service times per input class, CPU per image by
process, stage delays, failure rates; read from load and chaos reports, stored as small JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import numpy as np

from harness.simulate.errors import CALIBRATION_INVALID, REPORT_INVALID, REPORT_NOT_FOUND, SimulateError

QUANTILES = (0.0, 0.5, 0.9, 0.99, 1.0)
# Assumptions where a load report has no figure (each is printed in the report's assumptions list).
DEFAULT_EMULATOR_INGEST_SHARE = 0.5  # part of the emulator's CPU per image spent on the upload (PUT, notification)
DEFAULT_RECORD_WAIT_MS = 5.0  # non-CPU wall time per record locally (loopback round trips)
DEFAULT_LOCAL_INVOKE_MS = 15.0  # LocalStack's invoke path per batch, wall time beyond CPU
DEFAULT_LOCAL_POST_MS = 20.0  # a lane's end of batch -> next receive: LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC


@dataclass(frozen=True)
class Dist:
    """An empirical distribution (ms) as values at cumulative probabilities `p`; sampled by inverse CDF."""

    p: tuple[float, ...]
    v: tuple[float, ...]

    @classmethod
    def constant(cls, value: float) -> Dist:
        return cls((0.0, 1.0), (float(value), float(value)))

    @classmethod
    def from_values(cls, values: Sequence[float], points: int = 41) -> Dist:
        if not len(values):
            raise SimulateError(CALIBRATION_INVALID, "Expected at least one value for a distribution but received none")
        p = np.linspace(0.0, 1.0, points)
        return cls(tuple(float(x) for x in p), tuple(float(x) for x in np.quantile(np.asarray(values, float), p)))

    @classmethod
    def from_summary(cls, d: Mapping[str, Any]) -> Dist | None:
        """From a load report stage {p50, p90, p99, max}: piecewise linear between them, 0.5 x p50 at p=0."""
        if not d or d.get("p50") is None:
            return None
        p50 = float(d["p50"])
        p90 = float(d.get("p90") or p50)
        p99 = float(d.get("p99") or p90)
        top = float(d.get("max") or p99)
        return cls(QUANTILES, (max(0.0, 0.5 * p50), p50, max(p50, p90), max(p90, p99), max(p99, top)))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.interp(rng.random(n), self.p, self.v)

    def quantile(self, q: float) -> float:
        return float(np.interp(q, self.p, self.v))

    @property
    def mean(self) -> float:
        return float(np.trapezoid(self.v, self.p))


@dataclass(frozen=True)
class InputClass:
    """One input file of the corpus: its share of uploads, the handler's resize CPU for it, whether it fails."""

    name: str
    weight: float
    cpu_ms: float  # resize CPU per record (process time of the handler's resizer, measured)
    permanent: bool = False  # the handler rejects it (corrupt, bomb, not an image): DLQ at once
    bytes: int = 0


@dataclass(frozen=True)
class Calibration:
    """Measured inputs of one simulation. CPU figures are per completed upload, from a load report's `cpu` section."""

    source: str
    backend: str
    classes: tuple[InputClass, ...]
    handler_overhead_cpu_ms: float  # runtime CPU per record beyond the resize (boto3, encoding, logging)
    emulator_cpu_ms: float = 0.0  # emulator CPU per image (S3, SQS, notifications, Lambda service)
    harness_cpu_ms: float = 0.0  # the load generator's CPU per upload
    other_cores: float = 0.0  # neighbours' CPU during the run (cores)
    cores: int = 2
    put_ms: Dist = field(default_factory=lambda: Dist.constant(20.0))  # upload start -> PUT acknowledged
    notify_ms: Dist = field(default_factory=lambda: Dist.constant(30.0))  # PUT acknowledged -> message in queue
    emulator_ingest_share: float = DEFAULT_EMULATOR_INGEST_SHARE
    record_wait_ms: float = DEFAULT_RECORD_WAIT_MS
    local_invoke_ms: float = DEFAULT_LOCAL_INVOKE_MS
    local_stretch: float = 1.0  # wall / CPU of the raw resize on this machine around the run (the neighbours' effect)
    # measured in the run (local mode samples these instead of CPU x slowdown): per record fetch + resize wall
    # (handler total-ms) and the rest of a record's time in the handler (thumbnail PUTs, logging)
    local_handler_ms: Dist | None = None
    local_put_ms: float = 0.0
    # from the run's own invocations (harness.simulate.invocations): receive -> handler start and end -> next
    # receive with messages waiting, each a + b x records (ms)
    local_pre_ms: tuple[float, float] | None = None
    local_post_ms: tuple[float, float] | None = None
    local_slowdown: tuple[tuple[float, float], ...] = ()  # [t s, factor]: the run's record times over its mean
    retryable_rate: float = 0.0
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.classes:
            raise SimulateError(CALIBRATION_INVALID, "Expected at least one input class but received none")
        if sum(c.weight for c in self.classes) <= 0:
            raise SimulateError(CALIBRATION_INVALID, "Expected positive input class weights but received none")

    def weights(self) -> np.ndarray:
        w = np.asarray([c.weight for c in self.classes], float)
        return w / w.sum()

    def mean_resize_cpu_ms(self, ok_only: bool = True) -> float:
        w = np.asarray([c.weight if not (ok_only and c.permanent) else 0.0 for c in self.classes], float)
        cpu = np.asarray([c.cpu_ms for c in self.classes], float)
        return float((w * cpu).sum() / w.sum()) if w.sum() > 0 else 0.0

    def with_mix(self, mix: Mapping[str, float]) -> Calibration:
        """The same per-class figures under other weights (by class name; absent classes get 0)."""
        classes = tuple(replace(c, weight=float(mix.get(c.name, 0.0))) for c in self.classes)
        return replace(self, classes=classes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Calibration:
        try:
            data = dict(doc)
            data["classes"] = tuple(InputClass(**c) for c in data["classes"])
            for key in ("put_ms", "notify_ms", "local_handler_ms"):
                if data.get(key) is not None:
                    data[key] = Dist(tuple(data[key]["p"]), tuple(data[key]["v"]))
            data["notes"] = tuple(data.get("notes", ()))
            data["local_slowdown"] = tuple((float(t), float(f)) for t, f in data.get("local_slowdown") or ())
            for key in ("local_pre_ms", "local_post_ms"):
                if data.get(key) is not None:
                    data[key] = (float(data[key][0]), float(data[key][1]))
            return cls(**data)
        except (KeyError, TypeError, ValueError) as exc:
            raise SimulateError(
                CALIBRATION_INVALID,
                f"Expected a calibration document but received an error: {type(exc).__name__}: {exc}",
            ) from exc


def read_json(path: str | Path) -> dict[str, Any]:
    """A report.json (or a folder holding one, searched one and two levels down)."""
    p = Path(path)
    if p.is_dir():
        found = [p / "report.json", *sorted(p.glob("*/report.json")), *sorted(p.glob("*/*/report.json"))]
        found = [f for f in found if f.is_file()]
        if not found:
            raise SimulateError(REPORT_NOT_FOUND, f"Expected a report.json in {str(p)!r} but found none")
        p = found[0]
    if not p.is_file():
        raise SimulateError(REPORT_NOT_FOUND, f"Expected a report file but received {str(path)!r}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SimulateError(REPORT_INVALID, f"Expected JSON in {p} but received a parse error: {exc}") from exc
    if not isinstance(doc, dict):
        raise SimulateError(REPORT_INVALID, f"Expected a JSON object in {p} but received {type(doc).__name__}")
    return doc


def report_kind(doc: Mapping[str, Any]) -> str:
    """'load' (harness.load report), 'chaos' (harness.chaos report) or 'extract' (our stored minimal form)."""
    if "latency_ms" in doc and "pipeline" in doc:
        return "load"
    if "scenarios" in doc and "all_held" in doc:
        return "chaos"
    if "calibration" in doc and "measured" in doc:
        return "extract"
    raise SimulateError(REPORT_INVALID, f"Expected a load, chaos or extract report but received keys {sorted(doc)[:8]}")


def chaos_rates(doc: Mapping[str, Any], scenario: str | None = None) -> tuple[float, float]:
    """(retryable failures per attempt, permanent failures per upload) over a chaos report's scenarios (or one)."""
    rows = [r for r in doc.get("scenarios", []) if scenario is None or r.get("name") == scenario]
    if not rows:
        names = [r.get("name") for r in doc.get("scenarios", [])]
        raise SimulateError(REPORT_INVALID, f"Expected a chaos scenario in {names} but received {scenario!r}")
    uploads = sum(int(r.get("uploads") or 0) for r in rows)
    redeliveries = sum(int(r.get("redeliveries") or 0) for r in rows)
    dlq = sum(int(v) for r in rows for k, v in (r.get("outcomes") or {}).items() if k not in ("complete", "COMPLETE"))
    if uploads <= 0:
        raise SimulateError(REPORT_INVALID, "Expected uploads > 0 in the chaos report but received 0")
    return redeliveries / (uploads + redeliveries), dlq / uploads


def _per_image(doc: Mapping[str, Any], key: str) -> float | None:
    value = ((doc.get("cpu") or {}).get("per_image_ms") or {}).get(key)
    return None if value is None else float(value)


def from_load_report(doc: Mapping[str, Any], classes: Sequence[InputClass], source: str = "") -> Calibration:
    """Calibration from a harness.load report plus per-class resize CPU (measured by `calibrate`).

    Class weights come from the report's scenario mix (a pattern's weight split evenly over its files); the handler
    overhead is the runtimes' CPU per completed upload minus the mix's mean resize CPU."""
    if report_kind(doc) != "load":
        raise SimulateError(REPORT_INVALID, "Expected a harness.load report for a calibration")
    notes: list[str] = []
    mix = mix_weights(doc, [c.name for c in classes])
    cal_classes = tuple(replace(c, weight=mix.get(c.name, 0.0)) for c in classes)
    runtimes = _per_image(doc, "runtimes")
    provisional = Calibration(source, str(doc.get("backend", "pillow")), cal_classes, 0.0)
    mean_resize = provisional.mean_resize_cpu_ms(ok_only=True)
    if runtimes is None:
        notes.append("no CPU readings in the report: handler overhead taken as 0")
        overhead = 0.0
    else:
        overhead = max(0.0, runtimes - mean_resize)
    cpu = doc.get("cpu") or {}
    window = float(cpu.get("window_s") or 0.0)
    completed = int(cpu.get("completed") or 0)
    other = _per_image(doc, "other")
    other_cores = other * completed / window / 1000.0 if other is not None and window > 0 else 0.0
    lat = doc.get("latency_ms") or {}
    put = Dist.from_summary(lat.get("put") or {}) or Dist.constant(20.0)
    notify = Dist.from_summary(lat.get("enqueue") or {})
    if notify is None:
        notes.append("no enqueue stage (handler logs not read): notification delay assumed 30 ms")
        notify = Dist.constant(30.0)
    handler_values = (doc.get("cdf_ms") or {}).get("handler") or []
    handler = Dist.from_values(handler_values) if handler_values else None
    local_put = 0.0
    in_handler = (lat.get("in_handler") or {}).get("mean")
    batch = int((doc.get("overrides") or {}).get("batch_size") or 10)
    if handler is not None and in_handler is not None and _backlogged(doc):
        # records of a full batch finish one after another: mean(done - batch start) = (B + 1) / 2 x per-record time
        local_put = max(0.0, float(in_handler) / ((batch + 1) / 2.0) - handler.mean)
    elif handler is not None and in_handler is not None:
        # mostly one record per batch: mean(done - batch start) - mean(fetch + resize) is the rest of a record
        local_put = max(0.0, float(in_handler) - handler.mean)
        notes.append(
            "the run was not backlogged: a record's time beyond fetch + resize = mean in-handler time - "
            "mean handler time (batches of about one record)"
        )
    base = doc.get("baseline") or {}
    stretch = 1.0
    if base.get("cpu_ms_per_image") and base.get("mean_resize_ms"):
        stretch = max(1.0, float(base["mean_resize_ms"]) / float(base["cpu_ms_per_image"]))
    else:
        notes.append("no raw resize baseline in the report: this machine's slowdown by neighbours taken as 1")
    return Calibration(
        source=source,
        backend=str(doc.get("backend", "pillow")),
        classes=cal_classes,
        local_stretch=stretch,
        handler_overhead_cpu_ms=overhead,
        emulator_cpu_ms=_per_image(doc, "emulator") or 0.0,
        harness_cpu_ms=_per_image(doc, "harness") or 0.0,
        other_cores=other_cores,
        cores=int(doc.get("cores") or cpu.get("cores") or 2),
        put_ms=put,
        notify_ms=notify,
        notes=tuple(notes),
        local_handler_ms=handler,
        local_put_ms=local_put,
    )


def _backlogged(doc: Mapping[str, Any]) -> bool:
    """Messages were waiting in most samples while the pipeline worked (batches were full)."""
    eff = doc.get("efficiency") or {}
    if eff.get("backlog_fraction") is not None:
        return float(eff["backlog_fraction"]) >= 0.5
    samples = doc.get("samples") or []
    busy = [s for s in samples if s.get("visible", 0) > 0 or s.get("in_flight", 0) > 0]
    return bool(busy) and sum(1 for s in busy if s.get("visible", 0) >= 10) / len(busy) >= 0.5


def mix_weights(doc: Mapping[str, Any], names: Sequence[str]) -> dict[str, float]:
    """Upload share of each file name under the report's scenario mix (glob patterns, evenly over matching files)."""
    mix = (doc.get("scenario") or {}).get("mix") or []
    pairs = [(str(p), float(w)) for p, w in (mix.items() if isinstance(mix, dict) else mix)]
    out = {name: 0.0 for name in names}
    total = sum(w for _, w in pairs)
    for pattern, w in pairs:
        hits = [n for n in names if fnmatch(n, pattern)]
        for n in hits:
            out[n] += w / total / len(hits)
    return out


def measured_figures(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The figures a prediction is compared with, from a load report (small: no per-upload data)."""
    lat = doc.get("latency_ms") or {}
    e2e = lat.get("e2e") or {}
    pipe = doc.get("pipeline") or {}
    samples = doc.get("samples") or []
    t0 = float(doc.get("started_ms") or 0.0)
    series = [[round((float(s["t_ms"]) - t0) / 1000.0, 2), int(s["visible"])] for s in samples]
    acc = doc.get("accounting") or {}
    return {
        "run_id": doc.get("run_id"),
        "scenario": (doc.get("scenario") or {}).get("name"),
        "backend": doc.get("backend"),
        "throughput_per_s": pipe.get("service_rate_per_s"),
        "completed_per_s": pipe.get("completed_per_s"),
        "e2e_p50_ms": e2e.get("p50"),
        "e2e_p99_ms": e2e.get("p99"),
        "e2e_n": e2e.get("n"),
        "max_queue_depth": max((v for _, v in series), default=None),
        "queue_series": series,
        "accepted": (doc.get("uploads") or {}).get("accepted"),
        "complete": (acc.get("counts") or {}).get("complete"),
        "dlq": (acc.get("counts") or {}).get("dlq"),
        "loadavg_1m": doc.get("loadavg_1m"),
        "cpu_utilisation": (doc.get("cpu") or {}).get("utilisation"),
        "other_share": (doc.get("cpu") or {}).get("other_share"),
        "sample_interval_s": (doc.get("scenario") or {}).get("sample_interval_s"),
    }
