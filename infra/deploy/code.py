"""Which function zip a deploy uploads: a given file, the code-only zip (emulator) or the packaged artifact (AWS)."""

from __future__ import annotations

from pathlib import Path

from infra.artifact.build import default_output
from infra.deploy.target import Target
from infra.errors import InfraError, InfraErrorCode
from infra.package import code_zip_bytes

# Lambda accepts at most 50 MB of zip in the request itself (larger code goes through S3: use the CDK app).
MAX_DIRECT_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_ARTIFACT = default_output("arm64")


def load_code(target: Target, code_path: Path | None) -> bytes:
    """The function zip: an explicit path, else the code-only zip on the emulator (its Lambda python carries the
    dependencies) or the packaged arm64 artifact on AWS (`make package`)."""
    path = code_path if code_path is not None else (None if target.is_emulator else DEFAULT_ARTIFACT)
    if path is None:
        return code_zip_bytes()
    if not path.is_file():
        raise InfraError(
            InfraErrorCode.PACKAGE_FAILED,
            f"Expected a function zip at {path} but received no file (run `make package` first)",
        )
    data = path.read_bytes()
    if len(data) > MAX_DIRECT_UPLOAD_BYTES:
        raise InfraError(
            InfraErrorCode.PACKAGE_FAILED,
            f"Expected at most {MAX_DIRECT_UPLOAD_BYTES} bytes for a direct upload but received "
            f"{len(data)} bytes in {path}: deploy it with `make deploy-aws` (CDK assets)",
        )
    return data
