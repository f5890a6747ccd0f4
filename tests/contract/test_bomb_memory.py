"""Decompression bombs are rejected from the header: peak RSS of a fresh process stays under 100 MB (VmHWM)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import BACKENDS

ROOT = Path(__file__).resolve().parents[2]
PEAK_LIMIT_MB = 100

SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from thumbnailer.errors import PermanentError
from thumbnailer.resizers import ResizeSpec, get_resizer
resizer = get_resizer(sys.argv[2])
data = open(sys.argv[3], "rb").read()
try:
    resizer.resize(data, ResizeSpec())
    code = None
except PermanentError as exc:
    code = str(exc.code)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({"code": code, "vmhwm_kb": int(status["VmHWM"].split()[0])}))
"""


def _jpeg_bomb(tiny_jpeg: bytes) -> bytes:
    """A real small JPEG whose SOF header is rewritten to declare 65000 x 65000 pixels."""
    data = bytearray(tiny_jpeg)
    pos = 2
    while pos < len(data):
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in (0xC0, 0xC2):
            data[pos + 5 : pos + 9] = struct.pack(">HH", 65000, 65000)
            return bytes(data)
        pos += 2 + length
    raise AssertionError("no SOF marker in tiny.jpg")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for VmHWM")
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bomb", ["png", "jpeg"])
def test_bomb_is_rejected_without_allocating(backend: str, bomb: str, generated_fixtures: Path, tmp_path: Path) -> None:
    if bomb == "png":
        path = generated_fixtures / "bad-bomb.png"
    else:
        path = tmp_path / "bomb.jpg"
        path.write_bytes(_jpeg_bomb((generated_fixtures / "tiny.jpg").read_bytes()))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "handlers"), backend, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == "TOO_MANY_PIXELS"
    peak_mb = result["vmhwm_kb"] / 1024
    assert peak_mb < PEAK_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"
