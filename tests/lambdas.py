"""Test helpers: build tiny function zips and create functions on the emulator, waiting for Active."""

from __future__ import annotations

import io
import textwrap
import uuid
import zipfile
from typing import Any

from common.waiting import wait_until

LAMBDA_ROLE = "arn:aws:iam::000000000000:role/harness-test-role"


def zip_sources(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, source in files.items():
            zf.writestr(name, textwrap.dedent(source))
    return buf.getvalue()


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_function(
    lam: Any,
    name: str,
    source: str,
    *,
    handler: str = "app.handler",
    timeout: int = 10,
    memory: int = 256,
    env: dict[str, str] | None = None,
    extra_files: dict[str, str] | None = None,
) -> str:
    """Create a python3.13 function from `source` (module app.py) and wait until it is Active; return its ARN."""
    files = {"app.py": source, **(extra_files or {})}
    resp = lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=LAMBDA_ROLE,
        Handler=handler,
        Code={"ZipFile": zip_sources(files)},
        Timeout=timeout,
        MemorySize=memory,
        Environment={"Variables": env or {}},
    )
    wait_until(
        lambda: lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active",
        60,
        what=f"function {name} Active",
    )
    return resp["FunctionArn"]
