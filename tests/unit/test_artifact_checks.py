"""The artifact's size, missing-handler and duplicate-path checks, each made to fail on a deliberately bad input."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from infra.artifact import build as build_module
from infra.artifact import checks as checks_module
from infra.artifact.archive import write_zip
from infra.artifact.checks import check_artifact
from infra.artifact.options import BuildOptions
from infra.errors import ArtifactError, ArtifactErrorCode


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


HANDLER = {"thumbnailer/__init__.py": b"", "thumbnailer/app.py": b"def lambda_handler(event, context):\n    pass\n"}


def _codes(path: Path) -> set[str]:
    return {p.code for p in check_artifact(path, "arm64").problems}


def test_a_zip_over_the_size_limits_is_reported_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a small zip that holds a highly compressible 2 MB file
    path = _zip(tmp_path / "big.zip", {**HANDLER, "thumbnailer/blob.bin": bytes(2 * 1024 * 1024)})
    assert not {"artifact.too_large_zipped", "artifact.too_large_unzipped"} & _codes(path)  # under the real limits
    # WHEN the limits are below its sizes (the real ones, 50/250 MB, would need a 250 MB test file)
    zipped = path.stat().st_size
    monkeypatch.setattr(checks_module, "MAX_ZIPPED_BYTES", zipped - 1)
    monkeypatch.setattr(checks_module, "MAX_UNZIPPED_BYTES", 2 * 1024 * 1024)
    report = check_artifact(path, "arm64")
    # THEN each size check names the limit and the size
    by_code = {p.code: p for p in report.problems}
    assert not report.ok
    assert f"at most {zipped - 1} bytes zipped but received {zipped}" in by_code["artifact.too_large_zipped"].message
    assert "bytes unzipped but received" in by_code["artifact.too_large_unzipped"].message
    # one byte under each limit passes again: the comparison is "greater than", not "at least"
    monkeypatch.setattr(checks_module, "MAX_ZIPPED_BYTES", zipped)
    monkeypatch.setattr(checks_module, "MAX_UNZIPPED_BYTES", report.unzipped_bytes)
    assert not {"artifact.too_large_zipped", "artifact.too_large_unzipped"} & _codes(path)


def test_a_zip_without_the_handler_module_is_reported(tmp_path: Path) -> None:
    good = _zip(tmp_path / "good.zip", HANDLER)
    assert "artifact.handler_missing" not in _codes(good)
    nested = _zip(tmp_path / "nested.zip", {f"handlers/{k}": v for k, v in HANDLER.items()})  # wrong zip root
    assert "artifact.handler_missing" in _codes(nested)
    empty = _zip(tmp_path / "empty.zip", {"README.txt": b"no code"})
    (problem,) = [p for p in check_artifact(empty, "arm64").problems if p.code == "artifact.handler_missing"]
    assert problem.path == "thumbnailer/app.py" and problem.message.startswith("Expected the thumbnailer package")


def test_building_from_a_folder_without_the_handler_fails_before_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run when the handler is missing")

    monkeypatch.setattr(build_module, "_pip", no_pip)
    (tmp_path / "handlers").mkdir()
    with pytest.raises(ArtifactError) as info:
        build_module.build_artifact(BuildOptions(arch="arm64"), tmp_path / "out.zip", handlers=tmp_path / "handlers")
    assert info.value.code == ArtifactErrorCode.HANDLER_MISSING
    assert not (tmp_path / "out.zip").exists()


def test_two_files_for_one_path_in_the_zip_are_refused(tmp_path: Path) -> None:
    # GIVEN a handler module and a dependency that would land on the same path in the zip
    (tmp_path / "handler.py").write_text("A = 1\n")
    (tmp_path / "dependency.py").write_text("A = 2\n")
    files = [(tmp_path / "handler.py", "thumbnailer/app.py"), (tmp_path / "dependency.py", "thumbnailer/app.py")]
    # WHEN zipped THEN the build stops with a stable code naming the path, and leaves no zip behind
    with pytest.raises(ArtifactError) as info:
        write_zip(files, tmp_path / "dup.zip")
    assert info.value.code == ArtifactErrorCode.DUPLICATE and "'thumbnailer/app.py' twice" in info.value.message
    assert not (tmp_path / "dup.zip").exists()
    # distinct paths zip fine (so the error above is about the duplicate, not the files)
    write_zip([files[0], (tmp_path / "dependency.py", "dep/app.py")], tmp_path / "ok.zip")
    with zipfile.ZipFile(tmp_path / "ok.zip") as zf:
        assert zf.namelist() == ["dep/app.py", "thumbnailer/app.py"]
