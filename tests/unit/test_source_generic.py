"""Generic JSON source: one contact per request, fields found by configurable dotted paths."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook_adapter.errors import InvalidPayload, SignatureError, UnsupportedMediaType
from webhook_adapter.model import ContactField, SourceEvent, Status
from webhook_adapter.settings import load_prefixed
from webhook_adapter.signatures import sign_standard_webhook
from webhook_adapter.sources.base import MAX_VALUE_CHARS, WebhookRequest
from webhook_adapter.sources.generic import GenericConfig, GenericSource

NOW = 1_700_000_000.0
WEBHOOK_TS = "1700000000"
URL = "https://hooks.example.test/webhooks/generic"
MSG_ID = "msg_test_0001"
SECRET = "whsec_c3RhbmRhcmQtdGVzdC1zaWduaW5nLWtleS0wMDAx"
PLANTED = "planted-3f9a1-value"
"""A recognisable value that must never come back in an error message."""


def full_body() -> dict[str, Any]:
    return {
        "id": "contact-7",
        "updatedAt": "2024-05-08T21:18:21.896Z",
        "sphereCustomerId": "customer_abc123",
        "email": "jane@example.com",
        "phone": "(312) 555-0123",
        "mobilePhone": "+1 312 555 0199",
        "address": {
            "line1": "1 Main St",
            "line2": "Apt 2",
            "city": "Chicago",
            "state": "IL",
            "postalCode": "60601",
            "country": "US",
        },
    }


def request(body: bytes | dict[str, Any] | list[Any], *, headers: dict[str, str] | None = None) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"content-type": "application/json", "webhook-id": MSG_ID, "webhook-timestamp": WEBHOOK_TS}
    all_headers.update(headers or {})
    return WebhookRequest(source="generic", method="POST", url=URL, headers=all_headers, body=raw, received_at=NOW)


def source(**config: Any) -> GenericSource:
    return GenericSource(GenericConfig(secret_id="x", **config))


def parse(body: bytes | dict[str, Any] | list[Any], **config: Any) -> SourceEvent:
    [event] = source(**config).parse(request(body))
    return event


def assert_invalid(body: bytes | dict[str, Any] | list[Any], *, names: str | None = None) -> None:
    with pytest.raises(InvalidPayload) as caught:
        source().parse(request(body))
    assert PLANTED not in str(caught.value)
    if names is not None:
        assert names in caught.value.message


# --- mapping ------------------------------------------------------------------------------------


def test_full_body_maps_every_default_field() -> None:
    # Given a body with every field at its default path
    # When parsed
    event = parse(full_body())

    # Then the one event carries each field, under the webhook id, for the contact in the body
    assert event.changes == {
        ContactField.CUSTOMER_ID: "customer_abc123",
        ContactField.EMAIL: "jane@example.com",
        ContactField.PHONE: "(312) 555-0123",
        ContactField.MOBILE_PHONE: "+1 312 555 0199",
        ContactField.LINE1: "1 Main St",
        ContactField.LINE2: "Apt 2",
        ContactField.CITY: "Chicago",
        ContactField.STATE: "IL",
        ContactField.POSTAL_CODE: "60601",
        ContactField.COUNTRY: "US",
    }
    assert event.key == MSG_ID
    assert event.event_id == MSG_ID
    assert event.contact_id == "contact-7"
    assert event.occurred_at == 1_715_203_101_896
    assert event.kind == "contact"
    assert event.settled is None


def test_numeric_contact_id_is_read_as_text() -> None:
    event = parse({"id": 42, "email": "jane@example.com"})
    assert event.contact_id == "42"


def test_number_values_become_text() -> None:
    # Given a postal code sent as a JSON number
    body = {"id": "contact-7", "address": {"postalCode": 60601}}

    # Then it is read as text
    assert parse(body).changes == {ContactField.POSTAL_CODE: "60601"}


def test_null_clears_a_field_and_absent_leaves_it_alone() -> None:
    # Given a body that nulls the phone and leaves every other field out
    body = {"id": "contact-7", "phone": None, "address": {"line2": None}}

    # Then only the nulled fields are changes, as "cleared"
    assert parse(body).changes == {ContactField.PHONE: None, ContactField.LINE2: None}


def test_blank_text_clears_a_field_and_text_is_trimmed() -> None:
    body = {"id": "contact-7", "phone": "   ", "email": "  jane@example.com "}
    assert parse(body).changes == {ContactField.PHONE: None, ContactField.EMAIL: "jane@example.com"}


def test_body_without_a_mapped_field_is_settled_ignored() -> None:
    # Given a body about the contact with no field the adapter maps
    event = parse({"id": "contact-7", "firstName": "Jane", "address": "not an object"})

    # Then it is acknowledged and ignored
    assert event.settled is Status.IGNORED
    assert event.changes == {}
    assert event.reason == "no mapped field in the body"


# --- occurred_at -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("updated_at", "expected"),
    [
        ("2024-05-08T21:18:21.896Z", 1_715_203_101_896),
        ("2024-05-08T23:18:21.896+02:00", 1_715_203_101_896),
        ("2024-05-08T21:18:21Z", 1_715_203_101_000),
        (1_715_203_101, 1_715_203_101_000),
        (1_715_203_101.5, 1_715_203_101_500),
        (1_715_203_101_896, 1_715_203_101_896),
    ],
)
def test_occurred_at_is_read_from_iso_or_epoch(updated_at: Any, expected: int) -> None:
    # Given updatedAt as an ISO time with a zone, epoch seconds or epoch milliseconds
    event = parse({"id": "contact-7", "updatedAt": updated_at, "email": "jane@example.com"})

    # Then occurred_at is epoch milliseconds
    assert event.occurred_at == expected


@pytest.mark.parametrize("body", [{"id": "c", "email": "a@b.co"}, {"id": "c", "email": "a@b.co", "updatedAt": None}])
def test_occurred_at_falls_back_to_the_webhook_timestamp(body: dict[str, Any]) -> None:
    # Given no updatedAt in the body
    # Then the signed webhook-timestamp (seconds) is the change time, in milliseconds
    assert parse(body).occurred_at == int(WEBHOOK_TS) * 1000


@pytest.mark.parametrize(
    "updated_at", ["2024-05-08T21:18:21", f"yesterday {PLANTED}", -5, True, {"at": PLANTED}, [1_715_203_101]]
)
def test_occurred_at_without_a_zone_or_of_another_type_is_invalid(updated_at: Any) -> None:
    # Given updatedAt as a naive ISO time, text, a negative number, a boolean, an object or a list
    body = {"id": "contact-7", "updatedAt": updated_at, "email": "jane@example.com"}

    # Then the body is refused, naming the path
    assert_invalid(body, names="updatedAt")


@pytest.mark.parametrize("updated_at", ["2004-03-15T07:55:47.472Z", 1_079_337_347.472])
def test_occurred_at_keeps_every_millisecond(updated_at: Any) -> None:
    # Given a change time with milliseconds whose float product lands just under the integer
    event = parse({"id": "contact-7", "updatedAt": updated_at, "email": "jane@example.com"})

    # Then no millisecond is lost (the per-field order depends on it)
    assert event.occurred_at == 1_079_337_347_472


def test_occurred_at_before_the_epoch_is_an_invalid_payload() -> None:
    # Given an ISO time before 1970 (a negative epoch)
    body = {"id": "contact-7", "updatedAt": "1969-12-31T23:59:59Z", "email": "jane@example.com"}

    # Then it is a 400 InvalidPayload, not a pydantic error the API answers as "misconfigured" 500
    assert_invalid(body, names="updatedAt")


@pytest.mark.parametrize(("raw_time", "named"), [(b"Infinity", "not valid JSON"), (b"1e400", "too large")])
def test_occurred_at_infinity_is_an_invalid_payload(raw_time: bytes, named: str) -> None:
    # Given updatedAt as JSON's non-standard Infinity, or a valid JSON number too large for a float
    body = b'{"id": "contact-7", "email": "jane@example.com", "updatedAt": ' + raw_time + b"}"

    # Then it is refused as invalid (not JSON, or a number too large), not an OverflowError
    assert_invalid(body, names=named)


def test_nan_is_not_json() -> None:
    # Given a body using the non-standard NaN literal as a value
    body = b'{"id": "contact-7", "address": {"postalCode": NaN}}'

    # Then the body is not JSON (today it becomes the postal code "nan")
    assert_invalid(body, names="not valid JSON")


# --- invalid payloads ---------------------------------------------------------------------------


@pytest.mark.parametrize("contact_id", [None, "", "   ", {"value": PLANTED}, [PLANTED], True, 1.5, "x" * 257])
def test_missing_or_malformed_contact_id_is_invalid(contact_id: Any) -> None:
    # Given an id that is absent, blank, an object, a list, a boolean, a fraction or too long
    body = {"email": "jane@example.com"} if contact_id is None else {"id": contact_id, "email": "jane@example.com"}

    # Then the body is refused, naming the id's path
    assert_invalid(body, names="id must be the contact's id")


@pytest.mark.parametrize("body", [[{"id": PLANTED}], f'"{PLANTED}"'.encode(), b"42", b"null"])
def test_body_that_is_not_an_object_is_invalid(body: bytes | list[Any]) -> None:
    assert_invalid(body, names="JSON object")


@pytest.mark.parametrize("value", [[PLANTED], {"number": PLANTED}, True])
def test_field_value_that_is_not_text_is_invalid(value: Any) -> None:
    # Given a mapped field holding a list, an object or a boolean
    body = {"id": "contact-7", "address": {"city": value}}

    # Then the body is refused, naming the field's path, not its value
    assert_invalid(body, names="address.city must be text")


def test_a_value_over_the_cap_is_refused_for_its_field_and_the_others_are_kept() -> None:
    # Given an email over the cap beside a valid city
    body = {"id": "contact-7", "email": PLANTED * 100, "address": {"city": "Chicago"}}

    # When parsed
    event = parse(body)

    # Then the email is left out of the changes and its refusal is kept with the reason; the city goes on
    assert event.settled is None
    assert event.changes == {ContactField.CITY: "Chicago"}
    assert event.refused == {ContactField.EMAIL: f"email is longer than {MAX_VALUE_CHARS} characters"}
    assert event.reason == f"email is longer than {MAX_VALUE_CHARS} characters"
    assert PLANTED not in repr(event.refused)


def test_an_event_whose_every_value_is_over_the_cap_is_rejected() -> None:
    # Given a body whose only mapped fields are both over the cap
    event = parse({"id": "contact-7", "email": "x" * 5000, "address": {"city": PLANTED * 200}})

    # Then the event is settled rejected, naming each field, with nothing to deliver
    assert event.settled is Status.REJECTED
    assert event.changes == {}
    assert event.refused == {
        ContactField.EMAIL: f"email is longer than {MAX_VALUE_CHARS} characters",
        ContactField.CITY: f"address.city is longer than {MAX_VALUE_CHARS} characters",
    }
    assert event.reason == "; ".join(event.refused.values())


def test_a_value_at_the_cap_is_kept_and_surrounding_blanks_do_not_count() -> None:
    value = "y" * MAX_VALUE_CHARS
    event = parse({"id": "contact-7", "address": {"city": f"   {value}\t"}})
    assert event.changes == {ContactField.CITY: value}
    assert event.refused == {}


@pytest.mark.parametrize("webhook_id", ["", "   ", "m" * 257])
def test_missing_or_overlong_webhook_id_is_invalid(webhook_id: str) -> None:
    with pytest.raises(InvalidPayload, match="webhook-id"):
        source().parse(request({"id": "contact-7", "email": "jane@example.com"}, headers={"webhook-id": webhook_id}))


def test_body_that_is_not_json_is_invalid() -> None:
    assert_invalid(f'{{"id": {PLANTED}'.encode(), names="not valid JSON")


# --- values that cannot travel on refuse the body ---------------------------------------------------

UNUSABLE_BODIES: dict[str, tuple[str, str]] = {
    "an integer of 4,301 digits in the address": ('{"id": "c-7", "address": {"zip": ' + "1" * 4301 + "}}", "integer"),
    "an integer of 100 digits as the contact id": ('{"id": ' + "1" * 100 + ', "email": "a@b.co"}', "integer"),
    "an integer of 5,000 digits nobody reads": ('{"id": "c-7", "email": "a@b.co", "n": ' + "9" * 5000 + "}", "integer"),
    "1e400 as a value": ('{"id": "c-7", "address": {"postalCode": 1e400}}', "number too large"),
    "a lone surrogate in a value": (f'{{"id": "c-7", "email": "{PLANTED}\\udbff"}}', "text"),
    "a lone surrogate in the contact id": (f'{{"id": "{PLANTED}\\ud800", "email": "a@b.co"}}', "text"),
    "U+FFFF in a value": (f'{{"id": "c-7", "address": {{"city": "{PLANTED}\\uffff"}}}}', "text"),
    "a repeated key": (f'{{"id": "c-7", "email": "a@b.co", "email": "{PLANTED}"}}', "key"),
    "a repeated object": (f'{{"id": "c-7", "address": {{"city": "A"}}, "address": {{"city": "{PLANTED}"}}}}', "key"),
}


@pytest.mark.parametrize(("body", "names"), UNUSABLE_BODIES.values(), ids=UNUSABLE_BODIES.keys())
def test_a_value_that_cannot_be_queued_or_stored_makes_the_body_invalid(body: str, names: str) -> None:
    # Given a body holding a value JSON allows but the adapter cannot carry on (one event per request)
    # When parsed, Then the request is an invalid payload naming the problem, not a crash or a poisoned queue
    assert_invalid(body.encode(), names=names)


@pytest.mark.parametrize("webhook_id", ["msg\x00id", "msg\nid", "msg\uffff"], ids=["NUL", "LF", "U+FFFF"])
def test_a_webhook_id_that_is_not_printable_is_invalid(webhook_id: str) -> None:
    # Given a signed webhook-id holding a control character or a noncharacter (it becomes a key)
    # Then it is refused, naming the header
    with pytest.raises(InvalidPayload, match="webhook-id"):
        source().parse(request({"id": "contact-7", "email": "jane@example.com"}, headers={"webhook-id": webhook_id}))


@pytest.mark.parametrize("contact_id", ["contact\x007", "contact\r\n7", "\u200b"], ids=["NUL", "CRLF", "ZWSP"])
def test_a_contact_id_that_is_not_printable_is_invalid(contact_id: str) -> None:
    assert_invalid({"id": contact_id, "email": "jane@example.com"}, names="id must be the contact's id")


@pytest.mark.parametrize(
    "timestamp", ["", "soon", "1" * 400, "-5", "9" * 12], ids=["empty", "text", "400 digits", "negative", "year 33658"]
)
def test_a_malformed_webhook_timestamp_is_invalid_when_it_would_be_the_change_time(timestamp: str) -> None:
    # Given no updatedAt in the body, and a webhook-timestamp verification would have refused
    # When parsed on its own, Then it is an invalid payload, not a ValueError
    with pytest.raises(InvalidPayload, match="webhook-timestamp"):
        source().parse(request({"id": "contact-7", "email": "a@b.co"}, headers={"webhook-timestamp": timestamp}))


# --- configuration from the environment ---------------------------------------------------------


def test_settings_from_the_environment_remap_fields_and_the_contact_id(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given GENERIC_* variables naming another layout (an objects-API-like body)
    monkeypatch.setenv("GENERIC_SECRET_ID", "generic/test-secret")
    monkeypatch.setenv("GENERIC_CONTACT_ID_PATH", "record.id")
    monkeypatch.setenv(
        "GENERIC_FIELD_MAP",
        json.dumps({"email": "record.properties.work_email", "customer_id": "record.properties.sphere"}),
    )
    monkeypatch.delenv("GENERIC_OCCURRED_AT_PATH", raising=False)
    config = load_prefixed(GenericConfig, "generic")
    body = {
        "record": {
            "id": 9001,
            "properties": {"work_email": "jane@example.com", "sphere": "customer_abc123", "phone": "(312) 555-0123"},
        }
    }

    # When a body in that layout is parsed
    [event] = GenericSource(config).parse(request(body))

    # Then the configured paths are used and only the configured fields are read
    assert GenericSource(config).secret_id == "generic/test-secret"
    assert event.contact_id == "9001"
    assert event.changes == {ContactField.EMAIL: "jane@example.com", ContactField.CUSTOMER_ID: "customer_abc123"}


def test_settings_without_a_secret_id_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no GENERIC_SECRET_ID
    monkeypatch.delenv("GENERIC_SECRET_ID", raising=False)

    # Then the settings are refused, naming the setting
    with pytest.raises(ValueError, match="secret_id"):
        load_prefixed(GenericConfig, "generic")


def test_settings_refuse_a_field_map_naming_an_unknown_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERIC_SECRET_ID", "generic/test-secret")
    monkeypatch.setenv("GENERIC_FIELD_MAP", '{"fax": "fax"}')
    with pytest.raises(ValueError, match="field_map"):
        load_prefixed(GenericConfig, "generic")


# --- the source's other checks ------------------------------------------------------------------


def test_verify_checks_the_standard_webhook_signature() -> None:
    # Given a request signed the Standard Webhooks way
    body = json.dumps(full_body()).encode()
    signature = sign_standard_webhook(secret=SECRET, msg_id=MSG_ID, timestamp=WEBHOOK_TS, body=body)
    signed = request(body, headers={"webhook-signature": signature})

    # When verified, Then it is accepted; with another body it is not
    source().verify(signed, [SECRET])
    with pytest.raises(SignatureError):
        source().verify(request(body + b" ", headers={"webhook-signature": signature}), [SECRET])


def test_media_type_must_be_json() -> None:
    source().check_media_type(request(b"{}", headers={"content-type": "application/json; charset=utf-8"}))
    with pytest.raises(UnsupportedMediaType):
        source().check_media_type(request(b"{}", headers={"content-type": "text/plain"}))
