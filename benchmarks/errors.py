"""Errors of the benchmark tool: each carries a stable `code` and a message shaped "Expected X for Y but received Z"."""

from __future__ import annotations

from enum import StrEnum


class BenchErrorCode(StrEnum):
    """Stable codes (they appear in results.json next to failed measurements; never rename)."""

    INVALID_ARGUMENT = "BENCH_INVALID_ARGUMENT"
    NO_INPUTS = "BENCH_NO_INPUTS"
    WORKER_FAILED = "BENCH_WORKER_FAILED"
    WORKER_TIMEOUT = "BENCH_WORKER_TIMEOUT"
    WORKER_DIED = "BENCH_WORKER_DIED"
    OUT_OF_MEMORY = "BENCH_OUT_OF_MEMORY"
    REFERENCE_MISSING = "BENCH_REFERENCE_MISSING"


class BenchError(Exception):
    """A benchmark step failed on purpose-checked grounds; `code` is stable, the message is for humans."""

    def __init__(self, message: str, *, code: BenchErrorCode = BenchErrorCode.INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "message": self.message}


def expected(what: str, for_: str, received: object) -> str:
    """The one shape of every validation message."""
    return f"Expected {what} for {for_} but received {received!r}"
