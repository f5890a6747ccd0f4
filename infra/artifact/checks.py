"""Check a built artifact against the Lambda runtime: sizes, ELF machine and glibc needs, bundled libraries, Python ABI,
pinned distributions and the handler's imports."""

from __future__ import annotations

import ast
import re
import struct
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from common.paths import ROOT
from infra.artifact.elf import is_elf, read_elf
from infra.artifact.options import BuildOptions
from infra.artifact.pins import PYTHON_VERSION, required_distributions
from infra.artifact.report import ArtifactReport, Problem
from infra.artifact.runtime import (
    GLIBC_MAX,
    GLIBCXX_MAX,
    HANDLER_PACKAGES,
    MAX_UNZIPPED_BYTES,
    MAX_ZIPPED_BYTES,
    RUNTIME_MODULES,
    SYSTEM_LIBRARIES,
    TRIPLETS,
)
from infra.errors import ArtifactError, ArtifactErrorCode

_EXT_MODULE = re.compile(r"\.cpython-(\d)(\d+)-([a-z0-9_]+-linux-gnu)\.so$")


def _zip_files(zf: zipfile.ZipFile) -> Iterator[zipfile.ZipInfo]:
    return (i for i in zf.infolist() if not i.is_dir())


def _distributions(names: Iterable[str], zf: zipfile.ZipFile) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        m = re.fullmatch(r"([^/]+)-([^/-]+)\.dist-info/METADATA", name)
        if m:
            meta = zf.read(name).decode("utf-8", "replace")
            version = re.search(r"^Version:\s*(\S+)", meta, re.M)
            found[m.group(1).lower().replace("-", "_").replace(".", "_")] = version.group(1) if version else "?"
    return found


def handler_imports(sources: dict[str, str]) -> dict[str, str]:
    """Third-party top-level modules imported by handler sources {path: text} -> first path importing each."""
    found: dict[str, str] = {}
    for name, text in sorted(sources.items()):
        try:
            tree = ast.parse(text, filename=name)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top in sys.stdlib_module_names or top in HANDLER_PACKAGES or top == "__future__":
                    continue
                found.setdefault(top, name)
    return found


def _missing_imports(path: Path, names: list[str]) -> list[Problem]:
    with zipfile.ZipFile(path) as zf:
        sources = {
            n: zf.read(n).decode("utf-8", "replace")
            for n in names
            if n.endswith(".py") and n.split("/")[0] in HANDLER_PACKAGES
        }
    tops = {n.split("/")[0] for n in names if "/" in n} | {n.split(".")[0] for n in names if "/" not in n}
    return [
        Problem(
            "artifact.import_missing",
            where,
            f"Expected the zip to carry {top!r} (imported by the handler) but received no such module",
        )
        for top, where in sorted(handler_imports(sources).items())
        if top not in tops and top not in RUNTIME_MODULES
    ]


