"""Event declarations: payload validation, envelope rules, round trip and the codebook description."""

from __future__ import annotations

import dataclasses
import json

import pytest

from workbench.domain import events as ev
from workbench.domain.events import EventValidationError, payload_from_dict

CLOSED = {
    "incident_type": "fire",
    "urgency": "spoed",
    "location": "Kerkstraat 12",
    "items_gathered": ["location", "trapped"],
    "disagreement_flagged": True,
    "disagreement_aspect": "fire_smoke_size",
    "notes": "",
}


def envelope(**changes):
    obj = {
        "schema": 1,
        "session_id": "s1",
        "seq": 4,
        "t_mono_ns": 123_456_789,
        "t_wall": "2025-01-02T03:04:05.000001+00:00",
        "source": "console",
        "type": "call.closed",
        "call_id": "c1",
        "data": dict(CLOSED),
    }
    obj.update(changes)
    return obj


def test_valid_payload() -> None:
    payload = payload_from_dict("call.closed", CLOSED)
    assert payload == ev.CallClosed("fire", "spoed", "Kerkstraat 12", ["location", "trapped"], True,
                                    "fire_smoke_size", "")


def test_missing_and_extra_fields_are_named() -> None:
    data = {k: v for k, v in CLOSED.items() if k != "urgency"}
    with pytest.raises(EventValidationError, match=r"call\.closed: missing field\(s\) urgency \(expected fields: "):
        payload_from_dict("call.closed", data)
    with pytest.raises(EventValidationError, match=r"unexpected field\(s\) colour, size"):
        payload_from_dict("call.closed", CLOSED | {"size": 1, "colour": "red"})
    with pytest.raises(EventValidationError, match="data must be a JSON object, got list"):
        payload_from_dict("call.closed", [])


@pytest.mark.parametrize(
    ("event_type", "data", "message"),
    [
        ("call.closed", CLOSED | {"disagreement_flagged": "yes"}, "call.closed.disagreement_flagged must be boolean"),
        ("call.closed", CLOSED | {"items_gathered": "location"}, "call.closed.items_gathered must be array of string"),
        ("call.closed", CLOSED | {"items_gathered": ["location", 3]}, r"call\.closed\.items_gathered\[1\] must be string"),
        ("block.started", {"block_id": "b", "modality": "video", "position": True}, "block.started.position must be integer"),
        ("block.started", {"block_id": "b", "modality": "video", "position": 1.0}, "block.started.position must be integer"),
        ("rating.rsme", {"value": "40"}, "rating.rsme.value must be number"),
        ("rating.rsme", {"value": None}, "rating.rsme.value must be number"),
        ("rating.rsme", {"value": False}, "rating.rsme.value must be number"),
    ],
)
def test_mistyped_fields_are_named(event_type: str, data: dict, message: str) -> None:
    with pytest.raises(EventValidationError, match=message):
        payload_from_dict(event_type, data)


@pytest.mark.parametrize(
    ("event_type", "data", "message"),
    [
        ("intake.urgency", {"urgency": "asap"}, "urgency must be one of spoed, nu, later, got 'asap'"),
        ("intake.incident_type", {"incident_type": "blaze"}, "incident_type must be one of fire, "),
        ("intake.item_checked", {"item": "shoe_size", "checked": True}, "item must be one of location, "),
        ("intake.disagreement_flag", {"flagged": True, "aspect": "smell"}, "aspect must be one of people, "),
        ("call.closed", CLOSED | {"urgency": "now"}, "urgency must be one of spoed, nu, later"),
        ("call.closed", CLOSED | {"items_gathered": ["location", "x"]}, "items_gathered must be one of location"),
        ("call.closed", CLOSED | {"disagreement_aspect": "x"}, "disagreement_aspect must be one of people"),
        ("call.created", {"scenario_call_id": "", "block_id": "", "modality": "smell", "caller_label": ""},
         "modality must be one of audio, photo, video"),
        ("block.started", {"block_id": "b", "modality": "radio", "position": 0}, "modality must be one of audio"),
    ],
)
def test_out_of_vocabulary_values_are_rejected(event_type: str, data: dict, message: str) -> None:
    with pytest.raises(EventValidationError, match=message):
        payload_from_dict(event_type, data)


def test_empty_optional_values_are_allowed() -> None:
    closed = payload_from_dict("call.closed", CLOSED | {"urgency": "", "incident_type": "", "disagreement_aspect": ""})
    assert closed.urgency == "" and closed.incident_type == ""  # type: ignore[attr-defined]
    assert payload_from_dict("intake.disagreement_flag", {"flagged": False, "aspect": ""}) == ev.IntakeDisagreementFlag(
        False, "")


@pytest.mark.parametrize("value", [0, 2, 112, 150, 150.0, 0.5])
def test_rsme_in_range(value: float) -> None:
    payload = payload_from_dict("rating.rsme", {"value": value})
    assert payload == ev.RatingRsme(float(value))
    assert isinstance(payload.value, float)  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", [150.5, -1, 151, -0.001, 1e9])
