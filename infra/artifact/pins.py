"""The exact releases the Lambda artifact bundles (read from its lock, requirements/lambda-<arch>.txt) and its Python.

The lock is compiled by `make lock` from pyproject.toml's `lambda` extra: bump a release there, not here.
"""

from __future__ import annotations

from common.locks import lambda_pins

PYTHON_VERSION = "3.13"


def requirements(arch: str) -> tuple[str, ...]:
    """Every distribution the zip for `arch` carries, `name==version` as its lock pins it (transitive ones too)."""
    return tuple(str(pin) for pin in lambda_pins(arch))


def required_distributions(arch: str) -> dict[str, str]:
    """dist-info name -> version that must be in the zip (a silent pip fallback shows up here)."""
    return {pin.key.replace("-", "_"): pin.version for pin in lambda_pins(arch)}


def pyvips_pin(arch: str) -> str:
    """pyvips is an sdist only on PyPI: its pure-Python wheel is built locally first, at the locked version."""
    return next(r for r in requirements(arch) if r.startswith("pyvips=="))


# The arm64 zip (what AWS runs) and the native x86_64 reference must carry the same releases; tests/unit/test_locks.py
# checks that the two locks agree. boto3 is not bundled: the Lambda runtime provides it.
REQUIREMENTS: tuple[str, ...] = requirements("arm64")
REQUIRED_DISTRIBUTIONS: dict[str, str] = required_distributions("arm64")
PYVIPS_PIN = pyvips_pin("arm64")
