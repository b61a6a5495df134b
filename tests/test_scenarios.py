"""Scenario loading: the demo scenario, and one error per kind of mistake, each naming file, field and expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.domain.taxonomy import Modality, Urgency
from workbench.store.scenarios import ScenarioError, load_scenario, parse_scenario

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "experiments" / "demo" / "scenario.toml"

VALID = b"""
id = "t1"

[[blocks]]
id = "b1"
modality = "photo"
calls = ["c1"]

[[blocks]]
id = "b2"
modality = "audio"
calls = ["c2"]

[[calls]]
id = "c1"
arrival_s = 0
media.photos = [{ file = "photo.jpg", at_s = 1 }]
[calls.truth]
incident_type = "fire"
urgency = "spoed"
required_items = ["location"]
congruence = { people = false }

[[calls]]
id = "c2"
arrival_s = 5
[calls.truth]
incident_type = "medical"
urgency = "later"
"""


def parse(text: bytes, tmp_path: Path, *, check_media: bool = True):
    (tmp_path / "photo.jpg").write_bytes(b"jpeg")
    return parse_scenario(text, "lab/t1.toml", tmp_path, check_media=check_media)


def error_of(text: bytes, tmp_path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        parse(text, tmp_path)
    return str(info.value)


def test_demo_scenario_loads() -> None:
    scenario = load_scenario(DEMO)
    assert scenario.id == "demo"
    assert [c.id for c in scenario.calls] == ["house-fire", "collision"]
    (block,) = scenario.blocks
    assert (block.id, block.modality, block.call_ids) == ("live-video", Modality.VIDEO, ("house-fire", "collision"))
    fire = scenario.call("house-fire").truth
    assert fire.congruent is False
    assert fire.incongruent_aspects == ("fire_smoke_size",)
    assert fire.urgency is Urgency.SPOED and fire.urgency.priority == 1
    assert scenario.call("collision").truth.congruent is True
    assert scenario.block_of("collision").id == "live-video"
    assert scenario.sha256 == __import__("hashlib").sha256(DEMO.read_bytes()).hexdigest()
    assert scenario.call("house-fire").media.photos[0].file == "builtin:demo_fire_photo"
    with pytest.raises(KeyError, match="no call 'nope'"):
        scenario.call("nope")


def test_valid_file_resolves_media_relative_to_the_file(tmp_path: Path) -> None:
    scenario = parse(VALID, tmp_path)
    assert [b.modality for b in scenario.blocks] == [Modality.PHOTO, Modality.AUDIO]
    assert scenario.call("c1").media.photos[0].file == str(tmp_path / "photo.jpg")
    assert scenario.call("c2").caller_label == "c2"
    assert scenario.call("c2").truth.required_items == ()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            b'urgency = "spoed"',
            b'urgency = "hoog"',
            "lab/t1.toml: calls.0.truth.urgency: Input should be 'spoed', 'nu' or 'later'",
        ),
        (
            b'incident_type = "fire"',
            b'incident_type = "blaze"',
            "lab/t1.toml: calls.0.truth.incident_type: unknown incident type 'blaze'; expected one of fire, "
            "traffic_accident, medical,",
        ),
        (
            b'calls = ["c1"]',
            b'calls = ["c1", "ghost"]',
            "lab/t1.toml: blocks.0.calls.1: block 'b1' lists call 'ghost', which is not defined under [[calls]]; "
            "expected one of c1, c2",
        ),
        (
            b'calls = ["c2"]',
            b'calls = ["c1"]',
            "lab/t1.toml: blocks.1.calls.0: call 'c1' is listed again (already in block 'b1'); "
            "expected each call in exactly one block",
        ),
        (
            b'calls = ["c2"]',
            b'calls = ["c1"]',
            "lab/t1.toml: calls.1.id: call 'c2' is in no block; expected it in the calls of one [[blocks]] entry",
        ),
        (
            b'file = "photo.jpg"',
            b'file = "gone.jpg"',
            "lab/t1.toml: calls.0.media.photos.0.file: media file 'gone.jpg' not found",
        ),
        (
            b'id = "t1"',
            b'id = "t1"\ncolour = "red"',
            "lab/t1.toml: colour: unknown key 'colour'; expected one of id, title, description, blocks, calls",
        ),
        (
            b'arrival_s = 5',
            b'arrival_s = 5\nvolume = 3',
            "lab/t1.toml: calls.1.volume: unknown key 'volume'; expected one of id, arrival_s, caller_label, "
            "utterances, media, truth",
        ),
        (
            b'urgency = "later"',
            b'urgency = "later"\nseverity = 2',
            "lab/t1.toml: calls.1.truth.severity: unknown key 'severity'; expected one of incident_type, urgency, "
            "location, required_items, congruence",
        ),
        (b'id = "t1"', b'id = "t1', "lab/t1.toml: not valid TOML: "),
        (
            b'modality = "audio"',
            b'modality = "smell"',
            "lab/t1.toml: blocks.1.modality: Input should be 'audio', 'photo' or 'video'",
        ),
        (
            b'required_items = ["location"]',
            b'required_items = ["location", "shoe_size"]',
            "lab/t1.toml: calls.0.truth.required_items: unknown item(s) shoe_size; expected from location,",
        ),
        (
            b"congruence = { people = false }",
            b"congruence = { smell = false }",
            "lab/t1.toml: calls.0.truth.congruence: unknown aspect(s) smell; expected from people,",
        ),
        (
            b'arrival_s = 5',
            b'arrival_s = -5',
            "lab/t1.toml: calls.1.arrival_s: Input should be greater than or equal to 0",
        ),
        (b'arrival_s = 5\n', b'', "lab/t1.toml: calls.1.arrival_s: Field required"),
    ],
)
def test_errors_name_file_field_and_expected(tmp_path: Path, old: bytes, new: bytes, expected: str) -> None:
    assert VALID.count(old) >= 1
    message = error_of(VALID.replace(old, new, 1), tmp_path)
    assert expected in message, message


def test_missing_media_is_fine_without_media_check(tmp_path: Path) -> None:
    scenario = parse(VALID.replace(b"photo.jpg", b"gone.jpg"), tmp_path, check_media=False)
    assert scenario.call("c1").media.photos[0].file == str(tmp_path / "gone.jpg")


def test_not_utf8_and_unreadable_file(tmp_path: Path) -> None:
    assert error_of(b"id = '\xff'", tmp_path).startswith("lab/t1.toml: not UTF-8 text")
    with pytest.raises(ScenarioError, match=r"missing\.toml: cannot read scenario file"):
        load_scenario(tmp_path / "missing.toml")


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = VALID.replace(b'urgency = "spoed"', b'urgency = "hoog"').replace(b'incident_type = "medical"',
                                                                            b'incident_type = "flu"')
    lines = error_of(text, tmp_path).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["calls.0.truth.urgency", "calls.1.truth.incident_type"]
