"""The seed replica and our pipeline under the same chaos scenarios, side by side (`make chaos-compare`).

`python -m harness.chaos.compare SEED_ROOT OURS_ROOT [--out DIR]` reads the newest chaos report under each root
(as `python -m harness.chaos ... --out ROOT` writes them) and writes DIR/compare.md: one row per scenario with, for
each stack, its verdict, what became of the uploads and every cause of loss the accounting named.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common.errors import CodedError
from harness.chaos import report
from harness.chaos.errors import ChaosError

COLUMNS = ("scenario", "uploads", "stack", "verdict", "fault fired", "outcomes", "lost", "causes")


def latest_report(root: Path) -> dict[str, Any]:
    """The newest `chaos-*/report.json` under `root`."""
    found = sorted(root.glob("chaos-*/report.json"))
    if not found:
        raise ChaosError("NO_CHAOS_REPORT", f"Expected a chaos-*/report.json under {root} but received none")
    doc: dict[str, Any] = json.loads(found[-1].read_text())
    doc["_path"] = str(found[-1])
    return doc


def _causes(result: Mapping[str, Any]) -> str:
    causes = {k: v for k, v in (result.get("verdict") or {}).get("causes", {}).items() if v}
    return ", ".join(f"{k} {v}" for k, v in sorted(causes.items())) or "-"


def _fault(result: Mapping[str, Any]) -> str:
    check = (result.get("proof") or {}).get("fault")
    return "-" if not check else ("yes" if check["met"] else "NO")


def rows(seed: Sequence[Mapping[str, Any]], ours: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Two rows per scenario present in either run (seed first), in the order the runs ran them."""
    by_name = {"seed replica": {r["name"]: r for r in seed}, "ours": {r["name"]: r for r in ours}}
    names = list(dict.fromkeys([r["name"] for r in seed] + [r["name"] for r in ours]))
    out: list[tuple[str, ...]] = []
    for name in names:
        for label, results in by_name.items():
            r = results.get(name)
            if r is None:
                out.append((name, "-", label, "not run", "-", "-", "-", "-"))
                continue
            out.append(
                (
                    name,
                    str(r["uploads"]),
                    label,
                    report.status(r),
                    _fault(r),
                    ", ".join(f"{k} {v}" for k, v in r["outcomes"].items()) or "-",
                    str((r.get("verdict") or {}).get("lost_count", 0)),
                    _causes(r),
                )
            )
    return out


def markdown(seed_doc: Mapping[str, Any], ours_doc: Mapping[str, Any]) -> str:
    table = rows(seed_doc["scenarios"], ours_doc["scenarios"])
    lost = {
        label: sum((r.get("verdict") or {}).get("lost_count", 0) for r in doc["scenarios"])
        for label, doc in (("seed replica", seed_doc), ("ours", ours_doc))
    }
    lines = [
        "# Chaos: the seed replica beside our pipeline",
        "",
        f"The same scenarios, faults and uploads on the seed replica (stack `{seed_doc['stack']}`, "
        f"{seed_doc['wall_s']:.0f} s) and on ours (stack `{ours_doc['stack']}`, {ours_doc['wall_s']:.0f} s) at "
        f"{ours_doc['endpoint']}. Lost in all: seed replica {lost['seed replica']}, ours {lost['ours']}. A FAILED "
        "verdict on the seed is what its design loses under that fault; 'fault fired' says the fault was injected "
        "on that stack (a verdict without it proves nothing).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
        *("| " + " | ".join(cell.replace("|", "/") for cell in r) + " |" for r in table),
        "",
        f"Reports: {seed_doc.get('_path', '-')}, {ours_doc.get('_path', '-')}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.chaos.compare", description=__doc__)
    parser.add_argument("seed", type=Path, help="results root of the seed replica's chaos run")
    parser.add_argument("ours", type=Path, help="results root of our pipeline's chaos run")
    parser.add_argument("--out", type=Path, required=True, help="folder for compare.md")
    args = parser.parse_args(argv)
    try:
        text = markdown(latest_report(args.seed), latest_report(args.ours))
    except CodedError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.md").write_text(text)
    print(text)
    print(f"written: {args.out / 'compare.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
