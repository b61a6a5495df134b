"""workbench.screening.disagreement: possible (never ground-truth) speech/image disagreement per aspect."""

from __future__ import annotations

import pytest

from workbench.domain.taxonomy import DISAGREEMENT_ASPECTS
from workbench.screening.disagreement import possible_disagreements
from workbench.screening.image import FrameFacts, summarise, wilson
from workbench.screening.transcript import extract_facts


def clip(n: int, fire_frames: int, share: float = 0.05, people: int | None = 0, brightness: float = 120.0):  # type: ignore[no-untyped-def]
    return summarise([FrameFacts(share, share if i < fire_frames else 0.0, 0.0, 0.0, people, brightness, 500.0)
                      for i in range(n)])


def test_little_smoke_said_big_fire_seen_is_a_possible_disagreement() -> None:
    image = clip(20, 20)  # large, every frame: certainty = Wilson low of 20/20
    result = possible_disagreements(extract_facts("just a little smoke"), image)
    assert list(result) == list(DISAGREEMENT_ASPECTS)
    fire = result["fire_smoke_size"]
    assert fire.possible_score == pytest.approx(0.5 * wilson(20, 20).low)  # |small 1 - large 2| / 2 x certainty
    assert fire.evidence[0] == "caller: small (line 0: 'a little'; line 0: 'smoke')"
    assert result["vehicle"].possible_score is None and result["location"].possible_score is None


def test_fire_said_nothing_seen_and_agreement() -> None:
    nothing = clip(20, 0)
    said = possible_disagreements(extract_facts("Er is een grote brand"), nothing)["fire_smoke_size"]
    assert said.possible_score == pytest.approx(1.0 * (1 - wilson(0, 20).high))  # large vs none, sure of none
    agree = possible_disagreements(extract_facts("Er is een grote brand"), clip(20, 20))["fire_smoke_size"]
    assert agree.possible_score == 0.0
    quiet = possible_disagreements(extract_facts("hallo"), nothing)["fire_smoke_size"]
    assert quiet.possible_score == 0.0


def test_one_still_weighs_little() -> None:
    still = summarise([FrameFacts(0.05, None, 0.0, None, 0, 120.0, 500.0)])
    score = possible_disagreements(extract_facts("a little smoke"), still)["fire_smoke_size"].possible_score
    assert score == pytest.approx(0.5 * wilson(1, 1).low) and score < 0.11


def test_people_count_and_inside() -> None:
    two = clip(6, 0, people=2)
    assert possible_disagreements(extract_facts("twee mensen"), two)["people"].possible_score == 0.0
    assert possible_disagreements(extract_facts("five people"), two)["people"].possible_score == pytest.approx(0.6)
    inside = possible_disagreements(extract_facts("Er zijn vijf mensen binnen"), two)["people"]
    assert inside.possible_score == pytest.approx(0.3) and "inside" in inside.evidence[-1]
    assert possible_disagreements(extract_facts("hallo"), two)["people"].possible_score is None


def test_darkness_said_but_bright_image() -> None:
    bright = clip(10, 0)
    other = possible_disagreements(extract_facts("Het is hier aardedonker"), bright)["other"]
    assert other.possible_score == pytest.approx(1 - wilson(0, 10).high)
    dark = clip(10, 0, brightness=20.0)
    assert possible_disagreements(extract_facts("it is dark"), dark)["other"].possible_score == 0.0
    assert possible_disagreements(extract_facts("hallo"), bright)["other"].possible_score is None


def test_without_images_nothing_is_comparable() -> None:
    result = possible_disagreements(extract_facts("Er is brand"), None)
    assert all(d.possible_score is None for d in result.values())
