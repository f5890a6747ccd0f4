"""The settings one simulation runs with (the stack's knobs plus the platform's), validated; `--set knob=value`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from common.errors import expected
from harness.simulate import rules
from harness.simulate.errors import KNOB_INVALID, SimulateError
from infra.stack import StackConfig

_STACK = StackConfig()
MODES = ("aws", "local")
ARCHES = tuple(rules.USD_PER_GB_S)
BACKENDS = ("pillow", "vips")
# name -> (low, high) for numeric knobs; None = unbounded above
_BOUNDS: dict[str, tuple[float, float]] = {
    "batch_size": (1, 10000),
    "batching_window_s": (0, 300),
    "maximum_concurrency": rules.MAX_CONCURRENCY_RANGE,
    "reserved_concurrency": (0, 100000),
    "account_concurrency": (1, 1000000),
    "other_concurrency": (0, 1000000),
    "visibility_timeout_s": rules.VISIBILITY_RANGE_S,
    "max_receive_count": (1, 1000),
    "queue_retention_s": rules.RETENTION_RANGE_S,
    "memory_mb": (128, 10240),
    "function_timeout_s": (1, rules.FUNCTION_TIMEOUT_MAX_S),
    "esm_initial_batches": (1, 1000),
    "esm_scale_up_per_min": (0, 100000),
    "esm_max_batches": (1, 100000),
    "function_scale_per_10s": (1, 1000000),
    "s3_put_per_prefix_s": (1, 1e9),
    "s3_get_per_prefix_s": (1, 1e9),
    "s3_prefixes": (1, 100000),
    "cold_start_ms": (0, 60000),
    "invoke_overhead_ms": (0, 60000),
    "s3_io_ms": (0, 60000),
    "cpu_speed_factor": (0.01, 100),
    "cores": (1, 4096),
    "retryable_rate": (0, 1),
    "permanent_rate": (-1, 1),
    "rate": (0.0001, 1e7),
    "count": (1, 1e9),
    "duration_s": (0.001, 30 * 86400),
    "sample_interval_s": (0.01, 3600),
    "max_sim_s": (1, 30 * 86400),
    "seed": (0, 2**31),
}


@dataclass(frozen=True)
class Knobs:
    """One simulation's settings. Stack knobs default to infra.stack.StackConfig, platform figures to rules.

    mode "aws": each execution environment has its own CPU share (memory / 1,769 MB), the SQS mapping scales as AWS
    documents, account/reserved concurrency, function scaling rate and S3 prefix rates apply.
    mode "local": the emulator on one machine: `cores` shared by every environment, the emulator and the load
    generator (their CPU per image from the calibration), MaximumConcurrency lanes from the start, no throttles.
    `maximum_concurrency` None = not set (AWS: the mapping scales to esm_max_batches; local: = cores).
    `rate`, `count`, `duration_s` None = the scenario's own. `permanent_rate` -1 = the calibration's.
    """

    mode: str = "aws"
    backend: str = _STACK.backend
    arch: str = _STACK.architecture
    batch_size: int = _STACK.batch_size
    batching_window_s: float = float(_STACK.batching_window_s)
    maximum_concurrency: int | None = _STACK.maximum_concurrency
    reserved_concurrency: int | None = None
    account_concurrency: int = rules.ACCOUNT_CONCURRENCY
    other_concurrency: int = 0  # concurrency the account's other functions use at the same time
    visibility_timeout_s: float = float(_STACK.visibility_timeout_s)
    max_receive_count: int = _STACK.max_receive_count
    queue_retention_s: float = float(_STACK.queue_retention_s)
    memory_mb: int = _STACK.memory_mb
    function_timeout_s: float = float(_STACK.function_timeout_s)
    esm_initial_batches: int = rules.ESM_INITIAL_BATCHES
    esm_scale_up_per_min: float = float(rules.ESM_SCALE_UP_PER_MIN)
    esm_max_batches: int = rules.ESM_MAX_BATCHES
    function_scale_per_10s: int = rules.FUNCTION_SCALE_PER_10S
    s3_put_per_prefix_s: float = float(rules.S3_PUT_PER_PREFIX_S)
    s3_get_per_prefix_s: float = float(rules.S3_GET_PER_PREFIX_S)
    s3_prefixes: int = 1
    # assumptions for AWS (not measurable here): cold start of a Python function with Pillow/pyvips, Lambda
    # invoke overhead per batch, S3 latency per record (GET of the source + PUT of the thumbnails), core speed
    cold_start_ms: float = 800.0
    invoke_overhead_ms: float = 20.0
    s3_io_ms: float = 60.0
    cpu_speed_factor: float = 1.0
    cores: int = 2  # local mode: cores of the machine
    local_slowdown: bool = True  # local mode: follow the run's measured record-time trajectory (calibration)
    retryable_rate: float = 0.0  # extra retryable failures per attempt (chaos reports set it)
    permanent_rate: float = -1.0
    rate: float | None = None
    count: int | None = None
    duration_s: float | None = None
    sample_interval_s: float = 1.0
    max_sim_s: float = 7 * 86400.0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SimulateError(KNOB_INVALID, expected(f"one of {MODES}", "mode", self.mode))
        if self.arch not in ARCHES:
            raise SimulateError(KNOB_INVALID, expected(f"one of {ARCHES}", "arch", self.arch))
        if self.backend not in BACKENDS:
            raise SimulateError(KNOB_INVALID, expected(f"one of {BACKENDS}", "backend", self.backend))
        for name, (lo, hi) in _BOUNDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not lo <= value <= hi
            ):
                raise SimulateError(KNOB_INVALID, expected(f"a number in [{lo:g}, {hi:g}]", name, value))
        if self.batch_size > 10 and self.batching_window_s < 1:
            raise SimulateError(
                KNOB_INVALID,
                expected(
                    "batching_window_s >= 1 when batch_size > 10 (Lambda's rule for standard queues)",
                    "batching_window_s",
                    self.batching_window_s,
                ),
            )

    @property
    def function_limit(self) -> int:
        """Concurrent executions the function may have: its reservation, else the account's unreserved share."""
        if self.reserved_concurrency is not None:
            return self.reserved_concurrency
        return max(0, self.account_concurrency - self.other_concurrency)

    @property
    def mapping_cap(self) -> int:
        """Concurrent batches the mapping may run (before the function's own limit)."""
        if self.mode == "local":
            return self.maximum_concurrency or self.cores
        return min(self.esm_max_batches, self.maximum_concurrency or self.esm_max_batches)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_sets(self, assignments: Iterable[str]) -> Knobs:
        """Apply `knob=value` strings (value parsed by the knob's type; `none` clears an optional knob)."""
        changes: dict[str, Any] = {}
        kinds = {f.name: str(f.type) for f in fields(self)}
        for text in assignments:
            name, sep, raw = text.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in kinds:
                raise SimulateError(KNOB_INVALID, expected(f"knob=value with a knob in {sorted(kinds)}", "--set", text))
            changes[name] = _parse(name, kinds[name], raw.strip())
        return replace(self, **changes)


def _parse(name: str, kind: str, raw: str) -> Any:
    if raw.lower() in ("none", "null", "") and "None" in kind:
        return None
    if kind.startswith("bool"):
        flags = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if raw.lower() not in flags:
            raise SimulateError(KNOB_INVALID, expected("true or false", name, raw))
        return flags[raw.lower()]
    try:
        if kind.startswith("int"):
            value = float(raw)
            if not value.is_integer():
                raise ValueError(raw)
            return int(value)
        if kind.startswith("float"):
            return float(raw)
    except ValueError:
        raise SimulateError(KNOB_INVALID, expected(f"a number ({kind})", name, raw)) from None
    return raw


def knob_names() -> list[str]:
    return [f.name for f in fields(Knobs)]
