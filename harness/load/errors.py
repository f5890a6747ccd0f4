"""Errors of the load harness, each with a stable code."""

from __future__ import annotations


class LoadError(Exception):
    """A load-harness failure with a stable `code` (e.g. LOAD_SCENARIO_INVALID) and a readable message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


SCENARIO_NOT_FOUND = "LOAD_SCENARIO_NOT_FOUND"
SCENARIO_INVALID = "LOAD_SCENARIO_INVALID"
CORPUS_EMPTY = "LOAD_CORPUS_EMPTY"
CORPUS_NOT_FOUND = "LOAD_CORPUS_NOT_FOUND"
ENDPOINT_NOT_LOOPBACK = "LOAD_ENDPOINT_NOT_LOOPBACK"
STACK_UNAVAILABLE = "LOAD_STACK_UNAVAILABLE"
OUTPUTS_INVALID = "LOAD_OUTPUTS_INVALID"
BASELINE_FAILED = "LOAD_BASELINE_FAILED"
