"""Errors of the load harness: LoadError (a CodedError) and its stable codes."""

from __future__ import annotations

from common.errors import CodedError


class LoadError(CodedError):
    """A load-harness failure with a stable `code` (e.g. LOAD_SCENARIO_INVALID) and a readable message."""


SCENARIO_NOT_FOUND = "LOAD_SCENARIO_NOT_FOUND"
SCENARIO_INVALID = "LOAD_SCENARIO_INVALID"
CORPUS_EMPTY = "LOAD_CORPUS_EMPTY"
CORPUS_NOT_FOUND = "LOAD_CORPUS_NOT_FOUND"
ENDPOINT_NOT_LOOPBACK = "LOAD_ENDPOINT_NOT_LOOPBACK"
STACK_UNAVAILABLE = "LOAD_STACK_UNAVAILABLE"
OUTPUTS_INVALID = "LOAD_OUTPUTS_INVALID"
BASELINE_FAILED = "LOAD_BASELINE_FAILED"
