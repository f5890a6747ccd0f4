"""Resize CPU per input class, measured with the handler's own resizer (harness.load.baseline) and stored as JSON."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from common.paths import ROOT
from harness.load.baseline import measure
from harness.load.corpus import load_corpus
from harness.load.scenario import Scenario
from harness.simulate.calibration import InputClass
from harness.simulate.errors import CALIBRATION_INVALID, SimulateError


def measure_classes(scenarios: list[Scenario], backend: str, seconds: float = 2.0) -> dict[str, Any]:
    """One fresh process per file of the scenarios' mixes, resizing it for `seconds`: CPU ms per image; a file that
    never resizes is a permanent failure (its CPU is the time to reject it)."""
    files: dict[str, bytes] = {}
    for sc in scenarios:
        root = Path(sc.corpus_dir) if Path(sc.corpus_dir).is_absolute() else ROOT / sc.corpus_dir
        for _, _, items in load_corpus(root, sc.mix).groups:
            for item in items:
                files.setdefault(item.name, item.body)
    rows = []
    load0 = os.getloadavg()[0]
    for name, body in sorted(files.items()):
        b = measure(backend, [body], processes=1, seconds=seconds)
        rows.append(
            {
                "name": name,
                "cpu_ms": b.cpu_ms_per_image,
                "permanent": b.images == 0 and b.failed > 0,
                "bytes": len(body),
                "wall_ms": b.mean_resize_ms,
                "runs": b.images + b.failed,
            }
        )
    return {
        "backend": backend,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds_per_class": seconds,
        "loadavg_1m": {"start": load0, "end": os.getloadavg()[0]},
        "note": "process CPU (all threads) per image of one fresh single-threaded process "
        "(harness.load.baseline.measure); wall time moves with the neighbours, CPU much less",
        "classes": rows,
    }


def load_classes(path: Path) -> list[InputClass]:
    """Input classes (weight 0: the calibration sets the mix) from a stored measurement."""
    if not path.is_file():
        raise SimulateError(
            CALIBRATION_INVALID,
            f"Expected a per-class CPU file (python -m harness.simulate.calibrate classes) but received {str(path)!r}",
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return [
            InputClass(str(r["name"]), 0.0, float(r["cpu_ms"]), bool(r["permanent"]), int(r.get("bytes", 0)))
            for r in doc["classes"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise SimulateError(
            CALIBRATION_INVALID, f"Expected per-class CPU rows in {path} but received {type(exc).__name__}: {exc}"
        ) from exc
