"""Deterministic code-only zip of the handlers (every handlers/**/*.py, zip root = handlers/)."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

from common.paths import HANDLERS_DIR

# A fixed timestamp and mode so the same sources always give the same bytes (and the same CodeSha256).
_EPOCH = (1980, 1, 1, 0, 0, 0)
_MODE = 0o100644 << 16


def handler_sources(root: Path = HANDLERS_DIR) -> list[Path]:
    """The .py files that make up the function code, sorted (caches and tests excluded)."""
    return sorted(
        p for p in root.rglob("*.py") if "__pycache__" not in p.parts and "tests" not in p.relative_to(root).parts
    )


def code_zip_bytes(root: Path = HANDLERS_DIR) -> bytes:
    """The function code as zip bytes; byte-identical for identical sources."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in handler_sources(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_EPOCH)
            info.external_attr = _MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    return buf.getvalue()


def code_sha256(data: bytes) -> str:
    """Base64 SHA-256, the form Lambda reports as CodeSha256."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