def check_artifact(path: Path, arch: str, python_version: str = PYTHON_VERSION) -> ArtifactReport:
    """Check a built zip: sizes, ELF machine, GLIBC needs, bundled libraries, extension ABI, pinned distributions."""
    BuildOptions(arch=arch, python_version=python_version)  # validates the arguments
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(ArtifactErrorCode.MISSING, f"Expected a zip file for artifact but received {str(path)!r}")
    problems: list[Problem] = []
    want_abi = python_version.replace(".", "")
    elf_count = 0
    max_glibc: tuple[int, int] | None = None
    max_glibcxx: tuple[int, ...] | None = None
    with zipfile.ZipFile(path) as zf:
        infos = list(_zip_files(zf))
        names = [i.filename for i in infos]
        unzipped = sum(i.file_size for i in infos)
        basenames = {Path(n).name for n in names}
        dists = _distributions(names, zf)
        for info in infos:
            name = info.filename
            m = _EXT_MODULE.search(name)
            if m and (m.group(1) + m.group(2) != want_abi or m.group(3) != TRIPLETS[arch]):
                problems.append(
                    Problem(
                        "artifact.python_abi",
                        name,
                        f"Expected an extension for cpython-{want_abi}-{TRIPLETS[arch]} but received "
                        f"cpython-{m.group(1)}{m.group(2)}-{m.group(3)}",
                    )
                )
            with zf.open(info) as fh:
                if not is_elf(fh.read(4)):
                    continue
            elf_count += 1
            try:
                elf = read_elf(zf.read(info))
            except (ValueError, struct.error, IndexError) as exc:
                problems.append(Problem("artifact.elf_unreadable", name, f"cannot read ELF headers: {exc}"))
                continue
            if elf.machine != arch or elf.elf_class != 64:
                problems.append(
                    Problem(
                        "artifact.elf_machine",
                        name,
                        f"Expected ELF machine {arch} (64-bit) but received {elf.machine} ({elf.elf_class}-bit)",
                    )
                )
            if elf.max_glibc is not None:
                max_glibc = elf.max_glibc if max_glibc is None else max(max_glibc, elf.max_glibc)
                if elf.max_glibc > GLIBC_MAX:
                    problems.append(
                        Problem(
                            "artifact.glibc_too_new",
                            name,
                            "Expected GLIBC <= %d.%d for symbol versions but received %d.%d"
                            % (*GLIBC_MAX, *elf.max_glibc),
                        )
                    )
            if elf.max_glibcxx is not None:
                max_glibcxx = elf.max_glibcxx if max_glibcxx is None else max(max_glibcxx, elf.max_glibcxx)
            if elf.max_glibcxx is not None and elf.max_glibcxx > GLIBCXX_MAX:
                problems.append(
                    Problem(
                        "artifact.glibcxx_too_new",
                        name,
                        "Expected GLIBCXX <= %s for symbol versions but received %s"
                        % (".".join(map(str, GLIBCXX_MAX)), ".".join(map(str, elf.max_glibcxx))),
                    )
                )
            for lib in elf.needed:
                if lib not in basenames and lib not in SYSTEM_LIBRARIES:
                    problems.append(
                        Problem(
                            "artifact.unresolved_library",
                            name,
                            f"Expected {lib} to be bundled or provided by the Lambda runtime but received neither",
                        )
                    )
    zipped = path.stat().st_size
    if zipped > MAX_ZIPPED_BYTES:
        problems.append(
            Problem(
                "artifact.too_large_zipped",
                path.name,
                f"Expected at most {MAX_ZIPPED_BYTES} bytes zipped but received {zipped}",
            )
        )
    if unzipped > MAX_UNZIPPED_BYTES:
        problems.append(
            Problem(
                "artifact.too_large_unzipped",
                path.name,
                f"Expected at most {MAX_UNZIPPED_BYTES} bytes unzipped but received {unzipped}",
            )
        )
    for dist, version in required_distributions(arch).items():
        if dists.get(dist) != version:
            problems.append(
                Problem(
                    "artifact.distribution",
                    f"{dist}.dist-info",
                    f"Expected {dist} {version} but received {dists.get(dist, 'nothing')}",
                )
            )
    if "thumbnailer/app.py" not in names:  # handler string thumbnailer.app.lambda_handler
        problems.append(
            Problem(
                "artifact.handler_missing",
                "thumbnailer/app.py",
                "Expected the thumbnailer package at the zip root but received none",
            )
        )
    problems += _missing_imports(path, names)
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    return ArtifactReport(
        path=str(shown),
        arch=arch,
        python_version=python_version,
        zipped_bytes=zipped,
        unzipped_bytes=unzipped,
        files=len(infos),
        elf_files=elf_count,
        max_glibc=("%d.%d" % max_glibc) if max_glibc else None,
        max_glibcxx=".".join(map(str, max_glibcxx)) if max_glibcxx else None,
        distributions={k: v for k, v in sorted(dists.items())},
        problems=tuple(problems),
    )