def test_rsme_out_of_range(value: float) -> None:
    with pytest.raises(EventValidationError, match=f"RSME must be between 0 and 150, got {value}"):
        payload_from_dict("rating.rsme", {"value": value})


def test_unknown_event_type() -> None:
    with pytest.raises(EventValidationError, match="unknown event type 'call.teleported'; known types: session.started"):
        payload_from_dict("call.teleported", {})


def test_event_round_trip() -> None:
    event = ev.event_from_dict(envelope())
    assert event.data == payload_from_dict("call.closed", CLOSED)
    assert (event.seq, event.call_id, event.source, event.t_mono_ns) == (4, "c1", "console", 123_456_789)
    assert json.loads(event.to_json_line()) == envelope()
    assert ev.event_from_dict(json.loads(event.to_json_line())) == event
    session_level = envelope(type="session.ended", source="runner", call_id=None, data={"reason": "completed"})
    assert ev.event_from_dict(session_level).to_dict() == session_level


def test_to_json_line_is_one_utf8_line() -> None:
    event = ev.event_from_dict(envelope(data=CLOSED | {"notes": "brand in één\nhuis"}))
    line = event.to_json_line()
    assert "\n" not in line and "één" in line
    assert ev.event_from_dict(json.loads(line)).data.notes == "brand in één\nhuis"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema": 2}, "event schema 2 is not supported"),
        ({"seq": "4"}, "envelope field 'seq' must be int"),
        ({"seq": True}, "envelope field 'seq' must be int"),
        ({"t_wall": None}, "envelope field 't_wall' must be str"),
        ({"call_id": 7}, "envelope field 'call_id' must be a string or null"),
        ({"source": "caller"}, "call.closed: source 'caller' may not emit this event"),
        ({"call_id": None}, "call.closed: call_id is required"),
        ({"call_id": ""}, "call.closed: call_id is required"),
        ({"type": "nope"}, "unknown event type 'nope'"),
        ({"data": None}, "call.closed: data must be a JSON object"),
    ],
)
def test_event_from_dict_rejects(changes: dict, message: str) -> None:
    with pytest.raises(EventValidationError, match=message):
        ev.event_from_dict(envelope(**changes))


def test_event_from_dict_missing_envelope_field() -> None:
    obj = envelope()
    del obj["t_mono_ns"]
    with pytest.raises(EventValidationError, match="missing envelope field 't_mono_ns'"):
        ev.event_from_dict(obj)
    with pytest.raises(EventValidationError, match="must be a JSON object, got list"):
        ev.event_from_dict([])


def test_check_envelope_source_rules() -> None:
    ev.check_envelope(ev.CallAnswered, "console", "c1")
    ev.check_envelope(ev.CallAnswered, "simulator", "c1")
    with pytest.raises(EventValidationError, match=r"call.answered: source 'ingest' may not emit this event \(allowed: console, simulator\)"):
        ev.check_envelope(ev.CallAnswered, "ingest", "c1")
    ev.check_envelope(ev.MediaPhotoReceived, "ingest", "c1")
    for source in ("console", "runner", "caller", "simulator"):
        with pytest.raises(EventValidationError, match="may not emit"):
            ev.check_envelope(ev.MediaPhotoReceived, source, "c1")
    with pytest.raises(EventValidationError, match="may not emit"):
        ev.check_envelope(ev.BlockStarted, "console", None)
    with pytest.raises(EventValidationError, match="session.started: is a session-level event and takes no call_id"):
        ev.check_envelope(ev.SessionStarted, "ingest", "c1")
    with pytest.raises(EventValidationError, match="may not emit"):
        ev.check_envelope(ev.SessionStarted, "nobody", None)
    for cls in ev.PAYLOAD_TYPES:
        assert set(cls.SOURCES) <= set(ev.SOURCES), cls.TYPE


def test_payload_types_are_unique_and_resolvable() -> None:
    types = [cls.TYPE for cls in ev.PAYLOAD_TYPES]
    assert len(set(types)) == len(types) and all(types)
    for cls in ev.PAYLOAD_TYPES:
        assert ev.payload_class(cls.TYPE) is cls


def test_describe_event_types_covers_everything() -> None:
    docs = ev.describe_event_types()
    assert [d.event_type for d in docs] == [cls.TYPE for cls in ev.PAYLOAD_TYPES]
    for doc, cls in zip(docs, ev.PAYLOAD_TYPES):
        assert doc.doc, doc.event_type
        assert [f.name for f in doc.fields] == [f.name for f in dataclasses.fields(cls)]
        assert doc.sources == cls.SOURCES and doc.call_scoped == cls.CALL_SCOPED
        for field in doc.fields:
            assert field.doc.strip(), f"{doc.event_type}.{field.name} has no docstring"
            assert field.json_type in {"string", "integer", "number", "boolean", "array of string"}, field
    rsme = next(d for d in docs if d.event_type == "rating.rsme")
    assert rsme.fields == (ev.FieldDoc("value", "number", "Rating on the RSME scale, 0-150 (stored exactly as given)."),)
    closed = next(d for d in docs if d.event_type == "call.closed")
    assert {f.name: f.json_type for f in closed.fields}["items_gathered"] == "array of string"
