"""Which function zip a deploy uploads: a given file, the code-only zip (emulator) or the packaged artifact (AWS, or
a stack with code=artifact)."""

from __future__ import annotations

from pathlib import Path

from infra.artifact.build import default_output
from infra.deploy.target import Target
from infra.errors import InfraError, InfraErrorCode
from infra.package import code_zip_bytes
from infra.seed_artifact import default_output as seed_default_output
from infra.seed_artifact import host_arch
from infra.stack import Stack

# Lambda accepts at most 50 MB of zip in the request itself (larger code goes through S3: use the CDK app).
MAX_DIRECT_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_ARTIFACT = default_output("arm64")


def stack_code(stack: Stack) -> bytes:
    """The zip a stack's functions run when no file is given on the emulator: the code-only zip in code=venv mode,
    the packaged artifact of the stack's architecture (`make package ARCH=...`) in code=artifact mode."""
    if stack.function.impl == "seed":  # the seed replica's zip for this machine (`make package-seed`)
        return read_zip(seed_default_output(host_arch()))
    if stack.config.code == "artifact":
        return read_zip(default_output(stack.function.architecture))
    return code_zip_bytes()


def load_code(target: Target, code_path: Path | None, stack: Stack | None = None) -> bytes:
    """The function zip: an explicit path, else the code-only zip on the emulator (its Lambda python carries the
    dependencies) or the packaged artifact on AWS (`make package`); code=artifact stacks get the artifact anywhere
    (for the stack's architecture; arm64 without a stack)."""
    if code_path is not None:
        return read_zip(code_path)
    if target.is_emulator:
        return stack_code(stack) if stack is not None else code_zip_bytes()
    if stack is not None and stack.function.impl == "seed":
        return read_zip(seed_default_output(stack.function.architecture))
    return read_zip(default_output(stack.function.architecture) if stack is not None else DEFAULT_ARTIFACT)


def read_zip(path: Path) -> bytes:
    """The bytes of a function zip small enough for a direct upload."""
    if not path.is_file():
        raise InfraError(
            InfraErrorCode.PACKAGE_FAILED,
            f"Expected a function zip at {path} but received no file (run `make package ARCH=...` first)",
        )
    data = path.read_bytes()
    if len(data) > MAX_DIRECT_UPLOAD_BYTES:
        raise InfraError(
            InfraErrorCode.PACKAGE_FAILED,
            f"Expected at most {MAX_DIRECT_UPLOAD_BYTES} bytes for a direct upload but received "
            f"{len(data)} bytes in {path}: deploy it with `make deploy-aws` (CDK assets)",
        )
    return data
