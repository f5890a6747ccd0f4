"""Errors of the benchmark tool: BenchError(code, message) with a stable BENCH_ code (common.errors.CodedError)."""

from __future__ import annotations

from enum import StrEnum

from common.errors import CodedError


class BenchErrorCode(StrEnum):
    """Stable codes (they appear in results.json next to failed measurements; never rename)."""

    INVALID_ARGUMENT = "BENCH_INVALID_ARGUMENT"
    NO_INPUTS = "BENCH_NO_INPUTS"
    WORKER_FAILED = "BENCH_WORKER_FAILED"
    WORKER_TIMEOUT = "BENCH_WORKER_TIMEOUT"
    WORKER_DIED = "BENCH_WORKER_DIED"
    OUT_OF_MEMORY = "BENCH_OUT_OF_MEMORY"
    REFERENCE_MISSING = "BENCH_REFERENCE_MISSING"


class BenchError(CodedError):
    """A benchmark step failed on purpose-checked grounds; `code` (a BenchErrorCode) is stable, the message is for
    humans, shaped "Expected X for Y but received Z" (common.errors.expected) where it is a validation."""

    def __init__(self, code: BenchErrorCode, message: str) -> None:
        super().__init__(BenchErrorCode(code), message)
        self.code: BenchErrorCode = BenchErrorCode(code)
