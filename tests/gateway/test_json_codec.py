"""gateway.json_codec: the fast JSON used on the hot path behaves like the standard library where it matters."""

from __future__ import annotations

import json

import pytest

from gateway import json_codec


def test_round_trip_is_compact_utf8_and_matches_the_standard_library():
    value = {"text": "Saldo: 1.234,56 €", "buttons": [{"title": "Sì", "payload": "yes"}], "n": 3, "ok": True,
             "none": None, "nested": {"list": [1, 2.5, "\u2028"]}}
    data = json_codec.dumps_bytes(value)
    assert "€".encode() in data and b", " not in data  # UTF-8, no escapes, no spaces
    assert json.loads(data) == value == json_codec.loads(data) == json_codec.loads(json_codec.dumps(value))
    assert json_codec.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(("text", "message", "column"), [
    ('{"sender": "a",', "Expecting property name enclosed in double quotes", 16),
    ("[1,]", "Expecting value", 4),
    ('{"a": 1} x', "Extra data", 10),
])
def test_bad_input_reports_what_the_standard_library_reports(text, message, column):
    with pytest.raises(json_codec.JSONDecodeError) as caught:
        json_codec.loads(text)
    assert (caught.value.msg, caught.value.lineno, caught.value.colno) == (message, 1, column)


def test_what_the_standard_library_accepts_still_parses_unless_strict():
    assert json_codec.loads('"\\ud800"') == "\ud800"  # a lone surrogate: pydantic refuses, json accepts
    assert json_codec.loads("NaN") != json_codec.loads("NaN")
    for refused in ['"\\ud800"', "[" * 300 + "]" * 300]:  # no UTF-8 for it; deeper than 200 levels
        with pytest.raises(json_codec.UnsupportedJSON):
            json_codec.loads(refused, strict=True)
    with pytest.raises(json_codec.UnsupportedJSON, match="number out of range"):  # over Python's int digit limit
        json_codec.loads("1" + "0" * 5000)


def test_objects_without_a_json_form_raise_pydantics_serialization_error():
    from pydantic_core import PydanticSerializationError

    with pytest.raises(PydanticSerializationError, match="Unable to serialize"):
        json_codec.dumps({"x": object()})
