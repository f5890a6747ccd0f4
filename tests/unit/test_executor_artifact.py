"""Artifact mode: how the executor picks the mode and interpreter of a function, and the stack knobs that select it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.executor.local_executor import artifact
from harness.executor.local_executor.artifact import ArtifactSettings, ModeRecord
from harness.executor.local_executor.languages import PYTHON_BOOTSTRAP, RuntimeUnavailable
from infra.deploy import code as deploy_code
from infra.errors import InfraError
from infra.stack import CODE_MODE_ENV, build_stack

VENV_PYTHON = Path(sys.executable)


def _settings(tmp_path: Path, **changes: object) -> ArtifactSettings:
    base = ArtifactSettings.from_env(
        {}, repo_root=tmp_path / "repo", venv_python=VENV_PYTHON, state_dir=tmp_path / "state"
    )
    return ArtifactSettings(**{**base.__dict__, **changes})


def _fake_python(folder: Path, version: str, machine: str) -> Path:
    """A script that answers the interpreter probe like a CPython of `version` on `machine`."""
    path = folder / f"python-{version}-{machine}"
    path.write_text(f"#!/bin/sh\necho {version} {machine}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_code_mode_defaults_to_venv_and_refuses_unknown_values() -> None:
    assert artifact.code_mode(None) == "venv"
    assert artifact.code_mode({"THUMB_BACKEND": "pillow"}) == "venv"
    assert artifact.code_mode({CODE_MODE_ENV: "artifact"}) == "artifact"
    with pytest.raises(RuntimeUnavailable) as err:
        artifact.code_mode({CODE_MODE_ENV: "zip"})
    assert err.value.code == "INVALID_CODE_MODE" and "Expected one of venv|artifact" in str(err.value)


def test_function_arch_reads_enums_strings_and_the_aws_default() -> None:
    assert artifact.function_arch([SimpleNamespace(value="arm64")]) == "arm64"
    assert artifact.function_arch(["x86_64"]) == "x86_64"
    assert artifact.function_arch(None) == "x86_64"


def test_host_arch_names_lambda_architectures() -> None:
    assert artifact.host_arch("x86_64") == "x86_64" and artifact.host_arch("aarch64") == "arm64"
    with pytest.raises(RuntimeUnavailable) as err:
        artifact.host_arch("riscv64")
    assert err.value.code == "ARTIFACT_HOST_UNSUPPORTED"


def test_base_python_is_the_interpreter_the_venv_was_made_from(tmp_path: Path) -> None:
    home = tmp_path / "base" / "bin"
    home.mkdir(parents=True)
    (home / "python3.13").write_text("")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {home}\nversion = 3.13.0\n")
    assert artifact.base_python(venv / "bin" / "python") == home / "python3.13"
    assert artifact.base_python(tmp_path / "nothing" / "bin" / "python") is None


def test_a_native_interpreter_of_another_version_or_machine_is_refused(tmp_path: Path) -> None:
    host = artifact.host_arch()
    for version, machine in (("3.12.7", platform_machine()), ("3.13.1", "ppc64le")):
        s = _settings(tmp_path, python=_fake_python(tmp_path, version, machine))
        with pytest.raises(RuntimeUnavailable) as err:
            artifact.find_interpreter(host, s)
        assert err.value.code == "ARTIFACT_PYTHON_NOT_FOUND"
        assert f"received {version} for" in str(err.value)


def platform_machine() -> str:
    import platform

    return platform.machine()


def test_the_native_interpreter_is_3_13_and_sees_nothing_of_the_project_venv(tmp_path: Path) -> None:
    # GIVEN the interpreter artifact mode picks for the host (the venv's base interpreter, not the venv)
    s = _settings(tmp_path)
    found = artifact.find_interpreter(artifact.host_arch(), s)
    assert not found.emulated and found.version.startswith("3.13.") and found.prefix[1:] == ("-s", "-S", "-P")
    assert Path(found.prefix[0]) != VENV_PYTHON
    # WHEN it runs with only an (empty) artifact on its path, as the executor starts it
    task = tmp_path / "task"
    task.mkdir()
    env = dict(found.env, PYTHONPATH=str(task))
    out = subprocess.run(
        [*found.prefix, "-c", "import json, sys; print(json.dumps(sys.path))"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tmp_path,
    )
    path = json.loads(out.stdout)
    # THEN its path is the artifact then the standard library: no site-packages, no venv, no script folder
    assert path[0] == str(task)
    assert not any("site-packages" in p or ".venv" in p for p in path)
    missing = subprocess.run([*found.prefix, "-c", "import PIL"], capture_output=True, text=True, env=env, check=False)
    assert missing.returncode != 0 and "No module named 'PIL'" in missing.stderr


def test_arm64_needs_a_complete_root_and_qemu(tmp_path: Path) -> None:
    if artifact.host_arch() == "arm64":
        pytest.skip("arm64 runs natively on this host")
    s = _settings(tmp_path, arm64_root=tmp_path / "root")
    with pytest.raises(RuntimeUnavailable) as err:
        artifact.find_interpreter("arm64", s)
    assert err.value.code == "ARM64_ROOT_MISSING" and "make test-arm64" in str(err.value)
    python = tmp_path / "root" / "usr" / "bin" / "python3.13"
    python.parent.mkdir(parents=True)
    python.write_text("")
    (tmp_path / "root" / artifact.ROOT_MARKER).write_text("{}")
    s = _settings(tmp_path, arm64_root=tmp_path / "root", qemu_aarch64="no-such-qemu-aarch64")
    with pytest.raises(RuntimeUnavailable) as err:
        artifact.find_interpreter("arm64", s)
    assert err.value.code == "ARM64_TOOL_MISSING"


def _config(tmp_path: Path, env: dict[str, str], arch: str, runtime: str = "python3.13") -> SimpleNamespace:
    code_dir = tmp_path / "code"
    code_dir.mkdir(exist_ok=True)
    return SimpleNamespace(
        runtime=SimpleNamespace(value=runtime),
        environment=env,
        architectures=[SimpleNamespace(value=arch)],
        code=SimpleNamespace(get_unzipped_code_location=lambda: code_dir),
    )


def test_venv_mode_leaves_the_launch_to_the_language_table_and_records_the_mode(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert artifact.artifact_launch("fn", _config(tmp_path, {}, "arm64"), s, venv_python=VENV_PYTHON) is None
    record = ModeRecord(**json.loads((s.state_dir / "code-modes" / "fn.json").read_text()))
    assert record.code_mode == "venv" and record.arch == "arm64" and str(VENV_PYTHON) in record.interpreter
    node = _config(tmp_path, {CODE_MODE_ENV: "artifact"}, "x86_64", runtime="nodejs22.x")
    assert artifact.artifact_launch("js", node, s, venv_python=VENV_PYTHON) is None


def test_artifact_mode_runs_the_bootstrap_on_the_artifact_then_the_runtime_modules(tmp_path: Path) -> None:
    # GIVEN a function of the host's architecture in artifact mode
    s = _settings(tmp_path)
    config = _config(tmp_path, {CODE_MODE_ENV: "artifact"}, artifact.host_arch())
    # WHEN the executor asks how to start it
    launch = artifact.artifact_launch("fn", config, s, venv_python=VENV_PYTHON)
    # THEN: a CPython 3.13 in isolation runs the bootstrap; the path is the unzipped code, then boto3 & co
    assert launch is not None and launch.argv[-1] == str(PYTHON_BOOTSTRAP) and launch.argv[-4:-1] == ("-s", "-S", "-P")
    code_dir, layer = launch.env["PYTHONPATH"].split(os.pathsep)
    assert code_dir == str(tmp_path / "code")
    assert (Path(layer) / "boto3" / "__init__.py").is_file() and (Path(layer) / "botocore").is_dir()
    assert ".venv" not in launch.env["PATH"]
    record = json.loads((s.state_dir / "code-modes" / "fn.json").read_text())
    assert record["code_mode"] == "artifact" and record["interpreter"].startswith("CPython 3.13")
    # and an older python runtime is refused in artifact mode (the artifact is built for 3.13)
    with pytest.raises(RuntimeUnavailable) as err:
        artifact.artifact_launch(
            "fn", _config(tmp_path, {CODE_MODE_ENV: "artifact"}, "x86_64", "python3.12"), s, venv_python=VENV_PYTHON
        )
    assert err.value.code == "ARTIFACT_RUNTIME_UNSUPPORTED"


# ---- the stack knobs -----------------------------------------------------------------------------------------------
def test_code_and_arch_knobs_select_the_mode_and_architecture() -> None:
    default = build_stack("thumbs")
    assert default.config.code == "venv" and CODE_MODE_ENV not in default.function.environment("dlq")
    stack = build_stack("thumbs", overrides={"code": "artifact", "arch": "x86_64"})
    assert stack.function.architecture == "x86_64"
    assert stack.function.environment("dlq")[CODE_MODE_ENV] == "artifact"
    notifier = build_stack("thumbs", overrides={"code": "artifact", "topology": "notifier"})
    assert notifier.notifier is not None and notifier.notifier.environment("http://q")[CODE_MODE_ENV] == "artifact"
    with pytest.raises(InfraError) as err:
        build_stack("thumbs", overrides={"code": "docker"})
    assert err.value.code == "INVALID_STACK" and "Expected one of venv|artifact for code" in err.value.message


def test_an_artifact_stack_deploys_the_packaged_zip_of_its_architecture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = {arch: tmp_path / f"lambda-{arch}.zip" for arch in ("arm64", "x86_64")}
    built["x86_64"].write_bytes(b"PK-x86_64")
    monkeypatch.setattr(deploy_code, "default_output", lambda arch: built[arch])
    assert deploy_code.stack_code(build_stack("thumbs", overrides={"code": "artifact", "arch": "x86_64"})) == (
        b"PK-x86_64"
    )
    with pytest.raises(InfraError) as err:  # arm64 not packaged
        deploy_code.stack_code(build_stack("thumbs", overrides={"code": "artifact"}))
    assert err.value.code == "PACKAGE_FAILED" and "make package" in err.value.message
    assert deploy_code.stack_code(build_stack("thumbs")).startswith(b"PK")  # venv: the code-only zip


def test_two_environments_of_one_function_can_record_its_mode_at_the_same_time(tmp_path: Path) -> None:
    # two lanes start two environments of a function at once, both in LocalStack's process: a temp file named by
    # the pid alone was renamed away by one writer under the other (FileNotFoundError, the start failed)
    import threading

    s = _settings(tmp_path)
    record = ModeRecord("fn", "venv", "x86_64", str(VENV_PYTHON), False)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer() -> None:
        start.wait()
        try:
            for _ in range(300):
                artifact.write_mode_record(s, record)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert json.loads((s.state_dir / "code-modes" / "fn.json").read_text())["function_name"] == "fn"
