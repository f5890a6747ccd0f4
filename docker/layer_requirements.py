"""Print the function layer's requirements: the handlers' `lambda` extra plus boto3 (what the Lambda runtime gives).

Stdlib only: it runs on the host (wheelhouse) and inside the image build (no wheelhouse), from pyproject.toml.
Usage: python layer_requirements.py [path/to/pyproject.toml]
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# Tools the harness runs on the host, not code a Lambda function imports.
HOST_ONLY = frozenset({"awscli", "awscli-local"})


def distribution_name(requirement: str) -> str:
    """'pyvips[binary]>=3.0,<4' -> 'pyvips' (normalised as in PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"Expected a PEP 508 requirement for project.dependencies but received {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def layer_requirements(pyproject: Path) -> list[str]:
    """The project's dependencies without the host-only tools (that leaves boto3) + the `lambda` extra."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extra = project.get("optional-dependencies", {}).get("lambda", [])
    return [req for req in project["dependencies"] if distribution_name(req) not in HOST_ONLY] + list(extra)


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "pyproject.toml"
    sys.stdout.write("".join(f"{req}\n" for req in layer_requirements(path)))
