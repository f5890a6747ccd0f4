"""Scenario files and rate profiles: validation codes, arrival schedules, the shipped scenarios parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.load.corpus import load_corpus
from harness.load.errors import CORPUS_EMPTY, CORPUS_NOT_FOUND, SCENARIO_INVALID, SCENARIO_NOT_FOUND, LoadError
from harness.load.scenario import SCENARIOS_DIR, Profile, arrival_offsets, load_scenario, parse_scenario


def test_constant_profile_is_uniform_and_bounded_by_duration_and_count() -> None:
    offsets = arrival_offsets(Profile(rate=4.0), duration_s=2.0, limit=1000)
    assert offsets == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
    assert len(arrival_offsets(Profile(rate=4.0), duration_s=2.0, limit=3)) == 3


def test_spike_profile_multiplies_the_rate_inside_the_window_only() -> None:
    p = Profile(kind="spike", rate=2.0, spike_at_s=5.0, spike_duration_s=2.0, spike_factor=10.0)
    offsets = arrival_offsets(p, duration_s=10.0, limit=10_000)
    inside = [t for t in offsets if 5.0 <= t < 7.0]
    assert len(offsets) == 2 * 5 + 20 * 2 + 2 * 3
    assert len(inside) == 40
    assert p.rate_at(6.0, 10.0) == 20.0 and p.rate_at(8.0, 10.0) == 2.0


def test_step_profile_integrates_the_rate_across_steps() -> None:
    p = Profile(kind="step", rate=1.0, steps=((0.0, 2.0), (2.0, 4.0)))
    offsets = arrival_offsets(p, duration_s=3.0, limit=100)
    assert len(offsets) == 2 * 2 + 4 * 1
    assert offsets == sorted(offsets)


def test_poisson_arrivals_are_seeded_and_have_the_right_mean_rate() -> None:
    a = arrival_offsets(Profile(rate=50.0), 20.0, 10_000, "poisson", seed=7)
    b = arrival_offsets(Profile(rate=50.0), 20.0, 10_000, "poisson", seed=7)
    assert a == b
    assert 850 < len(a) < 1150


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"load": {"profile": "ramp"}}, "load.profile"),
        ({"load": {"rate": 0}}, "load.rate"),
        ({"load": {"rate": "fast"}}, "Expected a number for load.rate but received 'fast'"),
        ({"load": {"duration_s": 100000}}, "load.duration_s"),
        ({"load": {"count": 20, "max_uploads": 10}}, "load.count"),
        ({"load": {"profile": "step"}}, "load.steps"),
        ({"corpus": {"mix": {"*.jpg": -1}}}, "corpus.mix"),
        ({"pipeline": {"backends": ["imagemagick"]}}, "pipeline.backends"),
        ({"pipeline": {"max_concurrency": 1}}, "pipeline.max_concurrency"),
        ({"extra": {}}, "top-level tables"),
    ],
)
def test_bad_scenarios_get_a_clear_error_with_a_stable_code(doc: dict, fragment: str) -> None:
    with pytest.raises(LoadError) as info:
        parse_scenario(doc, "bad")
    assert info.value.code == SCENARIO_INVALID
    assert fragment in str(info.value)
    assert "Expected" in str(info.value)


def test_unknown_scenario_name_lists_the_available_ones() -> None:
    with pytest.raises(LoadError) as info:
        load_scenario("no-such-scenario")
    assert info.value.code == SCENARIO_NOT_FOUND
    assert "steady" in str(info.value)


@pytest.mark.parametrize("path", sorted(SCENARIOS_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_scenarios_parse_and_stay_bounded(path: Path) -> None:
    sc = load_scenario(path)
    offsets = sc.arrival_offsets()
    assert 0 < len(offsets) <= sc.max_uploads
    assert offsets[-1] <= sc.duration_s


def test_shipped_scenarios_cover_the_issue() -> None:
    names = {p.stem for p in SCENARIOS_DIR.glob("*.toml")}
    assert {"steady", "spike", "soak", "smoke"} <= names
    assert len(load_scenario("soak").arrival_offsets()) == 10_000
    spike = load_scenario("spike")
    assert spike.profile.kind == "spike" and spike.profile.spike_factor == 10


def test_overrides_are_validated_again() -> None:
    sc = load_scenario("smoke").with_overrides(rate=3.0, count=5)
    assert sc.profile.rate == 3.0 and len(sc.arrival_offsets()) == 5
    with pytest.raises(LoadError):
        load_scenario("smoke").with_overrides(duration_s=-1.0)


def test_corpus_mix_draws_deterministically_from_matching_files(tmp_path: Path) -> None:
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "a.jpg").write_bytes(b"\xff\xd8a")
    (tmp_path / "small" / "b.jpg").write_bytes(b"\xff\xd8b")
    (tmp_path / "big.png").write_bytes(b"\x89PNG" + b"0" * 100)
    corpus = load_corpus(tmp_path, (("small/*.jpg", 3.0), ("*.png", 1.0)))
    draw = corpus.draw(400, seed=3)
    assert draw == corpus.draw(400, seed=3)
    pngs = sum(1 for i in draw if i.name == "big.png")
    assert 60 < pngs < 140  # weight 1/4 of 400
    assert {i.content_type for i in draw} == {"image/jpeg", "image/png"}


def test_corpus_errors_have_codes(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as missing:
        load_corpus(tmp_path / "nope", (("*", 1.0),))
    assert missing.value.code == CORPUS_NOT_FOUND and "make fixtures" in str(missing.value)
    with pytest.raises(LoadError) as empty:
        load_corpus(tmp_path, (("*.jpg", 1.0),))
    assert empty.value.code == CORPUS_EMPTY
