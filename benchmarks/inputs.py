"""Benchmark inputs: one file per role from the generated corpus and a few from ../shared/corpora, by header facts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import BenchError, BenchErrorCode
from .imaging import InputFacts, derive_avif, probe

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "fixtures" / "generated"
SHARED_CORPORA = ROOT.parent / "shared" / "corpora"
# inputs the benchmark makes itself when the corpus has none (git-ignored, rebuilt when the source changes):
# an AVIF from the WebP photo (Pillow, libvips and sharp all read AVIF; none of them HEVC-coded HEIC here)
DERIVED = ROOT / "benchmarks" / "results" / ".inputs"
AVIF_SOURCE_ROLE = "webp"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif", ".heic"}


@dataclass(frozen=True, slots=True)
class BenchInput:
    """One input of the benchmark: a stable id (used in tables and JSON), where it comes from, its facts."""

    id: str
    label: str
    source: str  # "generated" | "corpora" | "derived"
    facts: InputFacts

    @property
    def path(self) -> Path:
        return Path(self.facts.path)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["megapixels"] = round(self.facts.megapixels, 2)
        return d


Rule = Callable[[InputFacts], bool]


def _near(mp: float, target: float) -> bool:
    return abs(mp - target) <= 0.2 * target


# Roles of the standard corpus, in report order: id, label, rule on the header facts.
ROLES: tuple[tuple[str, str, Rule], ...] = (
    (
        "jpeg-12mp",
        "12 MP JPEG",
        lambda f: (
            f.format == "JPEG"
            and _near(f.megapixels, 12)
            and not f.progressive
            and f.orientation in (0, 1)
            and f.mode != "CMYK"
        ),
    ),
    (
        "jpeg-24mp",
        "24 MP JPEG",
        lambda f: f.format == "JPEG" and _near(f.megapixels, 24) and not f.progressive and f.orientation in (0, 1),
    ),
    (
        "jpeg-12mp-progressive",
        "12 MP progressive JPEG",
        lambda f: f.format == "JPEG" and f.progressive and f.megapixels >= 6,
    ),
    (
        "jpeg-orientation6",
        "JPEG, EXIF orientation 6",
        lambda f: f.format == "JPEG" and f.orientation == 6 and f.megapixels >= 6,
    ),
    ("jpeg-cmyk", "12 MP CMYK JPEG, ICC", lambda f: f.format == "JPEG" and f.mode == "CMYK" and f.megapixels >= 6),
    ("png-rgba", "RGBA PNG -> WebP", lambda f: f.format == "PNG" and f.has_alpha and f.megapixels >= 4),
    ("png-palette", "palette PNG, tRNS", lambda f: f.format == "PNG" and f.mode == "P"),
    ("webp", "WebP", lambda f: f.format == "WEBP" and f.megapixels >= 1),
    ("gif-animated", "animated GIF (first frame)", lambda f: f.format == "GIF"),
    ("avif", "AVIF", lambda f: f.format == "AVIF"),
    (
        "jpeg-2mp-icc",
        "1600x1200 JPEG, Display P3 ICC",
        lambda f: f.format == "JPEG" and 1.0 <= f.megapixels < 4 and f.orientation in (0, 1) and not f.progressive,
    ),
)

# A few real files from ../shared/corpora (relative paths), when that folder exists.
CORPORA_PICKS: tuple[tuple[str, str, str], ...] = (
    ("corpora-exif6", "corpora: exif-orientation Landscape_6 (1800x1200)", "exif-orientation/Landscape_6.jpg"),
    ("corpora-portrait5", "corpora: exif-orientation Portrait_5", "exif-orientation/Portrait_5.jpg"),
    ("corpora-pngsuite-rgba", "corpora: PngSuite basn6a08 (32x32 RGBA)", "pngsuite/png/basn6a08.png"),
)

QUICK_IDS = ("jpeg-12mp", "jpeg-24mp", "png-rgba")


def _candidates(folder: Path) -> Iterable[Path]:
    """Image files of the folder; only those its manifest.json calls valid when there is one (no bad inputs)."""
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            valid = {
                f["name"] for f in json.loads(manifest.read_text()).get("fixtures", []) if f.get("kind") == "valid"
            }
        except (ValueError, AttributeError, TypeError, KeyError):
            valid = set()
        if valid:
            files = [p for p in files if p.name in valid]
    return files


def pick_roles(facts: Iterable[InputFacts]) -> list[BenchInput]:
    """Assign at most one file per role (first match in sorted path order; a file fills one role only)."""
    pool = list(facts)
    used: set[str] = set()
    picked: list[BenchInput] = []
    for role_id, label, rule in ROLES:
        for f in pool:
            if f.path not in used and rule(f):
                picked.append(BenchInput(role_id, label, "generated", f))
                used.add(f.path)
                break
    return picked


def discover(
    generated: Path = GENERATED,
    corpora: Path | None = SHARED_CORPORA,
    *,
    quick: bool = False,
    only: Iterable[str] | None = None,
    derived: Path | None = DERIVED,
) -> tuple[list[BenchInput], list[str]]:
    """(inputs, notes). Raises BenchError(NO_INPUTS) when the generated corpus gave nothing usable."""
    notes: list[str] = []
    facts = []
    for p in _candidates(generated):
        try:
            facts.append(probe(p))
        except BenchError as exc:
            notes.append(f"skipped {p.name}: {exc.message}")
    inputs = pick_roles(facts)
    if derived is not None:
        inputs = _add_derived_avif(inputs, derived, notes)
    missing = [r[0] for r in ROLES if r[0] not in {i.id for i in inputs}]
    if missing:
        notes.append(f"no generated file matched role(s): {', '.join(missing)}")
    if not inputs:
        raise BenchError(
            BenchErrorCode.NO_INPUTS,
            f"Expected the generated corpus in {generated} (run `make fixtures`) but found no usable image there",
        )
    if corpora is not None and corpora.is_dir():
        for pick_id, label, rel in CORPORA_PICKS:
            p = corpora / rel
            if p.is_file():
                inputs.append(BenchInput(pick_id, label, "corpora", probe(p)))
            else:
                notes.append(f"corpora file {rel} not found: skipped")
    else:
        notes.append(f"../shared/corpora not present ({corpora}): real-world inputs skipped")
    if quick:
        inputs = [i for i in inputs if i.id in QUICK_IDS]
    if only:
        wanted = set(only)
        inputs = [i for i in inputs if i.id in wanted]
    if not inputs:
        raise BenchError(BenchErrorCode.NO_INPUTS, "Expected at least one input after filtering but none is left")
    return inputs, notes


def _add_derived_avif(inputs: list[BenchInput], derived: Path, notes: list[str]) -> list[BenchInput]:
    """Fill the avif role from the WebP photo when the corpus has no AVIF (the role keeps its report position)."""
    have = {i.id for i in inputs}
    source = next((i for i in inputs if i.id == AVIF_SOURCE_ROLE), None)
    if "avif" in have or source is None:
        return inputs
    try:
        path = derive_avif(source.path, derived / "avif-photo.avif")
        facts = probe(path)
    except (OSError, ValueError, KeyError, BenchError) as exc:
        notes.append(f"no AVIF input: could not derive one from {source.path.name} ({exc})")
        return inputs
    label = next(r[1] for r in ROLES if r[0] == "avif")
    order = [r[0] for r in ROLES]
    out = [*inputs, BenchInput("avif", f"{label} (made from {source.path.name})", "derived", facts)]
    return sorted(out, key=lambda i: order.index(i.id) if i.id in order else len(order))
