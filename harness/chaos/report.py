"""Chaos reports: the per-scenario table and the Markdown + JSON files under benchmarks/results/chaos-<timestamp>/."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common.paths import RESULTS_DIR

COLUMNS = (
    "scenario",
    "uploads",
    "faults injected",
    "client retries",
    "redeliveries",
    "outcomes by code",
    "dup writes (identical)",
    "drain s",
    "invariant",
    "fault fired",
    "consequence observed",
    "verdict",
)


def _fmt_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _check_cell(check: Mapping[str, Any] | None) -> str:
    if not check:
        return "-"
    return f"{'yes' if check['met'] else 'NO'} ({check['counter']} {check['observed']}/{check['required']})"


def status(result: Mapping[str, Any]) -> str:
    """PASSED / FAILED (...) of one result; a result written before proofs existed has none and fails."""
    return str(result.get("status") or "FAILED (fault not exercised)")


def row(result: Mapping[str, Any]) -> tuple[str, ...]:
    dup = result["duplicate_writes"]
    identical = "yes" if result["duplicates_identical"] else "NO"
    drain = result.get("drain_s")
    return (
        result["name"],
        f"{result['uploads']}" + (f" ({result['poison']} poison)" if result.get("poison") else ""),
        _fmt_counts(result["faults_injected"]),
        str(result["client_retries"]),
        str(result["redeliveries"]),
        _fmt_counts(result["outcomes"]),
        f"{dup} ({identical})" if dup else "0",
        "-" if drain is None else f"{drain:.1f}",
        "held" if result["invariant_held"] else ("NOT held (limitation)" if result.get("limitation") else "NOT held"),
        _check_cell((result.get("proof") or {}).get("fault")),
        "; ".join(_check_cell(c) for c in (result.get("proof") or {}).get("consequences", [])) or "-",
        status(result),
    )


def table(results: Sequence[Mapping[str, Any]], *, markdown: bool) -> str:
    rows = [COLUMNS] + [row(r) for r in results]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "/") for cell in r) + " |" for r in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows)


def markdown(doc: Mapping[str, Any]) -> str:
    results = doc["scenarios"]
    held = sum(1 for r in results if r["invariant_held"])
    passed = sum(1 for r in results if status(r) == "PASSED")
    limited = [r["name"] for r in results if not r["invariant_held"] and r.get("limitation")]
    out = [
        f"# Chaos run {doc['started']}",
        "",
        f"Endpoint {doc['endpoint']}, stack `{doc['stack']}`, function `{doc['function']}`; "
        f"{passed}/{len(results)} scenarios PASSED (fault fired, consequence observed, invariant held); "
        f"{held}/{len(results)} held the invariant (every upload complete or dead-lettered with a reason, "
        f"none lost, duplicate writes byte-identical)"
        + (f"; not held because of a limitation (a failure too): {', '.join(limited)}" if limited else "")
        + f". Total {doc['wall_s']:.0f} s.",
        "",
        "Faults are injected outside the handler: an HTTP fault proxy on 127.0.0.1 sits in the function's S3 path "
        "(AWS_ENDPOINT_URL_S3), SIGKILL of the runtime process, queue/function levers, emulator restart. "
        "'client retries' are botocore retries inside one S3 call; 'redeliveries' are handler attempts beyond the "
        "first per upload (distinct GetObject calls on the source, seen by the proxy).",
        "",
        table(results, markdown=True),
        "",
    ]
    for r in results:
        out.append(f"## {r['name']}: {r['title']}")
        out.append("")
        out.append(f"- run id `{r['run_id']}`, wall {r['wall_s']:.1f} s, settled: {r['settled']}, **{status(r)}**")
        proof = r.get("proof") or {}
        for check in [proof.get("fault")] + list(proof.get("consequences", [])):
            if check:
                out.append(
                    f"- {'fault' if check is proof.get('fault') else 'consequence'}: {check['what']}: "
                    f"{check['counter']} = {check['observed']} (needs >= {check['required']}) "
                    f"{'ok' if check['met'] else 'MISSING'}"
                )
        if r.get("evidence"):
            out.append(f"- evidence: {_fmt_counts(r['evidence'])}")
        if r.get("limitation"):
            out.append(f"- **invariant cannot hold: {r['limitation']}**")
        for action in r["actions"]:
            out.append(f"- action: {action}")
        v = r["verdict"]
        if v["lost_count"]:
            out.append(f"- lost: {v['lost_count']} (e.g. {', '.join(v['lost'][:3])})")
        if v["no_reason"]:
            out.append(f"- dead-lettered without a reason: {', '.join(v['no_reason'][:3])}")
        if v["nonidentical"]:
            out.append(f"- duplicate writes that differ: {', '.join(v['nonidentical'][:3])}")
        if v["unexpected_count"]:
            out.append(
                f"- {v['unexpected_count']} upload(s) ended differently than the scenario expects "
                f"(e.g. {', '.join(v['unexpected'][:3])})"
            )
        if v["conflicts"]:
            out.append(f"- complete and also in the DLQ: {len(v['conflicts'])}")
        if r["poison"]:
            out.append(f"- poison redeliveries: {r['poison_redeliveries']} (permanent errors must not be retried)")
        for note in list(r["notes"]) + list(v["notes"]):
            out.append(f"- note: {note}")
        out.append("")
    return "\n".join(out)


def write(
    results: Sequence[Mapping[str, Any]],
    *,
    endpoint: str,
    stack: str,
    function: str,
    wall_s: float,
    out_root: Path = RESULTS_DIR,
    profile: str = "default",
) -> tuple[Path, dict[str, Any]]:
    """Write report.json and report.md into a new benchmarks/results/chaos-<timestamp>/ folder."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    folder = out_root / f"chaos-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = out_root / f"chaos-{stamp}-{n}"
    folder.mkdir(parents=True)
    doc: dict[str, Any] = {
        "started": stamp,
        "endpoint": endpoint,
        "stack": stack,
        "profile": profile,
        "function": function,
        "wall_s": round(wall_s, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "all_held": all(r["invariant_held"] for r in results),
        "all_held_or_explained": all(r["invariant_held"] or r.get("limitation") for r in results),
        "all_passed": bool(results) and all(status(r) == "PASSED" for r in results),
        "scenarios": list(results),
    }
    (folder / "report.json").write_text(json.dumps(doc, indent=2, sort_keys=False))
    (folder / "report.md").write_text(markdown(doc))
    return folder, doc
