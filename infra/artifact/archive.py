"""Deterministic zips (sorted names, fixed timestamps and modes) and unpacking one the way Lambda does."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path

from infra.errors import ArtifactError, ArtifactErrorCode

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same zip (stable CDK asset hash)


def write_zip(files: Iterable[tuple[Path, str]], out: Path, compresslevel: int = 6) -> None:
    """A deterministic zip: sorted names, fixed timestamps, 0644/0755 modes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    seen: set[str] = set()
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for src, arcname in sorted(files, key=lambda t: t[1]):
            if arcname in seen:
                raise ArtifactError(
                    ArtifactErrorCode.DUPLICATE,
                    f"Expected unique paths in the zip but received "
                    f"{arcname!r} twice (a handler package shadows a dependency?)",
                )
            seen.add(arcname)
            info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
            mode = 0o755 if src.stat().st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(src, "rb") as fh:
                zf.writestr(info, fh.read(), compresslevel=compresslevel)
    tmp.replace(out)


def extract(zip_path: Path, dest: Path) -> Path:
    """Unpack the artifact the way Lambda does (into /var/task): a fresh folder with the zip's modes."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                Path(target).chmod(mode)
    return dest
