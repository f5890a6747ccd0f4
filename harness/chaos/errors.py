"""Errors of the chaos harness: ChaosError and its kinds, each built as `Error(CODE, message)` (common.errors)."""

from __future__ import annotations

from common.errors import CodedError


class ChaosError(CodedError):
    """A chaos scenario could not be set up, run or checked; `code` is stable, the message says what was expected."""


class InvalidFaultSpec(ChaosError):
    """A fault rule or a `METHOD:ERROR[:k=v,...]` spec is malformed (code INVALID_FAULT_SPEC)."""


class UnknownScenario(ChaosError):
    """A scenario name is unknown (UNKNOWN_SCENARIO) or a scenario definition is invalid (INVALID_SCENARIO)."""


class PipelineUnavailable(ChaosError):
    """There is no deployed pipeline to break (code PIPELINE_UNAVAILABLE)."""
