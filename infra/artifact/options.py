"""How to build an artifact: the target architecture and Python, and which wheels to fetch (validated on creation)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.artifact.pins import PYTHON_VERSION, requirements
from infra.artifact.runtime import ARCHES
from infra.errors import ArtifactError, ArtifactErrorCode


@dataclass(frozen=True)
class BuildOptions:
    """How to build: target arch, and (for tests that need a bad artifact) which wheels to actually fetch."""

    arch: str = "arm64"
    python_version: str = PYTHON_VERSION
    wheel_arch: str | None = None  # None: the wheels of `arch`; "x86_64" in an arm64 build makes a wrong artifact
    requirements: tuple[str, ...] = ()  # empty: every pin of requirements/lambda-<arch>.txt

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise ArtifactError(
                ArtifactErrorCode.INVALID_ARCH,
                f"Expected one of {'|'.join(ARCHES)} for arch but received {self.arch!r}",
            )
        if self.wheel_arch is not None and self.wheel_arch not in ARCHES:
            raise ArtifactError(
                ArtifactErrorCode.INVALID_ARCH,
                f"Expected one of {'|'.join(ARCHES)} for wheel arch but received {self.wheel_arch!r}",
            )
        if not re.fullmatch(r"3\.\d{1,2}", self.python_version):
            raise ArtifactError(
                ArtifactErrorCode.INVALID_PYTHON_VERSION,
                f"Expected '3.N' for python version but received {self.python_version!r}",
            )
        if not self.requirements:
            object.__setattr__(self, "requirements", requirements(self.arch))
