"""`python -m infra.artifact`: build (or, with --check-only, check) the Lambda zip for one architecture and print it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.artifact.build import build_artifact, default_output
from infra.artifact.checks import check_artifact
from infra.artifact.options import BuildOptions
from infra.artifact.runtime import ARCHES
from infra.errors import ArtifactError


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when the zip passes every check, 1 when a check fails, 2 on an ArtifactError (`error CODE: ...`)."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.artifact",
        description="Build the Lambda deployment zip for one architecture (handlers + "
        "manylinux wheels) and check what it bundles.",
    )
    parser.add_argument("--arch", choices=ARCHES, default="arm64", help="Lambda architecture (default arm64)")
    parser.add_argument("--out", type=Path, help="zip to write (default .package/lambda-<arch>.zip)")
    parser.add_argument("--check-only", action="store_true", help="check an existing zip instead of building")
    args = parser.parse_args(argv)
    out = args.out or default_output(args.arch)
    try:
        report = (
            check_artifact(out, args.arch)
            if args.check_only
            else build_artifact(BuildOptions(arch=args.arch), out, check=False)
        )
    except ArtifactError as exc:
        print(f"error {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok else 1
