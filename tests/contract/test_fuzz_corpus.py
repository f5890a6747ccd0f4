"""The fuzz corpus through both backends: no crash, no hang, no unclassified or retryable outcome, bounded RSS."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from fixtures.fuzz import DEFAULT_PER_FORMAT, DEFAULT_SEED, FORMATS, generate

from .conftest import BACKENDS
from .fuzzing import INJECT_ENV, run_corpus

# FUZZ_SEED / FUZZ_PER_FORMAT explore another corpus (e.g. FUZZ_PER_FORMAT=1000: 6000 mutants per backend)
SEED = int(os.environ.get("FUZZ_SEED", DEFAULT_SEED))
PER_FORMAT = int(os.environ.get("FUZZ_PER_FORMAT", DEFAULT_PER_FORMAT))
DEADLINE_S = 15.0  # per input; measured < 1 s each (a few ms typical) on 2 shared cores
# the worker's peak (VmHWM), interpreter + both libraries + the corpus included: measured ~100 MB (Pillow) and
# ~230 MB (libvips); a decode that allocated its declared size (60000 x 60000) would need gigabytes
RSS_LIMIT_MB = 768.0


def test_the_generator_is_deterministic_and_covers_every_format_and_mutation_kind() -> None:
    a, b = generate(SEED, 20), generate(SEED, 20)
    assert [(m.name, m.data) for m in a] == [(m.name, m.data) for m in b]
    assert Counter(m.format for m in a) == {fmt: 20 for fmt in FORMATS}
    assert len({m.data for m in a}) == len(a)  # distinct mutants
    full = generate(SEED, PER_FORMAT)
    kinds = {m.mutation.rstrip("+") for m in full}
    for kind in (
        "bitflip",
        "truncate",
        "jpeg-marker",
        "jpeg-dimensions",
        "png-length",
        "png-ihdr",
        "gif-lzw",
        "gif-screen",
        "webp-dimensions",
        "tiff-tags",
        "avif-ispe",
    ):
        assert kind in kinds, f"no {kind} mutant in the corpus"
    assert sum(m.mutation.endswith("-huge") for m in full) == len(FORMATS)  # 60000 x 60000 in each format's header


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_mutant_ends_ok_or_with_a_permanent_code(backend: str, record_property: pytest.RecordProperty) -> None:
    # GIVEN 6 x PER_FORMAT mutants (1200 by default) of valid JPEG, PNG, GIF, WebP, TIFF and AVIF images
    # WHEN each is resized in a watched worker process (a crash or hang is charged to its input, then it goes on)
    report = run_corpus(backend, seed=SEED, per_format=PER_FORMAT, deadline_s=DEADLINE_S, rss_limit_mb=RSS_LIMIT_MB)
    record_property("fuzz", report.summary())
    print(report.summary())  # noqa: T201 - the figures, shown with -s / in the junit properties

    # THEN no crash, hang, RSS overrun or broken output, and every input is accounted for
    assert not report.failures, "\n".join(report.failures[:20])
    assert len(report.outcomes) == len(FORMATS) * PER_FORMAT >= 1000
    # and each ends as thumbnails or a permanent code: nothing unclassified, nothing retryable (it would repeat)
    bad = {
        name: code
        for name, code in report.outcomes.items()
        if code.startswith(("UNCLASSIFIED", "UNEXPECTED")) or name in report.retryable
    }
    assert not bad, f"{len(bad)} mutants not OK or permanent: {dict(list(bad.items())[:15])}"
    assert report.peak_rss_mb < RSS_LIMIT_MB
    # the corpus is hostile: most mutants are rejected, some still decode (damage in ignored bytes)
    codes = Counter(report.outcomes.values())
    assert codes["CORRUPT_IMAGE"] > len(report.outcomes) // 3 and codes["OK"] > 0 and codes["TOO_MANY_PIXELS"] > 0


# ---- the runner catches what it must catch (else the test above could not fail) -----------------------------------
def test_the_runner_charges_a_crash_a_hang_and_an_rss_overrun_to_their_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = generate(SEED, 2)
    crash, hang, hog = corpus[1].name, corpus[4].name, corpus[9].name
    monkeypatch.setenv(INJECT_ENV, f"crash:{crash},hang:{hang},rss:{hog}")
    # 10 s: on a busy 2-core machine the RSS hog once took over 3 s to fill its pages and was charged as a hang
    report = run_corpus("pillow", seed=SEED, per_format=2, deadline_s=10.0, rss_limit_mb=300.0)
    assert len(report.failures) == 3, report.failures
    assert report.failures[0].startswith(f"worker died (signal SIGSEGV): {crash}")
    assert report.failures[1].startswith(f"no result within 10 s (hang): {hang}")
    assert report.failures[2].startswith("RSS ") and f"over the 300 MB limit: {hog}" in report.failures[2]
    # every other input was still processed, by a fresh worker after each failure
    assert set(report.outcomes) == {m.name for m in corpus} - {crash, hang, hog} and report.workers == 4
