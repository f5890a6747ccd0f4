"""The artifact's static checks: a good arm64 zip passes; x86_64 or cp311 binaries and missing modules are caught."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from infra.artifact.archive import write_zip
from infra.artifact.checks import check_artifact
from infra.artifact.cli import main as artifact_main
from infra.artifact.elf import is_elf, read_elf
from infra.artifact.options import BuildOptions
from infra.artifact.pins import REQUIRED_DISTRIBUTIONS
from infra.artifact.runtime import GLIBC_MAX, MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES
from infra.errors import ArtifactError, ArtifactErrorCode

pytestmark = pytest.mark.arm64


def test_arm64_artifact_passes_every_check(arm64_zip: Path) -> None:
    report = check_artifact(arm64_zip, "arm64")

    assert report.ok, report.summary()
    assert report.zipped_bytes <= MAX_ZIPPED_BYTES
    assert report.unzipped_bytes <= MAX_UNZIPPED_BYTES
    assert report.elf_files >= 20  # Pillow's and libvips' bundled libraries really are in there
    assert report.max_glibc is not None
    assert tuple(int(x) for x in report.max_glibc.split(".")) <= GLIBC_MAX
    assert report.distributions["pyvips_binary"] == REQUIRED_DISTRIBUTIONS["pyvips_binary"]
    with zipfile.ZipFile(arm64_zip) as zf:
        names = set(zf.namelist())
    assert "thumbnailer/config.py" in names  # zip root = handlers/ (handler string thumbnailer.app.lambda_handler)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert any(re.search(r"_imaging\.cpython-313-aarch64-linux-gnu\.so$", n) for n in names)


def test_x86_64_artifact_passes_for_its_own_arch_only(x86_64_zip: Path) -> None:
    assert check_artifact(x86_64_zip, "x86_64").ok
    wrong = check_artifact(x86_64_zip, "arm64")
    assert {p.code for p in wrong.problems} >= {"artifact.elf_machine", "artifact.python_abi"}


def test_check_bites_on_x86_64_wheels_in_an_arm64_zip(bad_zips: dict[str, Path]) -> None:
    report = check_artifact(bad_zips["x86_64-wheels"], "arm64")

    codes = {p.code for p in report.problems}
    assert "artifact.elf_machine" in codes
    machine_problems = [p for p in report.problems if p.code == "artifact.elf_machine"]
    assert any("_imaging" in p.path for p in machine_problems)
    assert any("libvips" in p.path for p in machine_problems)
    assert "Expected ELF machine arm64" in machine_problems[0].message


def test_check_bites_on_cp311_wheels(bad_zips: dict[str, Path]) -> None:
    report = check_artifact(bad_zips["cp311-wheels"], "arm64")

    abi = [p for p in report.problems if p.code == "artifact.python_abi"]
    assert abi, report.summary()
    assert any("_imaging.cpython-311" in p.path for p in abi)
    assert "cpython-313-aarch64-linux-gnu" in abi[0].message


def test_cli_check_exit_codes(arm64_zip: Path, bad_zips: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert artifact_main(["--arch", "arm64", "--check-only", "--out", str(arm64_zip)]) == 0
    assert "-- OK" in capsys.readouterr().out
    assert artifact_main(["--arch", "arm64", "--check-only", "--out", str(bad_zips["cp311-wheels"])]) == 1
    assert "[artifact.python_abi]" in capsys.readouterr().out
    assert artifact_main(["--arch", "arm64", "--check-only", "--out", str(arm64_zip) + ".missing"]) == 2
    assert "error ARTIFACT_MISSING:" in capsys.readouterr().err


def test_elf_reader_agrees_with_readelf(arm64_zip: Path, tmp_path: Path) -> None:
    if not shutil.which("readelf"):
        pytest.skip("binutils' readelf not installed: nothing to cross-check against")
    with zipfile.ZipFile(arm64_zip) as zf:
        elf_names = [n for n in zf.namelist() if is_elf(zf.read(n)[:4])]
        assert elf_names
        for name in elf_names:
            target = tmp_path / Path(name).name
            target.write_bytes(zf.read(name))
            ours = read_elf(target.read_bytes())
            text = subprocess.run(
                ["readelf", "-h", "-d", "-V", str(target)], capture_output=True, text=True, timeout=60, check=True
            ).stdout
            assert re.search(r"Machine:\s+AArch64", text)
            assert ours.machine == "arm64"
            assert list(ours.needed) == re.findall(r"Shared library: \[([^\]]+)\]", text)
            theirs = sorted({(int(a), int(b)) for a, b in re.findall(r"Name: GLIBC_(\d+)\.(\d+)", text)})
            assert list(ours.glibc_versions) == theirs, name
            cxx = sorted({tuple(map(int, v.split("."))) for v in re.findall(r"Name: GLIBCXX_([\d.]+)", text)})
            assert list(ours.glibcxx_versions) == cxx, name


def _zip_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    path = tmp_path / "synthetic.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_missing_module_and_glibc_too_new_are_reported(arm64_zip: Path, tmp_path: Path) -> None:
    # GIVEN a zip whose handler imports a library the zip lacks, and one ELF file needing GLIBC_2.38
    with zipfile.ZipFile(arm64_zip) as zf:
        so_name = next(n for n in zf.namelist() if n.endswith("_imaging.cpython-313-aarch64-linux-gnu.so"))
        elf = zf.read(so_name)
    assert b"GLIBC_2.17\0" in elf
    newer = elf.replace(b"GLIBC_2.17\0", b"GLIBC_2.38\0")  # same length: offsets stay valid
    with zipfile.ZipFile(arm64_zip) as zf:  # libvips is C++: one of its GLIBCXX versions, made too new
        vips_name = next(n for n in zf.namelist() if Path(n).name.startswith("libvips-"))
        vips = zf.read(vips_name)
    assert b"GLIBCXX_3.4.21\0" in vips
    vips_newer = vips.replace(b"GLIBCXX_3.4.21\0", b"GLIBCXX_3.4.33\0")
    files = {
        "thumbnailer/__init__.py": b"",
        "thumbnailer/app.py": b"import boto3\nimport requests\n",
        so_name: newer,
        vips_name: vips_newer,
    }
    report = check_artifact(_zip_with(tmp_path, files), "arm64")

    codes = {p.code: p for p in report.problems}
    assert "requests" in codes["artifact.import_missing"].message  # boto3 is the runtime's, so not reported
    assert "boto3" not in "".join(p.message for p in report.problems if p.code == "artifact.import_missing")
    assert "2.38" in codes["artifact.glibc_too_new"].message
    assert "3.4.33" in codes["artifact.glibcxx_too_new"].message
    assert "artifact.distribution" in codes  # pins missing: a silent pip fallback cannot pass
    assert "artifact.unresolved_library" in codes  # libjpeg etc. referenced but not bundled


def test_invalid_arguments_have_stable_codes(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError) as info:
        BuildOptions(arch="arm")
    assert info.value.code == ArtifactErrorCode.INVALID_ARCH == "ARTIFACT_INVALID_ARCH"
    assert "Expected one of arm64|x86_64 for arch but received 'arm'" in str(info.value)
    with pytest.raises(ArtifactError) as info:
        check_artifact(tmp_path / "nope.zip", "arm64")
    assert info.value.code == ArtifactErrorCode.MISSING


def test_zip_is_deterministic(tmp_path: Path) -> None:
    # GIVEN the same files with different mtimes WHEN zipped twice THEN the bytes are identical (stable asset hash)
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "b.py").write_text("B = 1\n")
    (src / "pkg" / "a.py").write_text("A = 1\n")
    files = [(src / "pkg" / "b.py", "pkg/b.py"), (src / "pkg" / "a.py", "pkg/a.py")]
    write_zip(files, tmp_path / "one.zip")
    os.utime(src / "pkg" / "a.py", (1_000_000_000, 1_000_000_000))
    write_zip(list(reversed(files)), tmp_path / "two.zip")

    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        assert zf.namelist() == ["pkg/a.py", "pkg/b.py"]
