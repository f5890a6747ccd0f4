"""Build the Lambda deployment zip for one architecture (handlers + manylinux wheels) and check what it bundles."""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence

ROOT = Path(__file__).resolve().parent.parent
HANDLERS_DIR = ROOT / "handlers"
PACKAGE_DIR = ROOT / ".package"

Arch = Literal["arm64", "x86_64"]
ARCHES: tuple[str, ...] = ("arm64", "x86_64")
# Lambda architecture -> manylinux platform suffix, ELF e_machine, extension-module triplet
WHEEL_ARCH: dict[str, str] = {"arm64": "aarch64", "x86_64": "x86_64"}
ELF_MACHINES: dict[int, str] = {183: "arm64", 62: "x86_64", 3: "x86", 40: "arm"}
TRIPLETS: dict[str, str] = {"arm64": "aarch64-linux-gnu", "x86_64": "x86_64-linux-gnu"}

PYTHON_VERSION = "3.13"
# Lambda's python3.13 runtime (Amazon Linux 2023) has glibc 2.34: nothing bundled may need a newer symbol version.
GLIBC_MAX: tuple[int, int] = (2, 34)
# ...and its libstdc++ comes from GCC 11 (GLIBCXX_3.4.29); manylinux_2_28 wheels stay at or below 3.4.25.
GLIBCXX_MAX: tuple[int, int, int] = (3, 4, 29)
MANYLINUX_MIN_MINOR = 17
MAX_ZIPPED_BYTES = 50 * 1024 * 1024  # direct upload limit
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # function + layers, unzipped

# What the package carries besides handlers/. Pinned: the emulated arm64 run and the native reference run must use
# the same releases (they sit inside pyproject's ranges). boto3 is not bundled: the Lambda runtime provides it.
PYVIPS_PIN = "pyvips==3.2.0"  # sdist only on PyPI: its pure-Python wheel is built locally first
REQUIREMENTS: tuple[str, ...] = (
    "Pillow==13.0.0",
    "pyvips[binary]==3.2.0",
    "pyvips-binary==8.18.7",
    "aws-lambda-powertools==3.37.0",
    "numpy==2.5.5",  # the Pillow resizer uses it
)
# Distributions that must be present at exactly these versions (a silent pip fallback shows up here).
REQUIRED_DISTRIBUTIONS: dict[str, str] = {
    "pillow": "13.0.0",
    "pyvips": "3.2.0",
    "pyvips_binary": "8.18.7",
    "aws_lambda_powertools": "3.37.0",
    "numpy": "2.5.5",
}
# Top-level modules the Lambda python3.13 runtime provides, so the zip need not carry them.
RUNTIME_MODULES: frozenset[str] = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3",
                                             "six", "awslambdaric"})
HANDLER_PACKAGES: tuple[str, ...] = ("thumbnailer", "notifier")
# Libraries the Lambda runtime (Amazon Linux 2023) provides; everything else an ELF file needs must be bundled.
SYSTEM_LIBRARIES: frozenset[str] = frozenset({
    "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "libresolv.so.2", "librt.so.1", "libutil.so.1",
    "libgcc_s.so.1", "libstdc++.so.6", "libz.so.1", "ld-linux-aarch64.so.1", "ld-linux-x86-64.so.2",
})
# Not needed at run time in Lambda: scripts, byte code caches (and the dependencies' own test suites).
EXCLUDED_PARTS: frozenset[str] = frozenset({"__pycache__", "bin"})
EXCLUDED_SUFFIXES: tuple[str, ...] = (".pyc", ".pyo")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same zip (stable CDK asset hash)


