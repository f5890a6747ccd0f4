"""Errors of the chaos harness, each with a stable code."""

from __future__ import annotations


class ChaosError(Exception):
    """A chaos scenario could not be set up, run or checked; `code` is stable, the message says what was expected."""

    code = "chaos_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidFaultSpec(ChaosError):
    code = "invalid_fault_spec"


class UnknownScenario(ChaosError):
    code = "unknown_scenario"


class PipelineUnavailable(ChaosError):
    code = "pipeline_unavailable"
