"""Errors of the simulator, each with a stable code (the CLI prints `error CODE: message` and exits 2)."""

from __future__ import annotations

from common.errors import CodedError


class SimulateError(CodedError):
    """A simulator failure: bad knob, unreadable report, a calibration that lacks a figure."""


KNOB_INVALID = "SIMULATE_KNOB_INVALID"
REPORT_INVALID = "SIMULATE_REPORT_INVALID"
REPORT_NOT_FOUND = "SIMULATE_REPORT_NOT_FOUND"
CALIBRATION_INVALID = "SIMULATE_CALIBRATION_INVALID"
SCENARIO_INVALID = "SIMULATE_SCENARIO_INVALID"