class ArtifactError(Exception):
    """Building or checking the artifact failed; `code` is stable, `problems` lists every failed check."""

    def __init__(self, code: str, message: str, problems: Sequence["Problem"] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = tuple(problems)

    def __str__(self) -> str:
        lines = [f"{self.code}: {self.message}"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class Problem:
    """One failed check on one file of the artifact."""

    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.path}: {self.message}"


@dataclass(frozen=True)
class ElfInfo:
    """What the checks need from one ELF file: machine, needed libraries and GLIBC_x.y symbol versions."""

    machine: str
    elf_class: int  # 32 or 64
    needed: tuple[str, ...]
    glibc_versions: tuple[tuple[int, int], ...]
    glibcxx_versions: tuple[tuple[int, ...], ...] = ()

    @property
    def max_glibc(self) -> tuple[int, int] | None:
        return max(self.glibc_versions) if self.glibc_versions else None

    @property
    def max_glibcxx(self) -> tuple[int, ...] | None:
        return max(self.glibcxx_versions) if self.glibcxx_versions else None


@dataclass(frozen=True)
class BuildOptions:
    """How to build: target arch, and (for tests that need a bad artifact) which wheels to actually fetch."""

    arch: str = "arm64"
    python_version: str = PYTHON_VERSION
    wheel_arch: str | None = None  # None: the wheels of `arch`; "x86_64" in an arm64 build makes a wrong artifact
    requirements: tuple[str, ...] = REQUIREMENTS

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise ArtifactError("artifact.invalid_arch",
                                f"Expected one of {'|'.join(ARCHES)} for arch but received {self.arch!r}")
        if self.wheel_arch is not None and self.wheel_arch not in ARCHES:
            raise ArtifactError("artifact.invalid_arch",
                                f"Expected one of {'|'.join(ARCHES)} for wheel arch but received {self.wheel_arch!r}")
        if not re.fullmatch(r"3\.\d{1,2}", self.python_version):
            raise ArtifactError("artifact.invalid_python_version",
                                f"Expected '3.N' for python version but received {self.python_version!r}")


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
        data["limits"] = {"zipped_bytes": MAX_ZIPPED_BYTES, "unzipped_bytes": MAX_UNZIPPED_BYTES,
                          "glibc": "%d.%d" % GLIBC_MAX, "glibcxx": ".".join(map(str, GLIBCXX_MAX))}
        return json.dumps(data, indent=2, sort_keys=True)

    def summary(self) -> str:
        mb = 1024 * 1024
        head = (f"{Path(self.path).name}: {self.arch}, python {self.python_version}, "
                f"{self.zipped_bytes / mb:.1f} MB zipped (limit {MAX_ZIPPED_BYTES // mb}), "
                f"{self.unzipped_bytes / mb:.1f} MB unzipped (limit {MAX_UNZIPPED_BYTES // mb}), "
                f"{self.files} files, {self.elf_files} ELF, max GLIBC {self.max_glibc or '-'} "
                f"(limit {GLIBC_MAX[0]}.{GLIBC_MAX[1]}), max GLIBCXX {self.max_glibcxx or '-'}, "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.distributions.items())))
        if self.ok:
            return head + " -- OK"
        return head + f" -- {len(self.problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in self.problems)


# ---- ELF reading (stdlib only: works for any target machine, unlike a host objdump) ---------------------------

SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE
DT_NEEDED = 1


def is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


