"""The emulator image's inputs, statically: Dockerfile arguments, build context, function layer, wheelhouse plans."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from common.paths import ROOT
from harness import docker_emulator, docker_image

DOCKERFILE = ROOT / "docker" / "Dockerfile"


def test_base_image_is_an_argument_defaulting_to_public_python_313() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.13-slim$", text, re.M)
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(image == "${BASE_IMAGE}" for image in froms), froms
    assert re.search(r"^ARG WHEELHOUSE=docker/wheelhouse$", text, re.M)
    assert "--no-index --find-links /wheels" in text


def test_image_pins_localstack_and_runs_lambda_through_the_local_process_executor() -> None:
    text = DOCKERFILE.read_text()
    assert "-r harness/requirements/emulator.txt" in text and "-c harness/requirements/emulator-constraints.txt" in text
    assert 'assert v == "2026.3.0"' in text
    assert "./harness/executor" in text
    assert "LAMBDA_RUNTIME_EXECUTOR=local-process" in text and "HARNESS_LAMBDA_PYTHON=/opt/layer/bin/python" in text
    assert "docker.sock" not in text and "LOCALSTACK_AUTH_TOKEN" not in text
    assert "--mount" not in text and "# syntax" not in text, "must build with the classic builder (docker-compose v1)"


def test_build_context_holds_only_what_the_dockerfile_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.M):
        copied.update(source.rstrip("/") for source in sources.split())
    copied.discard("${WHEELHOUSE}")
    uncovered = {c for c in copied if not any(c == a or c.startswith(a + "/") for a in allowed)}
    assert not uncovered, uncovered
    assert "docker/wheelhouse" in allowed
    assert (ROOT / "docker" / "entrypoint.sh").stat().st_mode & 0o111, "the entry point must be executable"


def test_layer_is_the_lambda_extra_plus_boto3_without_host_tools() -> None:
    layer = docker_image.layer_requirements()
    names = {re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower() for req in layer}  # type: ignore[union-attr]
    assert {"pillow", "pyvips", "aws-lambda-powertools", "numpy", "boto3"} <= names
    assert not names & {"awscli", "awscli-local", "pytest", "mypy"}
    script = subprocess.run(
        ["python3", str(ROOT / "docker" / "layer_requirements.py"), str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert script.stdout.splitlines() == layer, "the image build and the host wheelhouse must read the same list"


def test_native_wheelhouse_builds_wheels_with_a_313_interpreter(tmp_path: Path) -> None:
    plan = docker_image.plan_wheelhouse(
        "amd64",
        tmp_path / "amd64",
        python=Path("/py313"),
        native="amd64",
        emulator_pins=tmp_path / "e.txt",
        layer_pins=tmp_path / "c.txt",
    )
    assert [cmd[:4] for cmd in plan.commands] == [("/py313", "-m", "pip", "wheel")] * 3
    emulator_cmd, layer_cmd, tools_cmd = plan.commands
    assert str(docker_image.EMULATOR_CONSTRAINTS) in emulator_cmd
    assert emulator_cmd[-2:] == ("-c", str(tmp_path / "e.txt"))
    assert "pyvips[binary]>=3.0,<4" in layer_cmd and layer_cmd[-2:] == ("-c", str(tmp_path / "c.txt"))
    assert "setuptools>=69" in tools_cmd


def test_cross_arch_wheelhouse_downloads_binary_wheels_for_that_platform(tmp_path: Path) -> None:
    plan = docker_image.plan_wheelhouse("arm64", tmp_path / "arm64", python=Path("/py"), native="amd64")
    for cmd in plan.commands:
        assert cmd[3] == "download" and "--only-binary=:all:" in cmd
        assert "--platform=manylinux2014_aarch64" in cmd and "--python-version=3.13" in cmd
        assert cmd[cmd.index("--find-links") + 1] == str(tmp_path / "amd64"), "pure wheels built natively"


def test_lock_pins_keep_versions_and_markers_and_drop_hashes(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text(
        "# header\nboto3==1.44.8 \\\n    --hash=sha256:abc\n    # via x\n"
        "librt==0.17.0 ; platform_python_implementation != 'PyPy' \\\n    --hash=sha256:def\n"
    )
    assert docker_image.write_pins(lock, tmp_path / "pins.txt") == tmp_path / "pins.txt"
    assert (tmp_path / "pins.txt").read_text().splitlines() == [
        "boto3==1.44.8",
        "librt==0.17.0 ; platform_python_implementation != 'PyPy'",
    ]
    assert docker_image.write_pins(tmp_path / "absent.txt", tmp_path / "x.txt") is None


def test_the_image_takes_its_versions_from_the_locks() -> None:
    text = DOCKERFILE.read_text()
    assert "lock_pins.py requirements/emulator.txt" in text and "lock_pins.py requirements/project.txt" in text
    assert docker_image.EMULATOR_LOCK.is_file() and docker_image.LAYER_LOCK.is_file()


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", "amd64"), ("aarch64", "arm64"), ("arm64", "arm64")])
def test_native_arch_names(machine: str, arch: str) -> None:
    assert docker_image.native_arch(machine) == arch


def test_unknown_arch_is_a_coded_error(tmp_path: Path) -> None:
    with pytest.raises(docker_image.DockerImageError) as info:
        docker_image.plan_wheelhouse("s390x", tmp_path, python=Path("/py"), native="amd64")
    assert info.value.code == "UNKNOWN_ARCH"
    assert "Expected amd64 or arm64 for --arch but received 's390x'" in str(info.value)


class FakeRun:
    def __init__(self, v2: bool) -> None:
        self.v2 = v2

    def __call__(self, argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        ok = argv[:3] == ["docker", "compose", "version"] and self.v2
        return subprocess.CompletedProcess(argv, 0 if ok else 1, "", "")


@pytest.mark.parametrize(
    ("present", "v2", "expected"),
    [
        ({"docker", "docker-compose"}, True, ["docker", "compose"]),
        ({"docker", "docker-compose"}, False, ["docker-compose"]),
        ({"docker-compose"}, False, ["docker-compose"]),
    ],
)
def test_compose_v2_is_preferred_and_v1_is_the_fallback(present: set[str], v2: bool, expected: list[str]) -> None:
    which = lambda name: f"/usr/bin/{name}" if name in present else None  # noqa: E731
    assert docker_emulator.compose_command(which=which, run=FakeRun(v2)) == expected


def test_no_compose_at_all_says_how_to_get_one() -> None:
    with pytest.raises(docker_emulator.DockerEmulatorError) as info:
        docker_emulator.compose_command(which=lambda name: None, run=FakeRun(False))
    assert info.value.code == "DOCKER_UNAVAILABLE" and "make docker-engine" in str(info.value)
