"""What every source gets from ``parse_json``: plain JSON values, or a marker where a value cannot travel on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook_adapter.errors import InvalidPayload
from webhook_adapter.sources.base import MAX_INTEGER_DIGITS, Unusable, canonical_json, first_unusable, parse_json

PLANTED = "planted-0c4d2-value"
"""A recognisable value that must never come back in an error message."""


def decoded_value(literal: str) -> Any:
    """The value ``parse_json`` reads for one JSON literal, as the ``v`` of an object."""
    document = parse_json(b'{"v": ' + literal.encode() + b"}")
    assert isinstance(document, dict)
    return document["v"]


def assert_marker(value: Any, *, names: str) -> None:
    assert isinstance(value, Unusable)
    assert names in value.problem
    assert PLANTED not in value.problem


# --- values that cannot travel on ----------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    ["9" * (MAX_INTEGER_DIGITS + 1), "-" + "9" * (MAX_INTEGER_DIGITS + 1), "1" * 4301, "7" * 100_000],
    ids=["one digit over", "negative", "over int conversion", "100,000 digits"],
)
def test_an_integer_of_too_many_digits_becomes_a_marker(literal: str) -> None:
    # Given an integer literal longer than any id, time or value the adapter reads
    # When decoded, Then it is a marker saying so, not a ValueError from Python's int conversion limit
    assert_marker(decoded_value(literal), names="integer")


def test_an_integer_at_the_limit_is_an_integer() -> None:
    assert decoded_value("9" * MAX_INTEGER_DIGITS) == int("9" * MAX_INTEGER_DIGITS)
    assert decoded_value("-" + "9" * MAX_INTEGER_DIGITS) == -int("9" * MAX_INTEGER_DIGITS)


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1" * 400 + ".0"])
def test_a_number_beyond_a_float_becomes_a_marker(literal: str) -> None:
    # Given a valid JSON number that no float holds (today it silently becomes infinity)
    # When decoded, Then it is a marker
    assert_marker(decoded_value(literal), names="number")


@pytest.mark.parametrize("literal", ["1.5", "1e-400", "-0.0", "1e308"])
def test_a_finite_number_is_a_float(literal: str) -> None:
    assert decoded_value(literal) == float(literal)


@pytest.mark.parametrize(
    "literal",
    [
        f'"\\ud800{PLANTED}"',
        f'"{PLANTED}\\udfff"',
        '"\\udc00\\ud800"',
        f'"{PLANTED}\\uffff"',
        '"\\ufffe"',
    ],
    ids=["lone high surrogate", "lone low surrogate", "reversed pair", "U+FFFF", "U+FFFE"],
)
def test_text_that_cannot_be_queued_becomes_a_marker(literal: str) -> None:
    # Given a string JSON accepts but UTF-8 cannot encode (a lone surrogate) or SQS refuses (U+FFFE, U+FFFF)
    # When decoded, Then it is a marker wherever it sits
    assert_marker(decoded_value(literal), names="text")
    assert_marker(decoded_value(f"[[{literal}]]")[0][0], names="text")
    assert_marker(decoded_value(f'{{"deeper": {literal}}}')["deeper"], names="text")


@pytest.mark.parametrize("literal", ['"\\ud83d\\ude00"', '"\\u0000\\u001f\\u007f"', '"\\ufffd"', '"caf\\u00e9"'])
def test_text_that_can_be_queued_is_kept(literal: str) -> None:
    # Given an escaped surrogate pair (an emoji), control characters, the replacement character, an accent
    # Then the text is kept as it is
    assert decoded_value(literal) == json.loads(literal)


def test_a_repeated_key_makes_its_value_a_marker() -> None:
    # Given an object repeating a key (JSON parsers disagree on which value wins)
    document = parse_json(b'{"a": 1, "b": 2, "a": 3, "a": "' + PLANTED.encode() + b'"}')

    # Then the repeated key's value is a marker and the other keys are read
    assert isinstance(document, dict)
    assert_marker(document["a"], names="key")
    assert document["b"] == 2


def test_a_document_that_is_itself_unusable_text_is_a_marker() -> None:
    assert_marker(parse_json(b'"\\ud800"'), names="text")


# --- first_unusable ------------------------------------------------------------------------------


def test_first_unusable_finds_a_marker_anywhere() -> None:
    document = parse_json(b'{"a": [1, {"b": [null, 1e400]}], "c": "ok"}')
    found = first_unusable(document)
    assert found is not None
    assert "number" in found.problem
    assert first_unusable(parse_json(b'{"a": [1, {"b": [null, 1.5]}], "c": "ok"}')) is None


# --- canonical_json ------------------------------------------------------------------------------


def test_canonical_json_ignores_key_order_and_spacing() -> None:
    one = parse_json(b'{"a": 1, "b": [1, 2], "c": {"x": "\\u00e9", "y": null}}')
    other = parse_json(b'{ "c": {"y": null, "x": "\xc3\xa9"},"b":[1,2],"a":1 }')
    assert canonical_json(one) == canonical_json(other)
    assert canonical_json(one) != canonical_json(parse_json(b'{"a": 1, "b": [2, 1], "c": {"x": "e", "y": null}}'))


def test_canonical_json_writes_markers_and_surrogates() -> None:
    # Given a document with a marker and a key holding a lone surrogate
    document = parse_json(b'{"\\ud800": 1, "big": ' + b"9" * 100 + b"}")

    # Then it has a canonical text (ASCII) all the same
    text = canonical_json(document)
    assert text.isascii()
    assert canonical_json(document) == text


# --- what still refuses the whole body ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"", "empty"),
        (b" \n", "empty"),
        (b"\xff", "UTF-8"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": Infinity}', "not valid JSON"),
        (b'{"a": 1', "not valid JSON"),
        (b"[" * 33 + b"]" * 33, "nested deeper than 32"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 32"),
    ],
)
def test_a_body_that_is_not_usable_json_is_an_invalid_payload(body: bytes, names: str) -> None:
    with pytest.raises(InvalidPayload, match=names):
        parse_json(body)


def test_nesting_up_to_the_limit_is_read() -> None:
    assert parse_json(b"[" * 31 + b"1" + b"]" * 31) is not None
    assert parse_json(b"[" * 32 + b"]" * 32) is not None