def read_elf(data: bytes) -> ElfInfo:
    """Machine, DT_NEEDED and the GLIBC_ versions from .gnu.version_r of an ELF image held in memory."""
    if not is_elf(data) or len(data) < 52:
        raise ValueError("not an ELF file")
    elf_class = {1: 32, 2: 64}.get(data[4])
    endian = {1: "<", 2: ">"}.get(data[5])
    if elf_class is None or endian is None:
        raise ValueError(f"unknown ELF class/data {data[4]}/{data[5]}")
    (e_machine,) = struct.unpack_from(endian + "H", data, 18)
    machine = ELF_MACHINES.get(e_machine, f"e_machine={e_machine}")
    if elf_class == 64:
        e_shoff, = struct.unpack_from(endian + "Q", data, 0x28)
        e_shentsize, e_shnum = struct.unpack_from(endian + "HH", data, 0x3A)
        sh_fmt = endian + "IIQQQQIIQQ"
    else:
        e_shoff, = struct.unpack_from(endian + "I", data, 0x20)
        e_shentsize, e_shnum = struct.unpack_from(endian + "HH", data, 0x2E)
        sh_fmt = endian + "IIIIIIIIII"
    sections = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        if off + struct.calcsize(sh_fmt) > len(data):
            break
        _name, sh_type, _flags, _addr, sh_offset, sh_size, sh_link, sh_info, _align, _entsize = \
            struct.unpack_from(sh_fmt, data, off)
        sections.append((sh_type, sh_offset, sh_size, sh_link, sh_info))

    def cstr(strtab_index: int, offset: int) -> str:
        _t, base, size, _l, _i = sections[strtab_index]
        start = base + offset
        end = data.index(b"\0", start, base + size)
        return data[start:end].decode("ascii", "replace")

    needed: list[str] = []
    versions: set[tuple[int, int]] = set()
    cxx_versions: set[tuple[int, ...]] = set()
    for sh_type, sh_offset, sh_size, sh_link, sh_info in sections:
        if sh_type == SHT_DYNAMIC:
            dyn_fmt = endian + ("qQ" if elf_class == 64 else "iI")
            step = struct.calcsize(dyn_fmt)
            for pos in range(sh_offset, sh_offset + sh_size - step + 1, step):
                tag, val = struct.unpack_from(dyn_fmt, data, pos)
                if tag == 0:
                    break
                if tag == DT_NEEDED:
                    needed.append(cstr(sh_link, val))
        elif sh_type == SHT_GNU_VERNEED:
            pos = sh_offset
            for _ in range(sh_info):  # sh_info = number of Verneed entries
                _ver, cnt, _file, aux, nxt = struct.unpack_from(endian + "HHIII", data, pos)
                apos = pos + aux
                for _ in range(cnt):
                    _hash, _flags, _other, name, anext = struct.unpack_from(endian + "IHHII", data, apos)
                    vname = cstr(sh_link, name)
                    m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", vname)
                    if m:
                        versions.add((int(m.group(1)), int(m.group(2))))
                    m = re.fullmatch(r"GLIBCXX_(\d+(?:\.\d+)*)", vname)
                    if m:
                        cxx_versions.add(tuple(int(x) for x in m.group(1).split(".")))
                    if not anext:
                        break
                    apos += anext
                if not nxt:
                    break
                pos += nxt
    return ElfInfo(machine=machine, elf_class=elf_class, needed=tuple(needed),
                   glibc_versions=tuple(sorted(versions)), glibcxx_versions=tuple(sorted(cxx_versions)))


# ---- checking ---------------------------------------------------------------------------------------------------

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
        sources = {n: zf.read(n).decode("utf-8", "replace") for n in names
                   if n.endswith(".py") and n.split("/")[0] in HANDLER_PACKAGES}
    tops = {n.split("/")[0] for n in names if "/" in n} | {n.split(".")[0] for n in names if "/" not in n}
    return [Problem("artifact.import_missing", where,
                    f"Expected the zip to carry {top!r} (imported by the handler) but received no such module")
            for top, where in sorted(handler_imports(sources).items())
            if top not in tops and top not in RUNTIME_MODULES]


