"""The fast paths of reading a log (precomputed field converters, orjson decoding) accept exactly what the general
paths accept and raise the same errors, field by field and line by line."""

from __future__ import annotations

import json
import typing

import pytest

from workbench.domain import events as ev
from workbench.domain.events import EventValidationError, payload_from_dict
from workbench.store.eventlog import decode_line

PLACEHOLDER = {bool: False, int: 0, float: 0.0, str: ""}


def _placeholder(hint: typing.Any) -> typing.Any:
    return PLACEHOLDER.get(hint, [])


def _wrong_values(hint: typing.Any) -> list[typing.Any]:
    """Values of the wrong JSON type for ``hint`` (bool is not an int, an int is not a string, ...)."""
    if hint is bool:
        return [1, 0, "true", None, 1.0]
    if hint is int:
        return [True, 1.5, "1", None, [1]]
    if hint is float:
        return [False, "1.5", None, {}]
    if hint is str:
        return [1, None, True, ["a"]]
    return ["x", None, {"a": 1}, [1], [None]]


CASES = [
    (cls, name, hint, wrong)
    for cls in ev.PAYLOAD_TYPES
    for name, hint in ev._field_types(cls)
    for wrong in _wrong_values(hint)
]


@pytest.mark.parametrize(("cls", "name", "hint", "wrong"), CASES,
                         ids=[f"{c.TYPE}.{n}={w!r}" for c, n, _, w in CASES])
def test_every_mistyped_field_raises_the_general_message(cls, name, hint, wrong) -> None:
    data = {n: _placeholder(h) for n, h in ev._field_types(cls)}
    data[name] = wrong
    with pytest.raises(EventValidationError) as general:
        ev._coerce(f"{cls.TYPE}.{name}", wrong, hint)
    with pytest.raises(EventValidationError) as fast:
        payload_from_dict(cls.TYPE, data)
    assert str(fast.value) == str(general.value)
    assert str(fast.value).startswith(f"{cls.TYPE}.{name}")


def test_an_integer_for_a_float_field_is_stored_as_float() -> None:
    payload = payload_from_dict("rating.rsme", {"value": 57})
    assert payload.value == 57.0 and type(payload.value) is float


def test_a_str_subclass_is_still_accepted() -> None:
    class Text(str):
        pass

    closed = {"incident_type": Text("fire"), "urgency": "spoed", "location": "Kerkstraat 12", "items_gathered": [],
              "disagreement_flagged": False, "disagreement_aspect": "", "notes": ""}
    assert payload_from_dict("call.closed", closed).incident_type == "fire"


def test_missing_and_extra_fields_keep_their_message() -> None:
    with pytest.raises(EventValidationError, match=r"^rating\.rsme: missing field\(s\) value; unexpected field\(s\) "
                                                   r"a, b \(expected fields: value\)$"):
        payload_from_dict("rating.rsme", {"b": 1, "a": 2})
    with pytest.raises(EventValidationError, match=r"unexpected field\(s\) extra"):
        payload_from_dict("rating.rsme", {"value": 1, "extra": 2})


def test_unknown_type_of_any_json_kind() -> None:
    for kind in ("no.such.type", 5, None):
        with pytest.raises(EventValidationError, match="unknown event type"):
            ev.payload_class(kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("line", [
    b'{"a": 1, "b": [1.5, -0, 1e-320, 0.1, "\\u00e9\\ud83d\\ude00"], "c": null, "d": true}',
    b'{"seq": 123456789012345678901234567890}',  # beyond 64 bits: json keeps an int, orjson would make a float
    b'{"x": NaN, "y": Infinity, "z": -Infinity}',
    b'{"v": 1e400}',
    b'{"s": "\\ud800"}',  # a lone surrogate escape
    b'{"a": 1, "a": 2}',
    '{"t": "Kerkstraat 12 \u2013 brand"}'.encode(),
])
def test_decode_line_equals_json(line: bytes) -> None:
    decoded = decode_line(line)
    expected = json.loads(line.decode("utf-8"))
    assert json.dumps(decoded) == json.dumps(expected)  # same values and the same types (int vs float)
    assert type(decoded) is type(expected)


@pytest.mark.parametrize("line", [b'{"a": 1', b'{"a": 1}}', b"[1,]", b"nul", b'{"a": 01}', b"\xef\xbb\xbf{}"])
def test_decode_line_raises_json_errors(line: bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as general:
        json.loads(line.decode("utf-8"))
    with pytest.raises(json.JSONDecodeError) as fast:
        decode_line(line)
    assert str(fast.value) == str(general.value)
    assert type(fast.value) is json.JSONDecodeError


def test_decode_line_invalid_utf8_raises_unicode_error() -> None:
    with pytest.raises(UnicodeDecodeError):
        decode_line(b'{"a": "\xff"}')
