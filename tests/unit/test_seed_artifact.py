"""The seed replica's zip builder with a stand-in npm: deterministic bytes, what goes in, what it refuses."""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import pytest

from infra.errors import InfraError
from infra.seed_artifact import SEED_DIR, build_seed, check_seed_zip

# Plays `npm ci --cpu=<cpu>`: writes the packages the real one installs for that CPU (and a symlink and a dotfile,
# which the zip must leave out).
FAKE_NPM = """#!/bin/sh
cpu=$(for a in "$@"; do case "$a" in --cpu=*) echo "${a#--cpu=}";; esac; done)
[ -n "$FAIL" ] && { echo "npm ERR! network" >&2; exit 1; }
mkdir -p node_modules/sharp node_modules/@img/sharp-linux-$cpu/lib node_modules/@img/sharp-libvips-linux-$cpu/lib \
         node_modules/@aws-sdk/client-s3 node_modules/@aws-sdk/client-sqs node_modules/.bin
echo '{}' > node_modules/sharp/package.json
echo binary > node_modules/@img/sharp-linux-$cpu/lib/sharp-linux-$cpu.node
echo lib > node_modules/@img/sharp-libvips-linux-$cpu/lib/libvips-cpp.so.42
echo '{}' > node_modules/@aws-sdk/client-s3/package.json
echo '{}' > node_modules/@aws-sdk/client-sqs/package.json
echo '{}' > node_modules/.package-lock.json
ln -s ../sharp/package.json node_modules/.bin/link
"""


@pytest.fixture()
def fake_npm(tmp_path: Path) -> str:
    path = tmp_path / "npm"
    path.write_text(FAKE_NPM)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_the_zip_is_byte_identical_across_builds_and_holds_the_arch_s_binaries(tmp_path: Path, fake_npm: str) -> None:
    first = build_seed("arm64", tmp_path / "a" / "seed-arm64.zip", npm=fake_npm)
    second = build_seed("arm64", tmp_path / "b" / "seed-arm64.zip", npm=fake_npm)

    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    with zipfile.ZipFile(first) as zf:
        names = zf.namelist()
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert names == sorted(names)
    assert {"index.js", "package.json", "package-lock.json"} <= set(names)
    assert "node_modules/@img/sharp-linux-arm64/lib/sharp-linux-arm64.node" in names
    assert not any("/." in n or n.startswith(".") for n in names)  # no .bin links, no .package-lock.json
    assert zipfile.ZipFile(first).read("index.js") == (SEED_DIR / "index.js").read_bytes()


def test_a_zip_without_the_native_module_of_its_arch_is_refused(tmp_path: Path, fake_npm: str) -> None:
    built = build_seed("x86_64", tmp_path / "seed-x86_64.zip", npm=fake_npm)

    check_seed_zip(built, "x86_64")
    with pytest.raises(InfraError, match="Expected @img/sharp-linux-arm64 .* but received a zip without them"):
        check_seed_zip(built, "arm64")


def test_bad_arch_missing_npm_and_npm_failures_are_package_failed(
    tmp_path: Path, fake_npm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InfraError, match="PACKAGE_FAILED: Expected one of arm64, x86_64 .* but received 'sparc'"):
        build_seed("sparc", tmp_path / "x.zip", npm=fake_npm)
    with pytest.raises(InfraError, match="Expected npm on PATH"):
        build_seed("arm64", tmp_path / "x.zip", npm=str(tmp_path / "no-npm"))
    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(InfraError, match=r"npm ci for the seed \(arm64\) failed \(exit 1\):\nnpm ERR! network"):
        build_seed("arm64", tmp_path / "x.zip", npm=fake_npm)
    assert not (tmp_path / "x.zip").exists()