def check_artifact(path: Path, arch: str, python_version: str = PYTHON_VERSION) -> ArtifactReport:
    """Check a built zip: sizes, ELF machine, GLIBC needs, bundled libraries, extension ABI, pinned distributions."""
    BuildOptions(arch=arch, python_version=python_version)  # validates the arguments
    path = Path(path)
    if not path.is_file():
        raise ArtifactError("artifact.missing", f"Expected a zip file for artifact but received {str(path)!r}")
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
                problems.append(Problem("artifact.python_abi", name,
                                        f"Expected an extension for cpython-{want_abi}-{TRIPLETS[arch]} but received "
                                        f"cpython-{m.group(1)}{m.group(2)}-{m.group(3)}"))
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
                problems.append(Problem("artifact.elf_machine", name,
                                        f"Expected ELF machine {arch} (64-bit) but received {elf.machine} "
                                        f"({elf.elf_class}-bit)"))
            if elf.max_glibc is not None:
                max_glibc = elf.max_glibc if max_glibc is None else max(max_glibc, elf.max_glibc)
                if elf.max_glibc > GLIBC_MAX:
                    problems.append(Problem("artifact.glibc_too_new", name,
                                            "Expected GLIBC <= %d.%d for symbol versions but received %d.%d"
                                            % (*GLIBC_MAX, *elf.max_glibc)))
            if elf.max_glibcxx is not None:
                max_glibcxx = elf.max_glibcxx if max_glibcxx is None else max(max_glibcxx, elf.max_glibcxx)
            if elf.max_glibcxx is not None and elf.max_glibcxx > GLIBCXX_MAX:
                problems.append(Problem("artifact.glibcxx_too_new", name,
                                        "Expected GLIBCXX <= %s for symbol versions but received %s"
                                        % (".".join(map(str, GLIBCXX_MAX)), ".".join(map(str, elf.max_glibcxx)))))
            for lib in elf.needed:
                if lib not in basenames and lib not in SYSTEM_LIBRARIES:
                    problems.append(Problem("artifact.unresolved_library", name,
                                            f"Expected {lib} to be bundled or provided by the Lambda runtime but "
                                            f"received neither"))
    zipped = path.stat().st_size
    if zipped > MAX_ZIPPED_BYTES:
        problems.append(Problem("artifact.too_large_zipped", path.name,
                                f"Expected at most {MAX_ZIPPED_BYTES} bytes zipped but received {zipped}"))
    if unzipped > MAX_UNZIPPED_BYTES:
        problems.append(Problem("artifact.too_large_unzipped", path.name,
                                f"Expected at most {MAX_UNZIPPED_BYTES} bytes unzipped but received {unzipped}"))
    for dist, version in REQUIRED_DISTRIBUTIONS.items():
        if dists.get(dist) != version:
            problems.append(Problem("artifact.distribution", f"{dist}.dist-info",
                                    f"Expected {dist} {version} but received {dists.get(dist, 'nothing')}"))
    if "thumbnailer/app.py" not in names:  # handler string thumbnailer.app.lambda_handler
        problems.append(Problem("artifact.handler_missing", "thumbnailer/app.py",
                                "Expected the thumbnailer package at the zip root but received none"))
    problems += _missing_imports(path, names)
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    return ArtifactReport(
        path=str(shown), arch=arch, python_version=python_version, zipped_bytes=zipped, unzipped_bytes=unzipped,
        files=len(infos), elf_files=elf_count, max_glibc=("%d.%d" % max_glibc) if max_glibc else None,
        max_glibcxx=".".join(map(str, max_glibcxx)) if max_glibcxx else None,
        distributions={k: v for k, v in sorted(dists.items())}, problems=tuple(problems),
    )


# ---- building ---------------------------------------------------------------------------------------------------

def platform_args(wheel_arch: str) -> list[str]:
    """pip does not widen a newer manylinux tag to older ones: name every manylinux_2_N from 17 to 34."""
    suffix = WHEEL_ARCH[wheel_arch]
    args = ["--platform", f"manylinux2014_{suffix}"]
    for minor in range(MANYLINUX_MIN_MINOR, GLIBC_MAX[1] + 1):
        args += ["--platform", f"manylinux_2_{minor}_{suffix}"]
    return args


