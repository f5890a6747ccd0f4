"""The upload corpus: files matched by weighted glob patterns, drawn deterministically, read once into memory."""

from __future__ import annotations

import mimetypes
import random
from dataclasses import dataclass
from pathlib import Path

from harness.load.errors import CORPUS_EMPTY, CORPUS_NOT_FOUND, LoadError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif", ".heic", ".bmp", ".bin", ".txt"}
CONTENT_TYPES = {".webp": "image/webp", ".avif": "image/avif", ".heic": "image/heic"}


@dataclass(frozen=True)
class CorpusItem:
    """One file that can be uploaded: its name relative to the corpus root, bytes and content type."""

    name: str
    body: bytes
    content_type: str

    @property
    def size(self) -> int:
        return len(self.body)


@dataclass(frozen=True)
class Corpus:
    """Weighted groups of items (one group per mix pattern); `draw(n, seed)` is deterministic."""

    root: Path
    groups: tuple[tuple[str, float, tuple[CorpusItem, ...]], ...]

    def draw(self, n: int, seed: int) -> list[CorpusItem]:
        rng = random.Random(seed)
        weights = [w for _, w, _ in self.groups]
        picks = rng.choices(range(len(self.groups)), weights=weights, k=n)
        return [rng.choice(self.groups[g][2]) for g in picks]

    def describe(self) -> list[dict[str, object]]:
        total = sum(w for _, w, _ in self.groups)
        return [
            {
                "pattern": p,
                "weight": w / total,
                "files": len(items),
                "mean_bytes": sum(i.size for i in items) // len(items),
            }
            for p, w, items in self.groups
        ]


def _content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def load_corpus(root: Path, mix: tuple[tuple[str, float], ...], *, max_file_bytes: int = 64 * 1024 * 1024) -> Corpus:
    """Match each (glob pattern, weight) under root; every pattern must match at least one file."""
    if not root.is_dir():
        raise LoadError(
            CORPUS_NOT_FOUND,
            f"Expected a corpus directory for corpus.dir but received {str(root)!r} (generate it with `make fixtures`)",
        )
    cache: dict[Path, CorpusItem] = {}
    groups = []
    for pattern, weight in mix:
        items = []
        for path in sorted(root.glob(pattern)):
            if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if path.stat().st_size > max_file_bytes:
                continue
            if path not in cache:
                cache[path] = CorpusItem(path.relative_to(root).as_posix(), path.read_bytes(), _content_type(path))
            items.append(cache[path])
        if not items:
            raise LoadError(
                CORPUS_EMPTY,
                f"Expected at least one file for corpus.mix pattern {pattern!r} under {root} but received none",
            )
        groups.append((pattern, weight, tuple(items)))
    return Corpus(root, tuple(groups))
