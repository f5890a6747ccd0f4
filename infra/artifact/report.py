"""The result of checking an artifact: one Problem per failed check, and the report with sizes and versions."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from infra.artifact.runtime import GLIBC_MAX, GLIBCXX_MAX, MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES


@dataclass(frozen=True)
class Problem:
    """One failed check on one file of the artifact."""

    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.path}: {self.message}"


@dataclass(frozen=True)
class ArtifactReport:
    """The result of checking one artifact: sizes, versions, binaries, and every problem found."""

    path: str
    arch: str
    python_version: str
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    elf_files: int
    max_glibc: str | None
    max_glibcxx: str | None
    distributions: dict[str, str]
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> str:
        data = asdict(self)
        data["problems"] = [asdict(p) for p in self.problems]
        data["limits"] = {
            "zipped_bytes": MAX_ZIPPED_BYTES,
            "unzipped_bytes": MAX_UNZIPPED_BYTES,
            "glibc": "%d.%d" % GLIBC_MAX,
            "glibcxx": ".".join(map(str, GLIBCXX_MAX)),
        }
        return json.dumps(data, indent=2, sort_keys=True)

    def summary(self) -> str:
        mb = 1024 * 1024
        head = (
            f"{Path(self.path).name}: {self.arch}, python {self.python_version}, "
            f"{self.zipped_bytes / mb:.1f} MB zipped (limit {MAX_ZIPPED_BYTES // mb}), "
            f"{self.unzipped_bytes / mb:.1f} MB unzipped (limit {MAX_UNZIPPED_BYTES // mb}), "
            f"{self.files} files, {self.elf_files} ELF, max GLIBC {self.max_glibc or '-'} "
            f"(limit {GLIBC_MAX[0]}.{GLIBC_MAX[1]}), max GLIBCXX {self.max_glibcxx or '-'}, "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.distributions.items()))
        )
        if self.ok:
            return head + " -- OK"
        return head + f" -- {len(self.problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in self.problems)