def _pip(python: str, args: list[str], what: str, timeout: float) -> None:
    cmd = [python, "-m", "pip", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ArtifactError("artifact.pip_timeout", f"pip did not finish {what} within {timeout:.0f}s") from None
    if proc.returncode != 0:
        noise = "is ignored: it is neither a file nor a directory"
        tail = "\n".join(ln for ln in (proc.stderr + proc.stdout).splitlines() if noise not in ln)[-3000:]
        raise ArtifactError("artifact.pip_failed", f"pip failed while {what} (exit {proc.returncode}):\n{tail}")


def _iter_sources(site: Path, handlers: Path) -> Iterator[tuple[Path, str]]:
    def walk(base: Path, skip_top: frozenset[str],
             skip_dirs: frozenset[str] = EXCLUDED_PARTS) -> Iterator[tuple[Path, str]]:
        for p in sorted(base.rglob("*")):
            rel = p.relative_to(base)
            if not p.is_file() or rel.parts[0] in skip_top or skip_dirs & set(rel.parts[:-1]):
                continue
            if any(part.startswith(".") for part in rel.parts):  # editor/tool droppings (.mypy_cache, .DS_Store)
                continue
            if p.suffix in EXCLUDED_SUFFIXES:
                continue
            yield p, rel.as_posix()
    yield from walk(handlers, frozenset({"tests"}))
    yield from walk(site, frozenset({"bin"}), skip_dirs=EXCLUDED_PARTS | {"tests"})


def write_zip(files: Iterable[tuple[Path, str]], out: Path, compresslevel: int = 6) -> None:
    """A deterministic zip: sorted names, fixed timestamps, 0644/0755 modes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    seen: set[str] = set()
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for src, arcname in sorted(files, key=lambda t: t[1]):
            if arcname in seen:
                raise ArtifactError("artifact.duplicate", f"Expected unique paths in the zip but received {arcname!r} "
                                                          "twice (a handler package shadows a dependency?)")
            seen.add(arcname)
            info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
            mode = 0o755 if src.stat().st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(src, "rb") as fh:
                zf.writestr(info, fh.read(), compresslevel=compresslevel)
    tmp.replace(out)


def default_output(arch: str) -> Path:
    return PACKAGE_DIR / f"lambda-{arch}.zip"


def build_artifact(options: BuildOptions, out: Path | None = None, *, handlers: Path = HANDLERS_DIR,
                   python: str | None = None, check: bool = True, timeout: float = 600.0,
                   compresslevel: int = 6) -> ArtifactReport:
    """Build the zip for `options.arch` and check it; raises ArtifactError (code artifact.check_failed) if `check`
    and any check fails. `python` runs pip (default: this interpreter); tests trade size for speed with
    `compresslevel=1`."""
    python = python or sys.executable
    out = Path(out) if out else default_output(options.arch)
    if not (handlers / "thumbnailer").is_dir():
        raise ArtifactError("artifact.handler_missing",
                            f"Expected a thumbnailer package in {handlers} but received none")
    wheel_arch = options.wheel_arch or options.arch
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"build-{options.arch}-", dir=out.parent) as tmp:
        wheels, site = Path(tmp) / "wheels", Path(tmp) / "site"
        _pip(python, ["wheel", "--no-deps", "--quiet", "-w", str(wheels), PYVIPS_PIN],
             "building the pyvips wheel", timeout)
        _pip(python, ["install", "--quiet", "--no-compile", "--target", str(site), "--only-binary=:all:",
                      "--implementation", "cp", "--python-version", options.python_version,
                      *platform_args(wheel_arch), "--find-links", str(wheels), *options.requirements],
             f"installing {wheel_arch} wheels for python {options.python_version}", timeout)
        write_zip(_iter_sources(site, handlers), out, compresslevel)
    report = check_artifact(out, options.arch, PYTHON_VERSION)
    out.with_suffix(".json").write_text(report.to_json() + "\n")
    if check and not report.ok:
        raise ArtifactError("artifact.check_failed", f"{out.name} failed {len(report.problems)} check(s)",
                            report.problems)
    return report


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.artifact", description=__doc__)
    parser.add_argument("--arch", choices=ARCHES, default="arm64", help="Lambda architecture (default arm64)")
    parser.add_argument("--out", type=Path, help="zip to write (default .package/lambda-<arch>.zip)")
    parser.add_argument("--check-only", action="store_true", help="check an existing zip instead of building")
    args = parser.parse_args(argv)
    out = args.out or default_output(args.arch)
    try:
        report = check_artifact(out, args.arch) if args.check_only else \
            build_artifact(BuildOptions(arch=args.arch), out, check=False)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
