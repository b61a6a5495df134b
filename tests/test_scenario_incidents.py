"""Several callers for one incident (issue 11): the [[incidents]] table, the calls' truth.incident references,
caller positions, designed account disagreements, per-block advice, and one clear error per kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.domain.taxonomy import Urgency
from workbench.store.scenarios import ScenarioError, load_scenario, parse_scenario

REPO = Path(__file__).resolve().parent.parent
MULTI = REPO / "experiments" / "multi-caller" / "scenario.toml"

BASE = """
id = "inc"

[[blocks]]
id = "b"
modality = "photo"
advice = true
calls = ["a", "b"]

[[incidents]]
id = "fire-1"
incident_type = "fire"
urgency = "spoed"
location = "Kerkstraat 12, Delft"
lat = 52.0119
lon = 4.3586

[[calls]]
id = "a"
arrival_s = 0
[calls.truth]
incident = "fire-1"
caller_lat = 52.0121
caller_lon = 4.3590
account_disagrees = ["fire_smoke_size"]

[[calls]]
id = "b"
arrival_s = 5
[calls.truth]
{b_truth}
"""


def _parse(b_truth: str = 'incident = "fire-1"', base: str = BASE) -> object:
    return parse_scenario(base.replace("{b_truth}", b_truth).encode(), "s.toml", check_media=False)


def test_calls_of_one_incident_take_its_ground_truth_and_keep_their_own_viewpoint() -> None:
    s = _parse()
    a, b = s.call("a"), s.call("b")
    assert s.block("b").advice is True
    assert [i.id for i in s.incidents] == ["fire-1"]
    for call in (a, b):
        assert call.truth.incident_id == "fire-1"
        assert call.truth.incident_type == "fire" and call.truth.urgency is Urgency.SPOED
        assert call.truth.location == "Kerkstraat 12, Delft"
        assert (call.truth.lat, call.truth.lon) == (52.0119, 4.3586)
    assert a.truth.caller_position == (52.0121, 4.3590)
    assert b.truth.caller_position == (52.0119, 4.3586)  # no own position: the incident's
    assert a.truth.account_disagrees == ("fire_smoke_size",) and b.truth.account_disagrees == ()
    assert s.incident_of("a") == s.incident_of("b") == "fire-1"


def test_a_call_without_incident_is_its_own_incident() -> None:
    s = _parse('incident_type = "medical"\nurgency = "nu"')
    assert s.incident_of("b") == "call:b"
    assert s.call("b").truth.incident_type == "medical"


@pytest.mark.parametrize(
    ("b_truth", "expected"),
    [
        ('incident = "fire-2"', "s.toml: calls.1.truth.incident: call 'b' names incident 'fire-2', which is not "
                                "defined under [[incidents]]; expected one of: fire-1"),
        ('incident = "fire-1"\nurgency = "later"', "s.toml: calls.1.truth.urgency: 'later' contradicts incident "
                                                   "'fire-1' ('spoed')"),
        ('incident = "fire-1"\nincident_type = "medical"', "calls.1.truth.incident_type: 'medical' contradicts"),
        ('urgency = "nu"', "s.toml: calls.1.truth.incident_type: missing; give it, or name an incident"),
        ('incident = "fire-1"\naccount_disagrees = ["smell"]', "unknown aspect(s) smell; expected from people"),
        ('incident = "fire-1"\ncaller_lat = 52.0', "caller_lat and caller_lon go together"),
    ],
)
def test_bad_incident_references_are_named(b_truth: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        _parse(b_truth)
    assert expected in str(info.value)


def test_an_incident_nobody_reports_and_a_duplicate_id_are_errors() -> None:
    text = BASE.replace("{b_truth}", 'incident = "fire-1"') + (
        '\n[[incidents]]\nid = "fire-1"\nincident_type = "fire"\nurgency = "nu"\n'
        '\n[[incidents]]\nid = "ghost"\nincident_type = "theft"\nurgency = "later"\n'
    )
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text.encode(), "s.toml", check_media=False)
    msg = str(info.value)
    assert "incidents.1.id: incident id 'fire-1' is used twice" in msg
    assert "incidents.2.id: incident 'ghost' is reported by no call" in msg


def test_the_multi_caller_experiment_has_its_designed_ground_truth() -> None:
    s = load_scenario(MULTI)
    groups: dict[str, list[str]] = {}
    for c in s.calls:
        groups.setdefault(s.incident_of(c.id), []).append(c.id)
    assert groups == {
        "kerkstraat-fire": ["fire-neighbour", "fire-passerby", "fire-upstairs"],
        "oostweg-collision": ["collision"],
        "schoemaker-shed": ["shed-fire"],
    }
    assert all(b.advice for b in s.blocks)
    neighbour, passerby, upstairs = (s.call(c) for c in groups["kerkstraat-fire"])
    # accounts that disagree with each other and with the images, by design
    assert neighbour.truth.congruence["fire_smoke_size"] is False and passerby.truth.congruence["fire_smoke_size"]
    assert neighbour.truth.account_disagrees == ("fire_smoke_size",)
    assert upstairs.truth.account_disagrees == ("people",) and not upstairs.media.photos
    assert len({c.truth.caller_position for c in (neighbour, passerby, upstairs)}) == 3  # three viewpoints
