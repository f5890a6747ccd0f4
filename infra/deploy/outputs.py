"""What a deployed stack is, as one typed value with a schema version, and its file `<state>/outputs/<stack>.json`.

Everything the harness, the tests and the benchmarks need to use a deployed pipeline is here: where it runs, its
buckets and prefixes, queues, functions, the mapping and the thumbnail sizes. Each field is something a deployed stack
itself can tell (a resource name, an ARN, a function setting such as THUMB_SIZES), so the same value can also be read
off a live stack (CloudFormation outputs and resources), not only built from a deploy of our definition (`from_stack`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import expected
from infra.errors import InfraError, InfraErrorCode
from infra.stack import Stack

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class StackOutputs:
    """One deployed pipeline stack (schema version 1). Serialized by `to_json`, read back by `from_json`."""

    stack_name: str
    region: str
    account: str
    endpoint: str  # the emulator's URL, or "aws"
    input_bucket: str
    input_prefix: str
    output_bucket: str  # == input_bucket in single-bucket mode
    output_prefix: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    function_name: str
    function_arn: str
    role_name: str
    role_arn: str
    log_group: str
    event_source_mapping_uuid: str
    sizes: str  # the function's THUMB_SIZES: "large:1024x1024,small:256x256"
    architecture: str
    memory_mb: int
    timeout_s: int
    profile: str = "default"
    topology: str = "direct"
    notifier_function_name: str | None = None
    notifier_function_arn: str | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise InfraError(
                InfraErrorCode.OUTPUTS_SCHEMA_UNSUPPORTED,
                expected(f"outputs schema version {SCHEMA_VERSION}", f"stack {self.stack_name}", self.schema_version)
                + " (deploy the stack again to rewrite its outputs)",
            )

    @property
    def single_bucket(self) -> bool:
        return self.output_bucket == self.input_bucket

    @property
    def size_names(self) -> tuple[str, ...]:
        """The thumbnail size names in order ("large", "small"): the <size> folder of every output key."""
        return tuple(part.split(":")[0].strip() for part in self.sizes.split(",") if part.strip())

    @classmethod
    def from_stack(
        cls,
        stack: Stack,
        *,
        endpoint: str,
        queue_url: str,
        queue_arn: str,
        dlq_url: str,
        dlq_arn: str,
        function_arn: str,
        role_arn: str,
        mapping_uuid: str,
        notifier_arn: str | None = None,
    ) -> StackOutputs:
        """Our definition plus what AWS assigned while deploying it (URLs, ARNs, the mapping's UUID)."""
        fn = stack.function
        return cls(
            stack_name=stack.name,
            region=stack.region,
            account=stack.account,
            endpoint=endpoint,
            input_bucket=stack.input_bucket.name,
            input_prefix=stack.config.input_prefix,
            output_bucket=stack.output_bucket_name,
            output_prefix=stack.config.output_prefix,
            queue_url=queue_url,
            queue_arn=queue_arn,
            dlq_url=dlq_url,
            dlq_arn=dlq_arn,
            function_name=fn.name,
            function_arn=function_arn,
            role_name=fn.role_name,
            role_arn=role_arn,
            log_group=fn.log_group,
            event_source_mapping_uuid=mapping_uuid,
            sizes=fn.settings.sizes,
            architecture=fn.architecture,
            memory_mb=fn.memory_mb,
            timeout_s=fn.timeout_s,
            profile=stack.profile,
            topology=stack.config.topology,
            notifier_function_name=stack.notifier.name if stack.notifier is not None else None,
            notifier_function_arn=notifier_arn if stack.notifier is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], *, source: str = "deploy outputs") -> StackOutputs:
        """Refuses a document of another schema version (OUTPUTS_SCHEMA_UNSUPPORTED) or with missing or unknown
        fields (OUTPUTS_INVALID); `source` names the document in the message."""
        if not isinstance(doc, Mapping):
            raise InfraError(InfraErrorCode.OUTPUTS_INVALID, expected("a JSON object", source, type(doc).__name__))
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InfraError(
                InfraErrorCode.OUTPUTS_SCHEMA_UNSUPPORTED,
                expected(f"outputs schema version {SCHEMA_VERSION}", source, version)
                + " (deploy the stack again to rewrite its outputs)",
            )
        known = {f.name: f for f in dataclasses.fields(cls)}
        required = [
            name
            for name, f in known.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in doc]
        unknown = sorted(set(doc) - set(known))
        if missing or unknown:
            raise InfraError(
                InfraErrorCode.OUTPUTS_INVALID,
                expected("every field of StackOutputs and no other", source, {"missing": missing, "unknown": unknown}),
            )
        values = dict(doc)
        for name in ("memory_mb", "timeout_s"):
            if isinstance(values[name], bool) or not isinstance(values[name], int):
                raise InfraError(
                    InfraErrorCode.OUTPUTS_INVALID, expected("an integer", f"{source} {name}", values[name])
                )
        for name, f in known.items():
            if f.type == "str" and name in values and not isinstance(values[name], str):
                raise InfraError(InfraErrorCode.OUTPUTS_INVALID, expected("a string", f"{source} {name}", values[name]))
        return cls(**values)

    @classmethod
    def from_json(cls, text: str, *, source: str = "deploy outputs") -> StackOutputs:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise InfraError(InfraErrorCode.OUTPUTS_INVALID, expected("JSON", source, text[:80])) from exc
        return cls.from_dict(doc, source=source)


def outputs_path(state_dir: Path, stack_name: str) -> Path:
    """Where the outputs of `stack_name` live under a state folder: `<state>/outputs/<stack>.json`."""
    return Path(state_dir) / "outputs" / f"{stack_name}.json"


def write_outputs(path: Path, outputs: StackOutputs) -> None:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(outputs.to_json())
    os.replace(tmp, path)


def read_outputs(path: Path) -> StackOutputs:
    """The outputs at `path`; NOT_DEPLOYED when there is no file, OUTPUTS_INVALID/OUTPUTS_SCHEMA_UNSUPPORTED when it
    cannot be read as this schema."""
    if not path.is_file():
        raise InfraError(
            InfraErrorCode.NOT_DEPLOYED,
            f"Expected deploy outputs at {path} but received no file (deploy the stack first)",
        )
    return StackOutputs.from_json(path.read_text(), source=str(path))
