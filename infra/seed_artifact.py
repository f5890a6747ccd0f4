"""The seed replica's Lambda zip: handlers/seed plus its npm dependencies for linux/<arch>, deterministic.

`python -m infra.seed_artifact [--arch arm64 x86_64]` (what `make package-seed` runs) writes
.package/seed-<arch>.zip: index.js, package.json, package-lock.json and node_modules as `npm ci --omit=dev` installs
them for linux/glibc on that CPU (sharp's prebuilt @img/sharp-linux-<cpu> and @img/sharp-libvips-linux-<cpu>).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from common.paths import HANDLERS_DIR, PACKAGE_DIR
from infra.artifact.archive import write_zip
from infra.errors import InfraError, InfraErrorCode

SEED_DIR = HANDLERS_DIR / "seed"
SOURCES = ("index.js", "package.json", "package-lock.json")
NPM_CPU = {"arm64": "arm64", "x86_64": "x64"}  # Lambda architecture -> npm's --cpu
HANDLER = "index.handler"


def host_arch() -> str:
    """The Lambda architecture name of this machine (x86_64 or arm64)."""
    machine = platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "x86_64"


def default_output(arch: str) -> Path:
    return PACKAGE_DIR / f"seed-{arch}.zip"


def _validated_arch(arch: str) -> str:
    if arch not in NPM_CPU:
        raise InfraError(
            InfraErrorCode.PACKAGE_FAILED,
            f"Expected one of {', '.join(NPM_CPU)} for the seed's architecture but received {arch!r}",
        )
    return arch


def _files(stage: Path) -> Iterator[tuple[Path, str]]:
    for name in SOURCES:
        yield stage / name, name
    modules = stage / "node_modules"
    for path in sorted(modules.rglob("*")):
        rel = path.relative_to(stage)
        if path.is_symlink() or not path.is_file():
            continue  # npm tarballs hold no symlinks; node_modules/.bin links are not needed at run time
        if any(part.startswith(".") for part in rel.parts):  # node_modules/.package-lock.json, .bin
            continue
        yield path, rel.as_posix()


def build_seed(
    arch: str, out: Path | None = None, *, source: Path = SEED_DIR, npm: str = "npm", timeout: float = 600.0
) -> Path:
    """Build the zip for one architecture (npm ci in a temporary folder next to `out`); return its path."""
    arch = _validated_arch(arch)
    out = Path(out) if out else default_output(arch)
    missing = [name for name in SOURCES if not (source / name).is_file()]
    if missing:
        raise InfraError(
            InfraErrorCode.PACKAGE_FAILED,
            f"Expected {', '.join(SOURCES)} in {source} but received none for {', '.join(missing)}",
        )
    if shutil.which(npm) is None:
        raise InfraError(
            InfraErrorCode.PACKAGE_FAILED,
            "Expected npm on PATH to build the seed replica but received none (install Node.js 20+)",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"seed-build-{arch}-", dir=out.parent) as tmp:
        stage = Path(tmp)
        for name in SOURCES:
            shutil.copyfile(source / name, stage / name)
        cmd = [
            npm,
            "ci",
            "--omit=dev",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--os=linux",
            f"--cpu={NPM_CPU[arch]}",
            "--libc=glibc",
        ]
        try:
            proc = subprocess.run(cmd, cwd=stage, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise InfraError(
                InfraErrorCode.PACKAGE_FAILED, f"npm ci for the seed ({arch}) took over {timeout:.0f} s"
            ) from exc
        if proc.returncode != 0:
            tail = (proc.stderr + proc.stdout).strip()[-3000:]
            raise InfraError(
                InfraErrorCode.PACKAGE_FAILED, f"npm ci for the seed ({arch}) failed (exit {proc.returncode}):\n{tail}"
            )
        write_zip(_files(stage), out)
    check_seed_zip(out, arch)
    return out


def check_seed_zip(path: Path, arch: str) -> None:
    """The zip has the handler, sharp with its native binary for `arch`, and the two AWS SDK clients."""
    cpu = NPM_CPU[_validated_arch(arch)]
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    needed = {
        "index.js": "index.js" in names,
        "sharp": "node_modules/sharp/package.json" in names,
        f"@img/sharp-linux-{cpu} (sharp's native module)": any(
            n.startswith(f"node_modules/@img/sharp-linux-{cpu}/") and n.endswith(".node") for n in names
        ),
        f"@img/sharp-libvips-linux-{cpu}": any(
            n.startswith(f"node_modules/@img/sharp-libvips-linux-{cpu}/") for n in names
        ),
        "@aws-sdk/client-s3": "node_modules/@aws-sdk/client-s3/package.json" in names,
        "@aws-sdk/client-sqs": "node_modules/@aws-sdk/client-sqs/package.json" in names,
    }
    absent = [what for what, ok in needed.items() if not ok]
    if absent:
        raise InfraError(
            InfraErrorCode.PACKAGE_FAILED,
            f"Expected {', '.join(absent)} in {path.name} but received a zip without them",
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.seed_artifact", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", default=["arm64", "x86_64"], choices=sorted(NPM_CPU))
    args = parser.parse_args(argv)
    try:
        for arch in args.arch:
            out = build_seed(arch)
            print(f"{out.relative_to(PACKAGE_DIR.parent)}: {out.stat().st_size / 1e6:.1f} MB")
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
