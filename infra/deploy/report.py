"""What a deploy or a destroy did, as a report the CLIs print line by line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.deploy.outputs import StackOutputs
from infra.lint import Finding, Severity


@dataclass
class DeployReport:
    """What a deploy changed, the outputs it wrote and the lint findings it printed."""

    stack_name: str
    profile: str
    endpoint: str
    changes: list[str] = field(default_factory=list)
    outputs: StackOutputs | None = None
    findings: list[Finding] = field(default_factory=list)
    outputs_path: Path | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def summary(self) -> list[str]:
        lines = [
            f"stack {self.stack_name} (profile {self.profile}) at {self.endpoint}: "
            + (f"{len(self.changes)} change(s)" if self.changes else "no changes")
        ]
        lines += [f"  {c}" for c in self.changes]
        lines += [f"  {f}" for f in self.findings if f.severity == Severity.WARNING]
        if self.outputs is not None:
            o = self.outputs
            lines.append(f"  input  s3://{o.input_bucket}/{o.input_prefix}")
            lines.append(f"  output s3://{o.output_bucket}/{o.output_prefix}")
            lines.append(f"  queue  {o.queue_url}  dlq {o.dlq_url}")
            lines.append(f"  function {o.function_name}")
        if self.outputs_path:
            lines.append(f"  outputs written to {self.outputs_path}")
        return lines


@dataclass
class DestroyReport:
    """What a destroy deleted (one line per resource)."""

    stack_name: str
    deleted: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        head = f"stack {self.stack_name}: " + (
            f"deleted {len(self.deleted)} resource(s)" if self.deleted else "nothing to delete"
        )
        return [head] + [f"  {d}" for d in self.deleted]
