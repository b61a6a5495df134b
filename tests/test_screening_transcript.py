"""workbench.screening.transcript: facts from Dutch and English caller lines, with literal expected values."""

from __future__ import annotations

import pytest

from workbench.runner.demo_media import DEMO_VOICE_TEXTS
from workbench.screening.transcript import Evidence, extract_facts


def test_dutch_number_word_before_people_noun() -> None:
    facts = extract_facts("Er zijn drie mensen binnen")
    assert facts.people is not None and facts.people.value == 3
    assert facts.people.evidence == (Evidence(0, "drie mensen"),)
    assert facts.inside is not None and facts.inside.evidence == (Evidence(0, "binnen"),)
    assert facts.fire is None and facts.injuries is None


def test_little_smoke_is_fire_mentioned_and_small() -> None:
    facts = extract_facts("just a little smoke")
    assert facts.fire is not None and facts.fire.value is True
    assert facts.fire_size is not None and facts.fire_size.value == "small"
    assert Evidence(0, "a little") in facts.fire_size.evidence


@pytest.mark.parametrize(
    ("line", "size"),
    [("Er is een grote brand", "large"), ("het is maar een klein vuurtje, een beetje rook", "small"),
     ("Enorme vlammen!", "large"), ("there's a big fire", "large"), ("Het rookt een beetje", "small"),
     ("there is smoke", None)],
)
def test_fire_size_words(line: str, size: str | None) -> None:
    facts = extract_facts(line)
    assert facts.fire is not None
    assert (facts.fire_size.value if facts.fire_size else None) == size


def test_size_word_without_fire_on_the_line_does_not_count() -> None:
    facts = extract_facts(["There is smoke.", "It's a big house."])
    assert facts.fire is not None and facts.fire_size is None


def test_english_digits_and_words_largest_count_wins() -> None:
    facts = extract_facts(["There are 3 people inside", "no wait, five people, two young children"])
    assert facts.people is not None and facts.people.value == 5
    assert facts.people.evidence == (Evidence(1, "five people"),)


def test_dutch_article_een_is_not_a_count_but_een_persoon_is() -> None:
    assert extract_facts("Er is een brand in een groot gebouw").people is None
    assert extract_facts("Er ligt een man op straat").people.value == 1
    assert extract_facts("één persoon").people.value == 1


def test_vehicles_and_negated_injuries_of_the_demo_collision() -> None:
    facts = extract_facts(DEMO_VOICE_TEXTS["demo_collision_voice"].split(". "))
    assert facts.vehicles is not None and facts.vehicles.value == 2
    assert Evidence(0, "two cars") in facts.vehicles.evidence
    assert facts.injuries is not None and facts.injuries.value is False
    assert facts.injuries.evidence == (Evidence(1, "nobody hurt"),)
    assert facts.location is not None and facts.location.value == "Oostweg"


def test_demo_fire_caller_little_smoke_location() -> None:
    facts = extract_facts(DEMO_VOICE_TEXTS["demo_fire_voice"].split(". "))
    assert facts.fire is not None and facts.fire_size.value == "small"
    assert facts.location is not None and facts.location.value == "Kerkstraat 12"
    assert facts.inside is not None  # "I don't know if anyone is inside": a reason to ask


def test_dutch_vehicles_injury_and_darkness() -> None:
    facts = extract_facts(["Twee auto's op elkaar gebotst op de Stationsweg 4", "Het is aardedonker",
                           "Er ligt een man bewusteloos"])
    assert facts.vehicles.value == 2
    assert facts.location.value == "Stationsweg 4"
    assert facts.darkness is not None and facts.darkness.evidence == (Evidence(1, "aardedonker"),)
    assert facts.injuries.value is True and facts.injuries.evidence == (Evidence(2, "bewusteloos"),)
    assert facts.people.value == 1


def test_dutch_negated_injury_and_english_injury() -> None:
    assert extract_facts("Niemand is gewond").injuries.value is False
    assert extract_facts("The driver is bleeding").injuries.value is True
    assert extract_facts("een auto, geen gewonden").injuries.value is False


def test_vehicle_without_count() -> None:
    facts = extract_facts("a car is on fire")
    assert facts.vehicles.value is None and facts.fire is not None


def test_empty_and_wrong_types() -> None:
    facts = extract_facts([])
    assert facts.fire is None and facts.people is None and facts.lines == ()
    with pytest.raises(TypeError):
        extract_facts(["ok", 3])  # type: ignore[list-item]
